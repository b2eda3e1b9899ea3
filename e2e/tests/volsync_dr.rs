//! Regional DR for storage that cannot replicate: a claim whose CSI driver has no
//! VolumeReplicationClass, protected by `kubectl lifeline protect --interval 1m` with a VolSync
//! rsync-TLS pair — the real VolSync controller at each site, its own mover scripts run by the
//! kubelet stand-in with Debian's rsync and stunnel, the destination reached through the
//! load-balancer stand-in. Data checked byte for byte after a migration (interrupted and
//! rerun), a disaster failover and the failback; the stale, split-brain and block-mode
//! refusals; the pre-shared key never printed.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Secret};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use lifeline_api::foreign::volsync::{ReplicationDestination, ReplicationSource};
use lifeline_api::replication::VolumeReplicationClass;
use lifeline_e2e::sites::{SiteEnv, TwoSites, tree};
use lifeline_e2e::{cli, wait};
use serde_json::json;

/// A sync: a snapshot, a claim from it, a mover Pod at each end.
const SYNC: Duration = Duration::from_secs(240);

/// `args` with a timeout long enough for a final sync and the pair's reversal.
fn with_timeout(mut args: Vec<String>) -> Vec<String> {
    args.extend(["--timeout".into(), "8m".into()]);
    args
}

/// Runs `status` until it says `verdict` (with its exit code: 0 only for protected or
/// syncing), returning its table.
async fn status_until(args: &[String], verdict: &str) -> String {
    let code = if ["protected", "syncing"].contains(&verdict) {
        0
    } else {
        1
    };
    wait::until(SYNC, &format!("status to say {verdict}"), || async {
        let run = cli::run(args).await;
        (run.code == code && run.stdout.contains(verdict)).then_some(run.stdout)
    })
    .await
    .unwrap()
}

/// The claim's data at a site.
fn data(site: &SiteEnv, volume: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
    tree(&site.volume(volume))
}

/// The pair's objects at a site: (source, destination) present.
async fn objects(site: &SiteEnv, claim: &str) -> (bool, bool) {
    let rs = Api::<ReplicationSource>::namespaced(site.client(), &site.app)
        .get_opt(claim)
        .await
        .unwrap();
    let rd = Api::<ReplicationDestination>::namespaced(site.client(), &site.app)
        .get_opt(claim)
        .await
        .unwrap();
    (rs.is_some(), rd.is_some())
}

