//! `cargo xtask demo`: two DR sites on this machine, walked through planned migration,
//! disaster failover and failback, with a table of what each VolumeReplication reports.
//! `--keep` leaves both sites running and prints a kubeconfig per site.
//! `--kubeconfig A --kubeconfig B` puts site A and site B on those two clusters instead of local
//! API servers, `--kubeconfig A` both on one (the drivers and controllers still run here, against
//! those API servers; the harness's actors stand in for whatever the clusters lack).

use std::time::Instant;

use anyhow::Context;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use lifeline_api::datamover::{VolumeSnapshotBackup, VolumeSnapshotRestore, annotations};
use lifeline_api::foreign::snapshot::VolumeSnapshot;
use lifeline_api::replication::{CurrentState, VolumeReplication};
use lifeline_cli::progress::Steps;
use lifeline_cli::sites::SiteSpec;
use lifeline_e2e::metrics;
use lifeline_e2e::process::admin_post;
use lifeline_e2e::sites::{SiteEnv, TwoSites, tree};
use lifeline_e2e::wait;
use serde_json::json;

const PHASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(180);

fn obj<K: serde::de::DeserializeOwned>(value: serde_json::Value) -> K {
    serde_json::from_value(value).expect("a valid object")
}

/// Polls a request's phase, printing each new one, until `done`.
async fn follow<K, F>(api: &Api<K>, name: &str, phase: F, done: &str) -> anyhow::Result<K>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    F: Fn(&K) -> Option<String>,
{
    let mut last = String::new();
    let deadline = Instant::now() + PHASE_TIMEOUT;
    loop {
        if let Some(object) = api.get_opt(name).await? {
            let now = phase(&object).unwrap_or_else(|| "(new)".into());
            if now != last {
                println!("    {name}: {now}");
                last = now.clone();
            }
            if now == done {
                return Ok(object);
            }
            anyhow::ensure!(now != "Failed", "{name} failed: {object:?}");
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{name} did not reach {done} in time"
        );
        tokio::time::sleep(wait::POLL).await;
    }
}

async fn backup(site: &SiteEnv, claim: &str) -> anyhow::Result<VolumeSnapshotBackup> {
    let snapshots = Api::<VolumeSnapshot>::namespaced(site.client(), &site.app);
    let name = format!("{claim}-snapshot");
    snapshots
        .create(&PostParams::default(), &obj(json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
            "metadata": {"name": name}, "spec": {"volumeSnapshotClassName": site.snapshot_class, "source": {"persistentVolumeClaimName": claim}}})))
        .await?;
    let ready = wait::for_object(&snapshots, &name, PHASE_TIMEOUT, "ready", |s| {
        s.status.as_ref().and_then(|s| s.ready_to_use) == Some(true)
    })
    .await?;
    let content = ready
        .status
        .and_then(|s| s.bound_volume_snapshot_content_name);
    let vsbs = Api::<VolumeSnapshotBackup>::namespaced(site.client(), &site.app);
    vsbs.create(&PostParams::default(), &obj(json!({"apiVersion": "datamover.oadp.openshift.io/v1alpha1", "kind": "VolumeSnapshotBackup",
        "metadata": {"name": format!("{claim}-backup")},
        "spec": {"volumeSnapshotContent": {"name": content}, "protectedNamespace": site.protected, "resticSecretRef": {"name": "restic"}}})))
        .await?;
    let phase = |b: &VolumeSnapshotBackup| {
        b.status
            .as_ref()
            .and_then(|s| s.phase.as_ref())
            .map(|p| p.as_str().to_owned())
    };
    follow(&vsbs, &format!("{claim}-backup"), phase, "Completed").await
}