/// Waits until the site's destination has received a sync that holds `file`.
async fn wait_synced(site: &SiteEnv, volume: &str, file: &str, bytes: &[u8]) {
    let path = site.volume(volume).join(file);
    wait::until(SYNC, &format!("{file} to reach the other site"), || async {
        (std::fs::read(&path).ok().as_deref() == Some(bytes)).then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_claim_without_replication_is_protected_migrated_failed_over_and_failed_back_with_volsync()
 {
    let sites = TwoSites::start().await.unwrap();
    let ns = sites.a.app.clone();
    for site in [&sites.a, &sites.b] {
        // VolSync's movers keep ownership and permissions only when privileged (the stand-in
        // runs every container as root, and rsync's daemon, as root, would drop to nobody).
        Api::<Namespace>::all(site.client())
            .patch(
                &site.app,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {"volsync.backube/privileged-movers": "true"}}})),
            )
            .await
            .unwrap();
    }
    // Site A's storage cannot replicate: no VolumeReplicationClass for its driver.
    Api::<VolumeReplicationClass>::all(sites.a.client())
        .delete(&sites.a.class, &DeleteParams::default())
        .await
        .unwrap();
    let volume_a = sites.a.provision("db").await.unwrap();
    let root = sites.a.volume(&volume_a);
    std::fs::create_dir_all(root.join("tables/2026")).unwrap();
    std::fs::write(root.join("tables/orders"), vec![7u8; 3 << 20]).unwrap();
    std::fs::write(root.join("tables/2026/december"), b"the first month").unwrap();
    sites.a.deploy("shop", "db", 1, None).await.unwrap();
    sites.b.deploy("shop", "db", 0, None).await.unwrap();
    sites.a.wait_pods("db", 1).await.unwrap();
    let pair = [cli::site("a", &sites.a), cli::site("b", &sites.b)];
    let status = cli::args(&["status"], &ns, &pair);

    // Without --interval, auto says what it leaves and protects nothing.
    let bare = cli::run(&cli::args(
        &["protect", "--from", "a", "--to", "b"],
        &ns,
        &pair,
    ))
    .await;
    assert_eq!(bare.code, 1, "{bare:?}");
    assert!(bare.stderr.contains("pass --interval"), "{bare:?}");

    // A dry run shows the pair and creates nothing; the key is never shown.
    let dry = cli::run(&cli::args(
        &[
            "protect",
            "--from",
            "a",
            "--to",
            "b",
            "--interval",
            "1m",
            "--dry-run",
        ],
        &ns,
        &pair,
    ))
    .await;
    assert_eq!(dry.code, 0, "{dry:?}");
    for kind in [
        "kind: ReplicationDestination",
        "kind: ReplicationSource",
        "* * * * *",
    ] {
        assert!(dry.stdout.contains(kind), "{kind} in {dry:?}");
    }
    assert!(!dry.stdout.contains("volsync:"), "{dry:?}");
    assert_eq!(objects(&sites.b, "db").await, (false, false));

    // Protect: auto picks VolSync for the claim its driver cannot replicate.
    let protect = cli::run(&with_timeout(cli::args(
        &["protect", "--from", "a", "--to", "b", "--interval", "1m"],
        &ns,
        &pair,
    )))
    .await;
    assert_eq!(protect.code, 0, "{protect:?}");
    assert_eq!(objects(&sites.a, "db").await, (true, false));
    assert_eq!(objects(&sites.b, "db").await, (false, true));
    let key = |site: &SiteEnv| {
        let client = site.client();
        let ns = site.app.clone();
        async move {
            let secret = Api::<Secret>::namespaced(client, &ns)
                .get("lifeline-volsync-psk")
                .await
                .unwrap();
            String::from_utf8(secret.data.unwrap()["psk.txt"].0.clone()).unwrap()
        }
    };
    let psk = key(&sites.a).await;
    assert!(
        psk.starts_with("volsync:") && psk.len() == 8 + 64,
        "VolSync's key format"
    );
    assert_eq!(key(&sites.b).await, psk, "the same key at both sites");
    assert!(!protect.stdout.contains(&psk[8..]) && !protect.stderr.contains(&psk[8..]));

    // The first sync: protected (exit 0), in one table with the method shown; B holds A's data.
    let table = status_until(&status, "protected").await;
    assert!(
        table.contains("volsync") && table.contains("protected"),
        "{table}"
    );
    let volume_b = sites.b.bound_volume("db").await.unwrap();
    assert_eq!(data(&sites.b, &volume_b), data(&sites.a, &volume_a));
    let mut json_args = status.clone();
    json_args.extend(["-o".into(), "json".into()]);
    let json: serde_json::Value = serde_json::from_str(&cli::run(&json_args).await.stdout).unwrap();
    let at_a = &json["volumes"][0]["sites"][0]["volumeReplication"];
    assert_eq!(at_a["method"], "volsync");
    // The replication controllers' RPO gauges cover the pair, as a VolumeReplication's.
    for (site, role) in [(&sites.a, "primary"), (&sites.b, "secondary")] {
        let series = format!(
            "lifeline_volume_replication_rpo_bound_seconds{{method=\"volsync\",name=\"db\",namespace=\"{ns}\",role=\"{role}\"}}"
        );
        wait::until(SYNC, &format!("{series} at the {role}"), || async {
            site.controller_metrics()
                .await
                .ok()
                .filter(|text| text.contains(&series))
                .map(|_| ())
        })
        .await
        .unwrap();
    }
    assert_eq!(at_a["interval"], 60.0);
    assert!(
        at_a["lastSyncTime"].is_string() && at_a["lastSyncDuration"].is_number(),
        "{json}"
    );

    // Migrate, killed once the source gave the claim up, then rerun: the final sync carried
    // the last write, B serves exactly A's data, and the pair runs from B to A.
    std::fs::write(root.join("tables/last-write-on-a"), b"just before the move").unwrap();
    let migrate = with_timeout(cli::args(
        &["migrate", "--from", "a", "--to", "b"],
        &ns,
        &pair,
    ));
    let (mut child, printed) = cli::run_until(&migrate, "demoted (role secondary)", SYNC)
        .await
        .unwrap();
    child.kill().await.unwrap();
    assert!(printed.contains("final sync done"), "{printed}");
    let rerun = cli::run(&migrate).await;
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert!(
        !rerun.stderr.contains("final sync ("),
        "no second final sync: {rerun:?}"
    );
    assert_eq!(data(&sites.b, &volume_b), data(&sites.a, &volume_a));
    assert_eq!(sites.b.deployment("shop").await.unwrap().0, 1);
    assert_eq!(
        sites.a.deployment("shop").await.unwrap(),
        (0, Some("1".into()))
    );
    assert_eq!(objects(&sites.a, "db").await, (false, true));
    assert_eq!(objects(&sites.b, "db").await, (true, false));
    status_until(&status, "protected").await;
    std::fs::write(
        sites.b.volume(&volume_b).join("tables/on-b"),
        b"written on B",
    )
    .unwrap();
    wait_synced(&sites.a, &volume_a, "tables/on-b", b"written on B").await;

    // The link goes: B's source stops. Once its last sync is older than interval + duration,
    // status says stale and a migration is refused before anything is touched.
    Api::<ReplicationSource>::namespaced(sites.b.client(), &ns)
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": true}})),
        )
        .await
        .unwrap();
    let stale = status_until(&status, "stale").await;
    assert!(stale.contains("stale"), "{stale}");
    let refused = cli::run(&cli::args(
        &["migrate", "--from", "b", "--to", "a"],
        &ns,
        &pair,
    ))
    .await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("stale"), "{refused:?}");
    assert_eq!(
        sites.b.deployment("shop").await.unwrap().0,
        1,
        "nothing touched"
    );

    // B is gone, with a write A never received. Failover to A shows the data's age, needs a
    // yes, and A serves the last sync it received.
    std::fs::write(
        sites.b.volume(&volume_b).join("tables/lost"),
        b"never synced",
    )
    .unwrap();
    let synced_at_a = data(&sites.a, &volume_a);
    let gone = [
        pair[0].clone(),
        format!("b={}", cli::dead_kubeconfig(&sites.b.cluster).display()),
    ];
    let unconfirmed = cli::run(&cli::args(&["failover", "--to", "a"], &ns, &gone)).await;
    assert_eq!(unconfirmed.code, 1, "{unconfirmed:?}");
    assert!(unconfirmed.stdout.contains("DATA AGE"), "{unconfirmed:?}");
    let failover = cli::run(&with_timeout(cli::args(
        &["failover", "--to", "a", "--yes"],
        &ns,
        &gone,
    )))
    .await;
    assert_eq!(failover.code, 0, "{failover:?}");
    assert_eq!(
        objects(&sites.a, "db").await,
        (false, false),
        "nothing writes A's claim now"
    );
    assert_eq!(sites.a.deployment("shop").await.unwrap().0, 1);
    assert_eq!(data(&sites.a, &volume_a), synced_at_a);
    assert!(!sites.a.volume(&volume_a).join("tables/lost").exists());
    std::fs::write(root.join("tables/on-a-after-failover"), b"A serves").unwrap();

    // B is back, still primary with its source: split-brain, and migrate refuses it.
    Api::<ReplicationSource>::namespaced(sites.b.client(), &ns)
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": false}})),
        )
        .await
        .unwrap();
    let split = cli::run(&status).await;
    assert_eq!(split.code, 1, "{split:?}");
    assert!(split.stdout.contains("split-brain"), "{split:?}");
    let refused = cli::run(&cli::args(
        &["migrate", "--from", "a", "--to", "b"],
        &ns,
        &pair,
    ))
    .await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("split-brain"), "{refused:?}");

    // Failback to B: says what B discards, needs a yes; then B resyncs from A and takes over.
    let unasked = cli::run(&cli::args(
        &["failback", "--to", "b", "--from", "a"],
        &ns,
        &pair,
    ))
    .await;
    assert_eq!(unasked.code, 1, "{unasked:?}");
    assert!(
        unasked.stdout.contains("s of writes at most"),
        "{unasked:?}"
    );
    let back = cli::run(&with_timeout(cli::args(
        &["failback", "--to", "b", "--from", "a", "--yes"],
        &ns,
        &pair,
    )))
    .await;
    assert_eq!(back.code, 0, "{back:?}");
    assert!(back.stderr.contains("resynced from site a"), "{back:?}");
    assert_eq!(data(&sites.b, &volume_b), data(&sites.a, &volume_a));
    assert_eq!(
        std::fs::read(sites.b.volume(&volume_b).join("tables/on-a-after-failover")).unwrap(),
        b"A serves"
    );
    assert!(
        !sites.b.volume(&volume_b).join("tables/lost").exists(),
        "B's unsynced write was discarded by the resync"
    );
    assert_eq!(sites.b.deployment("shop").await.unwrap().0, 1);
    assert_eq!(sites.a.deployment("shop").await.unwrap().0, 0);
    assert_eq!(objects(&sites.b, "db").await, (true, false));
    assert_eq!(objects(&sites.a, "db").await, (false, true));
    status_until(&status, "protected").await;

    // A block-mode claim: refused, saying why.
    Api::<PersistentVolumeClaim>::namespaced(sites.b.client(), &ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "raw"},
                "spec": {"storageClassName": sites.b.storage_class, "volumeMode": "Block",
                         "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let block = cli::run(&cli::args(
        &[
            "protect",
            "--from",
            "b",
            "--to",
            "a",
            "--method",
            "volsync",
            "--interval",
            "1m",
        ],
        &ns,
        &pair,
    ))
    .await;
    assert_eq!(block.code, 1, "{block:?}");
    assert!(
        block.stderr.contains("block-mode") && block.stderr.contains("raw"),
        "{block:?}"
    );

    cli::within_documented_rbac(&sites.a.cluster).await;
    cli::within_documented_rbac(&sites.b.cluster).await;
}