async fn restore(site: &SiteEnv, backup: &VolumeSnapshotBackup) -> anyhow::Result<String> {
    let notes = backup.metadata.annotations.clone().unwrap_or_default();
    let note = |k: &str| notes.get(k).cloned();
    let vsrs = Api::<VolumeSnapshotRestore>::namespaced(site.client(), &site.app);
    vsrs.create(&PostParams::default(), &obj(json!({"apiVersion": "datamover.oadp.openshift.io/v1alpha1", "kind": "VolumeSnapshotRestore",
        "metadata": {"name": "db-restore", "annotations": {"datamover.io/restore-as-of": note("datamover.io/restore-as-of")}},
        "spec": {"protectedNamespace": site.protected, "resticSecretRef": {"name": "restic"},
                 "volumeSnapshotMoverBackupRef": {"resticrepository": note(annotations::RESTIC_REPOSITORY),
                     "volumeSnapshotClassName": note(annotations::SOURCE_PVC_VOLUMESNAPSHOTCLASS),
                     "sourcePVCData": {"name": note(annotations::SOURCE_PVC_NAME), "size": note(annotations::SOURCE_PVC_SIZE),
                                       "storageClassName": note(annotations::SOURCE_PVC_STORAGECLASS)}}}})))
        .await?;
    let phase = |r: &VolumeSnapshotRestore| {
        r.status
            .as_ref()
            .and_then(|s| s.phase.as_ref())
            .map(|p| p.as_str().to_owned())
    };
    let done = follow(&vsrs, "db-restore", phase, "Completed").await?;
    done.status
        .and_then(|s| s.snapshot_handle)
        .context("a restored snapshot handle")
}

/// `lifeline_datamover_bytes_added_total` from the data mover's metrics.
async fn bytes_moved(admin: &str) -> String {
    match metrics::scrape(admin).await {
        Ok(text) => metrics::sample(&text, "lifeline_datamover_bytes_added_total", &[])
            .map(|n| format!("{n} bytes"))
            .unwrap_or_else(|| "not reported".into()),
        Err(e) => format!("unknown ({e})"),
    }
}

/// What the failover site's controller says of its data right now (its `/metrics`): how old
/// the last sync it received is, against the RPO bound.
async fn data_age(site: &SiteEnv, claim: &str) -> String {
    let name = format!("{claim}-replication");
    let labels = [("name", name.as_str()), ("role", "secondary")];
    let text = match site.controller_metrics().await {
        Ok(text) => text,
        Err(e) => return format!("unknown ({e})"),
    };
    let get = |metric: &str| metrics::sample(&text, metric, &labels);
    match (
        get("lifeline_volume_replication_seconds_since_last_sync"),
        get("lifeline_volume_replication_rpo_bound_seconds"),
        get("lifeline_volume_replication_failover_ready"),
        get("lifeline_volume_replication_info_age_seconds"),
    ) {
        (Some(age), Some(bound), Some(ready), Some(info)) => format!(
            "{age:.1}s (known to within {info:.1}s), RPO bound {bound:.1}s, failover ready: {}",
            if ready == 1.0 { "yes" } else { "no" }
        ),
        _ => "not reported".into(),
    }
}

fn condition<'a>(vr: &'a VolumeReplication, type_: &str) -> Option<&'a Condition> {
    vr.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
}

/// Waits until the controller has observed and finished the last step on this site: the
/// current generation observed, the desired state reached with Completed True and Degraded
/// False, and the sync facts reported (a primary's once its peer site is up to ship to, a
/// secondary's SyncReceived). Only then is a table read, so every run prints the same states.
async fn settled(site: &SiteEnv, claim: &str, peer_up: bool) -> anyhow::Result<VolumeReplication> {
    let name = format!("{claim}-replication");
    wait::for_object(
        &site.vrs(),
        &name,
        PHASE_TIMEOUT,
        &format!("to settle on site {}", site.name),
        |vr| {
            let Some(status) = &vr.status else {
                return false;
            };
            let want = match vr.spec.replication_state.as_str() {
                "primary" => CurrentState::Primary,
                _ => CurrentState::Secondary,
            };
            let is =
                |type_: &str, value: &str| condition(vr, type_).is_some_and(|c| c.status == value);
            let facts = match want {
                CurrentState::Primary => !peer_up || status.last_sync_time.is_some(),
                _ => condition(vr, "SyncReceived").is_some(),
            };
            status.observed_generation == vr.metadata.generation
                && status.state() == Some(want)
                && is("Completed", "True")
                && is("Degraded", "False")
                && facts
        },
    )
    .await
}

/// One line per site: desired and current state, how the last operation completed, health —
/// read once each site settled (so the same on every run) — then `kubectl lifeline status`
/// (the CLI's library): last sync, its age and duration, the RPO bound (the class's
/// schedulingInterval plus the last sync's duration, the OpenShift DR guide's formula) and the
/// verdict. A site whose controller is down
/// is shown as such: what its API server still holds is the last status written before it went
/// down, not the site's state.
async fn table(sites: &mut TwoSites, claim: &str) -> anyhow::Result<()> {
    let up = [
        sites.a.controller.is_running(),
        sites.b.controller.is_running(),
    ];
    let mut rows = Vec::new();
    for (i, site) in [&sites.a, &sites.b].into_iter().enumerate() {
        rows.push(if up[i] {
            Some(settled(site, claim, up[1 - i]).await?)
        } else {
            None
        });
    }
    println!(
        "    {:<6} {:<10} {:<10} {:<10} {:<9}",
        "site", "desired", "current", "completed", "degraded"
    );
    for (site, vr) in [&sites.a, &sites.b].into_iter().zip(&rows) {
        let Some(vr) = vr else {
            println!(
                "    {:<6} site down: its controller and driver are gone (its last written status is not its state)",
                site.name
            );
            continue;
        };
        let reason = |t: &str| {
            condition(vr, t)
                .map(|c| c.reason.clone())
                .unwrap_or_else(|| "-".into())
        };
        let status = vr.status.as_ref();
        println!(
            "    {:<6} {:<10} {:<10} {:<10} {:<9}",
            site.name,
            vr.spec.replication_state.as_str(),
            status
                .and_then(|s| s.state.as_ref())
                .map(|s| s.as_str())
                .unwrap_or("-"),
            reason("Completed"),
            condition(vr, "Degraded")
                .map(|c| c.status.as_str())
                .unwrap_or("-"),
        );
    }
    // What `kubectl lifeline status` says, asking the sites that are up.
    let specs: Vec<SiteSpec> = [&sites.a, &sites.b]
        .into_iter()
        .zip(up)
        .filter(|(_, up)| *up)
        .map(|(site, _)| cli_site(site))
        .collect();
    let report = lifeline_cli::status::gather(&specs, Some(&sites.a.app)).await?;
    println!(
        "    $ kubectl lifeline status -n {}{}",
        sites.a.app,
        if specs.len() < 2 {
            "   (asking only the site that is up)"
        } else {
            ""
        }
    );
    for line in
        lifeline_cli::status::table(&report, Timestamp::now(), "the demo's namespace", false)
            .lines()
    {
        println!("    {line}");
    }
    Ok(())
}

/// The site as `kubectl lifeline` names it.
fn cli_site(site: &SiteEnv) -> SiteSpec {
    SiteSpec {
        name: site.name.to_owned(),
        kubeconfig: Some(site.cluster.kubeconfig().to_owned()),
        context: None,
    }
}

/// The controller's Event of `reason` about the site's VolumeReplication, if it wrote one.
async fn event_note(site: &SiteEnv, claim: &str, reason: &str) -> Option<String> {
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(site.client(), &site.app)
        .list(&Default::default())
        .await
        .ok()?;
    events
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref())
                == Some(format!("{claim}-replication").as_str())
        })
        .find_map(|e| e.note)
}

/// A planned switch of every volume: `kubectl lifeline migrate` when the sites are on clusters
/// of their own, else by hand.
async fn migrate(sites: &TwoSites, from: &SiteEnv, to: &SiteEnv) -> anyhow::Result<()> {
    if sites.a.app != sites.b.app {
        sites.migrate(from, to, "db").await?;
        return Ok(());
    }
    println!(
        "    $ kubectl lifeline migrate --from {} --to {} -n {}",
        from.name, to.name, from.app
    );
    let options = lifeline_cli::migrate::Options {
        from: from.name.to_owned(),
        to: to.name.to_owned(),
        allow_stale: false,
    };
    let specs = [cli_site(&sites.a), cli_site(&sites.b)];
    let steps = Steps::on_stdout("    ");
    within(lifeline_cli::migrate::run(
        &specs, &from.app, &options, &steps,
    ))
    .await
}

/// A `kubectl lifeline` command, given as long as a phase of the demo may take.
async fn within(
    command: impl std::future::Future<Output = Result<(), lifeline_cli::Error>>,
) -> anyhow::Result<()> {
    tokio::time::timeout(PHASE_TIMEOUT, command)
        .await
        .map_err(|_| anyhow::anyhow!("not done within {PHASE_TIMEOUT:?}"))?
        .map_err(Into::into)
}

fn step(text: &str) {
    println!("\n==> {text}");
}

async fn same(sites: &TwoSites, from: &SiteEnv, to: &SiteEnv, volume: &str) -> anyhow::Result<()> {
    sites.wait_in_sync(from, to, volume).await?;
    println!(
        "    site {} holds exactly site {}'s {} files",
        to.name,
        from.name,
        tree(&to.volume(volume)).len()
    );
    Ok(())
}

/// The demo's flags: `--keep`, and up to two `--kubeconfig PATH`.
struct Flags {
    keep: bool,
    kubeconfigs: Vec<std::path::PathBuf>,
}

fn flags(args: impl Iterator<Item = String>) -> anyhow::Result<Flags> {
    let mut flags = Flags {
        keep: false,
        kubeconfigs: Vec::new(),
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--keep" => flags.keep = true,
            "--kubeconfig" => flags.kubeconfigs.push(
                args.next()
                    .context("--kubeconfig needs a path: --kubeconfig site-a.yaml --kubeconfig site-b.yaml")?
                    .into(),
            ),
            other => anyhow::bail!("unknown argument {other:?}; use --keep and --kubeconfig PATH (once, or once per site)"),
        }
    }
    anyhow::ensure!(
        flags.kubeconfigs.len() <= 2,
        "two sites: give --kubeconfig once (both sites on that cluster) or twice (site A's, then site B's)"
    );
    for path in &flags.kubeconfigs {
        anyhow::ensure!(
            path.is_file(),
            "kubeconfig {} does not exist",
            path.display()
        );
    }
    Ok(flags)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Flags { keep, kubeconfigs } = flags(std::env::args().skip(1))?;
    let started = Instant::now();
    wait::report_progress(true);
    let mut sites = if kubeconfigs.is_empty() {
        step(
            "starting two sites (a real control plane — etcd, kube-apiserver v1.36, kube-controller-manager — hostpath driver and replication controller each; drivers peered)",
        );
        TwoSites::start().await.context("cannot start the sites")?
    } else {
        let (a, b) = (&kubeconfigs[0], kubeconfigs.last().expect("one or two"));
        step(&format!(
            "starting two sites on the clusters of {} and {} (hostpath driver and replication controller each, running here; drivers peered)",
            a.display(),
            b.display()
        ));
        TwoSites::start_on([Some(a), Some(b)])
            .await
            .context("cannot start the sites on those clusters (can this kubeconfig create namespaces and, where missing, CRDs?)")?
    };
    for site in [&sites.a, &sites.b] {
        println!(
            "    site {}: kubeconfig {}, namespace {}",
            site.name,
            site.cluster.kubeconfig().display(),
            site.app
        );
        if let Some(audit) = site.cluster.audit_log_path() {
            println!("        API server audit log: {}", audit.display());
        }
        println!(
            "        logs: driver {}, controller {}",
            site.driver.log_path().display(),
            site.controller.log_path().display()
        );
        println!(
            "        controller metrics http://{}/metrics, driver admin http://{}",
            site.controller_admin().unwrap_or_else(|| "?".into()),
            site.admin
        );
    }

    step("an application volume on site A, with data, replicated: VolumeReplication primary on A");
    let volume = sites.a.provision("db").await?;
    let data = sites.a.volume(&volume);
    std::fs::create_dir_all(data.join("tables"))?;
    std::fs::write(data.join("tables/orders.bin"), vec![7u8; 4 << 20])?;
    sites.a.replicate("db", "primary").await?;
    // The standby resyncs from a primary: set it up once A is one.
    sites
        .a
        .wait_state("db", CurrentState::Primary, true)
        .await?;
    // `kubectl lifeline` pairs a volume's VolumeReplications by namespace and claim: with
    // both sites on one cluster (names of their own) the same steps are taken by hand.
    let runbook = sites.a.app == sites.b.app;
    if runbook {
        step(&format!(
            "site B set up as standby from A alone: kubectl lifeline protect --from a --to b -n {}",
            sites.a.app
        ));
        let source = lifeline_cli::sites::connect(&cli_site(&sites.a)).await?;
        let plans = lifeline_cli::protect::plan(&source, "a", &sites.a.app).await?;
        let target = lifeline_cli::sites::connect(&cli_site(&sites.b)).await?;
        for applied in lifeline_cli::protect::apply(&target, "b", &plans, false).await? {
            println!(
                "    site b: {} {} created: {}",
                applied.kind, applied.name, applied.created
            );
        }
    } else {
        // Both sites on one cluster (names of their own): B's copy set up by hand.
        step("the same volume pre-provisioned on site B, secondary");
        sites.b.adopt("db", &volume).await?;
        sites.b.replicate("db", "secondary").await?;
    }
    sites
        .b
        .wait_state("db", CurrentState::Secondary, false)
        .await?;
    same(&sites, &sites.a, &sites.b, &volume).await?;
    if runbook {
        // The application: a Deployment mounting the claim at each site, running at A only
        // (B's sized for one replica when it takes over).
        sites.a.deploy("shop", "db", 2, None).await?;
        sites.b.deploy("shop", "db", 0, Some(1)).await?;
        sites.a.wait_pods("db", 2).await?;
        println!("    Deployment shop at A (2 replicas) and at B (0, lifeline.dev/replicas: 1)");
    }
    table(&mut sites, "db").await?;

    step(
        "planned migration: scale down at A, demote A (it ships its last changes), promote B without force, scale up at B",
    );
    std::fs::write(data.join("tables/customers.txt"), "alice\nbob\n")?;
    migrate(&sites, &sites.a, &sites.b).await?;
    same(&sites, &sites.b, &sites.a, &volume).await?;
    table(&mut sites, "db").await?;

    step("fail back to A the same way");
    migrate(&sites, &sites.b, &sites.a).await?;
    same(&sites, &sites.a, &sites.b, &volume).await?;
    table(&mut sites, "db").await?;

    step("disaster: the link to A is cut, A takes writes B never sees, then A is gone");
    admin_post(&sites.a.admin, "/link/sever").await?;
    let synced = tree(&sites.b.volume(&volume));
    println!(
        "    B's data age when the link went down: {}",
        data_age(&sites.b, "db").await
    );
    std::fs::write(data.join("tables/lost.txt"), "written after the last sync")?;
    sites.a.controller.kill().await;
    sites.a.driver.kill().await;

    println!(
        "    B's data age at failover, as B's controller reports it: {}",
        data_age(&sites.b, "db").await
    );

    step("failover: promote B — the driver refuses a planned promotion, the controller forces it");
    if runbook {
        // A's API server is still running here; to the SRE it is gone (a closed port).
        let gone = lifeline_e2e::cli::dead_kubeconfig(&sites.a.cluster);
        let specs = [
            SiteSpec {
                kubeconfig: Some(gone),
                ..cli_site(&sites.a)
            },
            cli_site(&sites.b),
        ];
        println!(
            "    $ kubectl lifeline failover --to b -n {} --yes   (site a does not answer)",
            sites.b.app
        );
        let steps = Steps::on_stdout("    ");
        within(lifeline_cli::failover::run(
            &specs,
            &sites.b.app,
            "b",
            &steps,
            |promotions| {
                for line in lifeline_cli::failover::table(promotions).lines() {
                    println!("    {line}");
                }
                Ok(())
            },
        ))
        .await?;
    } else {
        sites.b.replicate("db", "primary").await?;
    }
    sites
        .b
        .wait_state("db", CurrentState::Primary, false)
        .await?;
    let kept = tree(&sites.b.volume(&volume)) == synced;
    anyhow::ensure!(kept, "B does not hold the last synced data");
    println!(
        "    B serves the last synced data: {kept}; the unsynced write is lost, as async DR promises"
    );
    let forced = wait::until(PHASE_TIMEOUT, "the ForcePromoted Event on B", || {
        event_note(&sites.b, "db", "ForcePromoted")
    })
    .await?;
    println!("    B's controller, Event ForcePromoted: {forced}");
    table(&mut sites, "db").await?;

    if runbook {
        step(
            "A comes back (still primary, its application running): fail back — A demoted, resynced from B, then switched back",
        );
        sites.a.driver.restart().await?;
        sites.a.controller.restart().await?;
        let specs = [cli_site(&sites.a), cli_site(&sites.b)];
        println!(
            "    $ kubectl lifeline failback --to a --from b -n {} --yes",
            sites.a.app
        );
        let steps = Steps::on_stdout("    ");
        within(lifeline_cli::failback::run(
            &specs,
            &sites.a.app,
            "a",
            "b",
            &steps,
            |discards| {
                // What a person would be asked about; --yes in the demo.
                for line in lifeline_cli::failback::table("a", discards).lines() {
                    println!("    {line}");
                }
                Ok(())
            },
        ))
        .await?;
        same(&sites, &sites.a, &sites.b, &volume).await?;
        table(&mut sites, "db").await?;
    } else {
        step("A comes back: demoted, it resyncs from B");
        sites.a.driver.restart().await?;
        sites.a.controller.restart().await?;
        sites.a.replicate("db", "secondary").await?;
        sites
            .a
            .wait_state("db", CurrentState::Secondary, true)
            .await?;
        same(&sites, &sites.b, &sites.a, &volume).await?;
        table(&mut sites, "db").await?;

        step("fail back to A");
        sites.migrate(&sites.b, &sites.a, "db").await?;
        table(&mut sites, "db").await?;
    }

    step(
        "backup: a CSI snapshot of the volume on A, moved by the data mover into a restic repository",
    );
    sites.a.start_datamover().await?;
    let at_backup = tree(&data);
    let backup = backup(&sites.a, "db").await?;
    let notes = backup.metadata.annotations.clone().unwrap_or_default();
    println!(
        "    repository {}",
        notes
            .get(annotations::RESTIC_REPOSITORY)
            .cloned()
            .unwrap_or_default()
    );
    if let Some((_, admin)) = &sites.a.datamover {
        println!("    bytes moved: {}", bytes_moved(admin).await);
    }

    step("a later change, then restore the backup from its annotations into a new claim");
    std::fs::write(data.join("tables/after-backup.txt"), "not in the backup")?;
    let handle = restore(&sites.a, &backup).await?;
    let restored = sites.a.claim_from_handle("db-restored", &handle).await?;
    println!(
        "    the restored claim holds exactly the backed-up files: {}",
        tree(&restored) == at_backup
    );
    anyhow::ensure!(
        tree(&restored) == at_backup,
        "the restored claim differs from the backup"
    );

    println!(
        "\n==> done in {:.0?}: migration, failback, disaster failover, recovery, failback, backup and restore; data checked at every step",
        started.elapsed()
    );
    if keep {
        println!("\n--keep: both sites keep running until Ctrl-C. Explore with:");
        println!(
            "  kubectl lifeline status -n {} --site a={} --site b={}",
            sites.a.app,
            sites.a.cluster.kubeconfig().display(),
            sites.b.cluster.kubeconfig().display()
        );
        for site in [&sites.a, &sites.b] {
            let kubectl = format!(
                "kubectl --kubeconfig {} -n {}",
                site.cluster.kubeconfig().display(),
                site.app
            );
            println!("  site {}:", site.name);
            println!("    {kubectl} get vr,pvc");
            println!("    {kubectl} describe vr db-replication");
            println!("    {kubectl} get events");
            println!("    {kubectl} get vr db-replication -o yaml");
            if let Some(admin) = site.controller_admin() {
                println!("    curl -s http://{admin}/metrics | grep lifeline_volume_replication");
            }
        }
        tokio::signal::ctrl_c().await?;
    }
    Ok(())
}
