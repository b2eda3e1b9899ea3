//! The DR runbook with `kubectl lifeline` across two real sites, a workload at each (a
//! Deployment whose Pods mount the claim), data checked byte for byte: protect → migrate
//! (interrupted after the demote and rerun) → failback; protect → disaster → failover with the
//! data age shown → site A back → failback; and the refusals.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use lifeline_api::replication::{CurrentState, VolumeReplication};
use lifeline_e2e::sites::{SiteEnv, TwoSites, tree};
use lifeline_e2e::{cli, wait};
use serde_json::json;

const T: Duration = Duration::from_secs(60);

/// How many times the site's controller called `method` on its driver (every gRPC code).
async fn rpc_calls(site: &SiteEnv, method: &str) -> f64 {
    let text = site.controller_metrics().await.unwrap();
    let label = format!("method=\"{method}\"");
    text.lines()
        .filter(|l| l.starts_with("lifeline_csi_rpc_duration_seconds_count{") && l.contains(&label))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

async fn vr(site: &SiteEnv, claim: &str) -> VolumeReplication {
    site.vrs()
        .get(&format!("{claim}-replication"))
        .await
        .unwrap()
}

/// A primary `db` on A with data and a running Deployment `shop` (2 replicas), B set up as its
/// standby by `kubectl lifeline protect` with its own `shop` at 0 (`b_remembers`: the count B
/// runs after a failover), both in sync. Returns the volume id.
async fn protected_shop(sites: &TwoSites, b_remembers: Option<i32>) -> String {
    let (a, b) = (&sites.a, &sites.b);
    let volume = a.provision("db").await.unwrap();
    std::fs::create_dir_all(a.volume(&volume).join("tables")).unwrap();
    std::fs::write(a.volume(&volume).join("tables/orders"), vec![7u8; 1 << 16]).unwrap();
    a.replicate("db", "primary").await.unwrap();
    a.wait_state("db", CurrentState::Primary, true)
        .await
        .unwrap();
    a.deploy("shop", "db", 2, None).await.unwrap();
    b.deploy("shop", "db", 0, b_remembers).await.unwrap();
    a.wait_pods("db", 2).await.unwrap();
    let pair = [cli::site("a", a), cli::site("b", b)];
    let protect = cli::run(&cli::args(
        &["protect", "--from", "a", "--to", "b"],
        &a.app,
        &pair,
    ))
    .await;
    assert_eq!(protect.code, 0, "{protect:?}");
    b.wait_state("db", CurrentState::Secondary, true)
        .await
        .unwrap();
    sites.wait_in_sync(a, b, &volume).await.unwrap();
    a.wait_reports_sync("db").await.unwrap();
    volume
}

#[tokio::test]
async fn migrate_interrupted_after_the_demote_finishes_on_a_rerun_then_fails_back() {
    let sites = TwoSites::start().await.unwrap();
    let (a, b) = (&sites.a, &sites.b);
    let ns = a.app.clone();
    let volume = protected_shop(&sites, None).await;
    // A StatefulSet mounts the claim too: it is scaled with the Deployment.
    a.workload("StatefulSet", "indexer", "db", 1, None)
        .await
        .unwrap();
    b.workload("StatefulSet", "indexer", "db", 0, None)
        .await
        .unwrap();
    a.wait_pods("db", 3).await.unwrap();
    std::fs::write(a.volume(&volume).join("tables/customers"), b"alice, bob").unwrap();
    sites.wait_in_sync(a, b, &volume).await.unwrap();
    let pair = [cli::site("a", a), cli::site("b", b)];
    let migrate = cli::args(&["migrate", "--from", "a", "--to", "b"], &ns, &pair);

    // Interrupted right after it asked A to demote: killed, as a lost terminal would.
    let (mut child, printed) = cli::run_until(&migrate, "demoted (asked for secondary)", T)
        .await
        .unwrap();
    child.kill().await.unwrap();
    assert!(printed.contains("scaled from 2 to 0"), "{printed}");
    assert_eq!(
        a.deployment("shop").await.unwrap(),
        (0, Some("2".into())),
        "scaled down, its count remembered"
    );
    assert_eq!(a.pods_mounting("db").await.unwrap(), 0);
    assert_eq!(
        vr(a, "db").await.spec.replication_state.as_str(),
        "secondary"
    );

    // The rerun goes on from there: no second demote, one promote, the workload at B.
    let rerun = cli::run(&migrate).await;
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert!(
        rerun.stderr.contains("already asks for secondary"),
        "{rerun:?}"
    );
    assert!(
        rerun.stderr.contains("[") && rerun.stderr.contains("s] "),
        "elapsed time per step"
    );
    b.wait_state("db", CurrentState::Primary, true)
        .await
        .unwrap();
    assert_eq!(rpc_calls(a, "DemoteVolume").await, 1.0, "demoted once");
    assert_eq!(rpc_calls(b, "PromoteVolume").await, 1.0, "promoted once");
    assert!(
        !b.controller.logs().contains("promoting with force"),
        "a planned migration needs no force"
    );
    assert_eq!(b.deployment("shop").await.unwrap(), (2, Some("2".into())));
    assert_eq!(
        b.stateful_set("indexer").await.unwrap(),
        (1, Some("1".into()))
    );
    b.wait_pods("db", 3).await.unwrap();
    assert_eq!(a.pods_mounting("db").await.unwrap(), 0);
    assert_eq!(
        tree(&b.volume(&volume)),
        tree(&a.volume(&volume)),
        "B holds exactly A's data"
    );
    assert_eq!(
        std::fs::read(b.volume(&volume).join("tables/customers")).unwrap(),
        b"alice, bob"
    );

    // The application writes on B; fail back to A the same checked way.
    std::fs::write(b.volume(&volume).join("tables/on-b"), b"written on B").unwrap();
    sites.wait_in_sync(b, a, &volume).await.unwrap();
    let back = cli::run(&cli::args(
        &["failback", "--to", "a", "--from", "b"],
        &ns,
        &pair,
    ))
    .await;
    assert_eq!(back.code, 0, "{back:?}");
    a.wait_state("db", CurrentState::Primary, true)
        .await
        .unwrap();
    assert_eq!(
        vr(b, "db").await.spec.replication_state.as_str(),
        "secondary"
    );
    assert_eq!(a.deployment("shop").await.unwrap(), (2, Some("2".into())));
    assert_eq!(b.deployment("shop").await.unwrap(), (0, Some("2".into())));
    assert_eq!(
        a.stateful_set("indexer").await.unwrap(),
        (1, Some("1".into()))
    );
    a.wait_pods("db", 3).await.unwrap();
    assert_eq!(b.pods_mounting("db").await.unwrap(), 0);
    assert_eq!(
        std::fs::read(a.volume(&volume).join("tables/on-b")).unwrap(),
        b"written on B"
    );
    assert_eq!(tree(&a.volume(&volume)), tree(&b.volume(&volume)));
    assert!(!a.controller.logs().contains("promoting with force"));

    cli::within_documented_rbac(&a.cluster).await;
    cli::within_documented_rbac(&b.cluster).await;
}

#[tokio::test]
async fn disaster_failover_shows_the_data_age_needs_a_yes_and_fails_back_when_a_returns() {
    let mut sites = TwoSites::start().await.unwrap();
    let ns = sites.a.app.clone();
    let volume = protected_shop(&sites, Some(1)).await;
    sites.b.wait_reports_sync("db").await.unwrap();
    let synced = tree(&sites.a.volume(&volume));
    let pair = [cli::site("a", &sites.a), cli::site("b", &sites.b)];

    // While A answers, failover refuses and points to migrate.
    let early = cli::run(&cli::args(&["failover", "--to", "b", "--yes"], &ns, &pair)).await;
    assert_eq!(early.code, 1, "{early:?}");
    assert!(
        early.stderr.contains("migrate --from a --to b"),
        "{early:?}"
    );

    // The disaster: the link goes, a write lands on A that never reaches B, A is gone.
    lifeline_e2e::process::admin_post(&sites.a.admin, "/link/sever")
        .await
        .unwrap();
    std::fs::write(
        sites.a.volume(&volume).join("tables/lost"),
        b"never replicated",
    )
    .unwrap();
    sites.a.controller.kill().await;
    sites.a.driver.kill().await;
    let gone = [
        format!("a={}", cli::dead_kubeconfig(&sites.a.cluster).display()),
        pair[1].clone(),
    ];

    // Without a yes (no terminal): shows what B holds, promotes nothing.
    let unconfirmed = cli::run(&cli::args(&["failover", "--to", "b"], &ns, &gone)).await;
    assert_eq!(unconfirmed.code, 1, "{unconfirmed:?}");
    assert!(unconfirmed.stderr.contains("--yes"), "{unconfirmed:?}");
    for column in ["CLAIM", "LAST SYNC RECEIVED", "DATA AGE", "RPO BOUND"] {
        assert!(unconfirmed.stdout.contains(column), "{unconfirmed:?}");
    }
    assert_eq!(
        vr(&sites.b, "db").await.spec.replication_state.as_str(),
        "secondary"
    );

    // With --yes, JSON: the data age at B, within the bound; B promoted and serving.
    let mut args = cli::args(&["failover", "--to", "b", "--yes"], &ns, &gone);
    args.extend(["-o".into(), "json".into()]);
    let failover = cli::run(&args).await;
    assert_eq!(failover.code, 0, "{failover:?}");
    let shown: serde_json::Value = serde_json::from_str(&failover.stdout).unwrap();
    assert_eq!(shown[0]["claim"], "db");
    let (age, bound) = (
        shown[0]["dataAge"].as_f64().unwrap(),
        shown[0]["rpoBound"].as_f64().unwrap(),
    );
    assert!(age <= bound, "data age {age}s within the bound {bound}s");
    assert!(shown[0]["lastSyncTime"].is_string(), "{shown}");
    sites
        .b
        .wait_state("db", CurrentState::Primary, false)
        .await
        .unwrap();
    assert!(sites.b.controller.logs().contains("promoting with force"));
    assert_eq!(sites.b.deployment("shop").await.unwrap().0, 1);
    sites.b.wait_pods("db", 1).await.unwrap();
    assert_eq!(
        tree(&sites.b.volume(&volume)),
        synced,
        "B serves the last synced data; the unsynced write is lost, as async DR promises"
    );
    std::fs::write(sites.b.volume(&volume).join("tables/on-b"), b"written on B").unwrap();

    // A comes back, still primary with its workload running: failback resyncs it from B,
    // then switches back.
    sites.a.driver.restart().await.unwrap();
    sites.a.controller.restart().await.unwrap();
    let split = cli::run(&cli::args(&["status"], &ns, &pair)).await;
    assert_eq!(split.code, 1, "{split:?}");
    // Failing back discards what a wrote after its last sync: it says how much, and without a
    // yes it does nothing.
    let unasked = cli::run(&cli::args(
        &["failback", "--to", "a", "--from", "b"],
        &ns,
        &pair,
    ))
    .await;
    assert_eq!(unasked.code, 1, "{unasked:?}");
    assert!(
        unasked.stdout.contains("s of writes at most"),
        "{unasked:?}"
    );
    assert!(unasked.stderr.contains("--yes"), "{unasked:?}");
    let still = cli::run(&cli::args(&["status"], &ns, &pair)).await;
    assert!(
        still.stdout.contains("split-brain"),
        "nothing was demoted: {still:?}"
    );
    let back = cli::run(&cli::args(
        &["failback", "--to", "a", "--from", "b", "--yes"],
        &ns,
        &pair,
    ))
    .await;
    assert_eq!(back.code, 0, "{back:?}");
    assert!(back.stderr.contains("resynced from site b"), "{back:?}");
    sites
        .a
        .wait_state("db", CurrentState::Primary, true)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(sites.a.volume(&volume).join("tables/on-b")).unwrap(),
        b"written on B"
    );
    assert!(
        !sites.a.volume(&volume).join("tables/lost").exists(),
        "A's unsynced write was discarded by the resync"
    );
    // Each site's own count: A runs 2 again, B (sized for 1) remembers 1.
    assert_eq!(
        sites.a.deployment("shop").await.unwrap(),
        (2, Some("2".into()))
    );
    assert_eq!(
        sites.b.deployment("shop").await.unwrap(),
        (0, Some("1".into()))
    );
    sites.a.wait_pods("db", 2).await.unwrap();
    assert_eq!(sites.b.pods_mounting("db").await.unwrap(), 0);
    // And status says protected again (exit 0) once A reports its first sync.
    let status = cli::args(&["status"], &ns, &pair);
    wait::until(T, "status to say protected", || async {
        (cli::run(&status).await.code == 0).then_some(())
    })
    .await
    .unwrap();

    cli::within_documented_rbac(&sites.a.cluster).await;
    cli::within_documented_rbac(&sites.b.cluster).await;
}

#[tokio::test]
async fn migrate_refuses_a_stale_volume_before_touching_anything() {
    let mut sites = TwoSites::start().await.unwrap();
    sites.replicated("db").await.unwrap();
    sites.a.deploy("shop", "db", 1, None).await.unwrap();
    sites.a.wait_pods("db", 1).await.unwrap();
    sites.a.wait_reports_sync("db").await.unwrap();
    // A's last sync an hour old, as a controller that stopped reporting leaves it.
    sites.a.controller.kill().await;
    let an_hour_ago = Timestamp::from_second(Timestamp::now().as_second() - 3600).unwrap();
    sites
        .a
        .vrs()
        .patch_status(
            "db-replication",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"lastSyncTime": an_hour_ago.to_string()}})),
        )
        .await
        .unwrap();
    let ns = sites.a.app.clone();
    let pair = [cli::site("a", &sites.a), cli::site("b", &sites.b)];
    let refused = cli::run(&cli::args(
        &["migrate", "--from", "a", "--to", "b"],
        &ns,
        &pair,
    ))
    .await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("stale") && refused.stderr.contains("--allow-stale"),
        "{refused:?}"
    );
    assert_eq!(cli::requests(&sites.a.cluster, "patch").await, 0);
    assert_eq!(cli::requests(&sites.b.cluster, "patch").await, 0);
    assert_eq!(sites.a.deployment("shop").await.unwrap(), (1, None));
    assert_eq!(
        vr(&sites.a, "db").await.spec.replication_state.as_str(),
        "primary"
    );
}

/// A kubeconfig like site `site`'s CLI kubeconfig whose token the API server does not know.
fn unknown_token_kubeconfig(site: &SiteEnv) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&site.cli_kubeconfig).unwrap();
    let mut config: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    config["users"][0]["user"]["token"] = "not-a-token-the-server-knows".into();
    let path = site.cluster.dir().join("unknown-token-kubeconfig.json");
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

/// Issue 29, items 1 and 2: a typo is a local error, never a site gone and never a split-brain.
/// Both sites are up and protected throughout; every refusal comes before any write at either
/// site, and A stays the only primary.
#[tokio::test]
async fn typos_and_denials_are_local_errors_not_a_site_gone() {
    let sites = TwoSites::start().await.unwrap();
    protected_shop(&sites, None).await;
    let (a, b) = (&sites.a, &sites.b);
    let ns = a.app.clone();
    let pair = [cli::site("a", a), cli::site("b", b)];
    let run = |command: &[&str], sites: Vec<String>| {
        let args = cli::args(command, &ns, &sites);
        async move { cli::run(&args).await }
    };
    let patches_before = (
        cli::requests(&a.cluster, "patch").await,
        cli::requests(&b.cluster, "patch").await,
    );

    // The same site as --from and --to: exit 2 before anything is asked.
    for command in [
        &["failback", "--to", "b", "--from", "b"][..],
        &["migrate", "--from", "a", "--to", "a"][..],
    ] {
        let refused = run(command, pair.to_vec()).await;
        assert_eq!(refused.code, 2, "{command:?}: {refused:?}");
        assert!(refused.stderr.contains("both name site"), "{refused:?}");
        assert!(!refused.stderr.contains("failback --to"), "{refused:?}");
    }

    // Site A named with a kubeconfig that does not exist (a typo), while A is alive: a local
    // error naming the file, not "site a is gone".
    let typo = ["a=/nonexistent/site-a.yaml".to_owned(), cli::site("b", b)];
    let refused = run(&["failover", "--to", "b", "--yes"], typo.to_vec()).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stderr.contains("/nonexistent/site-a.yaml")
            && refused.stderr.contains("not a site that is gone"),
        "{refused:?}"
    );
    assert!(!refused.stdout.contains("DATA AGE"), "{refused:?}");
    let status = run(&["status"], typo.to_vec()).await;
    assert_eq!(status.code, 2, "{status:?}");

    // Site A's credentials refused (401): local, with the address and the server's words.
    let denied = [
        format!("a={}", unknown_token_kubeconfig(a).display()),
        cli::site("b", b),
    ];
    let refused = run(&["failover", "--to", "b", "--yes"], denied.to_vec()).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stderr.contains("https://127.0.0.1:") && refused.stderr.contains("401"),
        "{refused:?}"
    );
    assert!(!refused.stderr.contains("ErrorResponse"), "{refused:?}");

    // Only the target named: nothing to check is gone, refused.
    let alone = [cli::site("b", b)];
    let refused = run(&["failover", "--to", "b", "--yes"], alone.to_vec()).await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("name the site that is gone"),
        "{refused:?}"
    );

    // Issue 29 items 5 and 7: protect to a site that does not exist, or of a namespace with
    // nothing in it, is no success; an empty status says where it looked; -o wide and yaml.
    let refused = run(
        &["protect", "--from", "a", "--to", "c", "--dry-run"],
        pair.to_vec(),
    )
    .await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("no site \"c\""), "{refused:?}");
    let empty = cli::args(
        &["protect", "--from", "a", "--to", "b"],
        "nothing-here",
        &pair,
    );
    let refused = cli::run(&empty).await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("nothing to protect"), "{refused:?}");
    let nothing = cli::run(&cli::args(&["status"], "nothing-here", &pair)).await;
    assert_eq!(nothing.code, 1, "{nothing:?}");
    assert!(
        nothing
            .stdout
            .contains("in namespace nothing-here at site(s) a (https://127.0.0.1:"),
        "{nothing:?}"
    );
    let wide = run(&["status", "-o", "wide"], pair.to_vec()).await;
    assert_eq!(wide.code, 0, "{wide:?}");
    assert!(
        wide.stdout.contains("REPLICATING") && wide.stdout.contains("SINCE SWITCH"),
        "{wide:?}"
    );
    let yaml = run(&["status", "-o", "yaml"], pair.to_vec()).await;
    let parsed: serde_json::Value = serde_saphyr::from_str(&yaml.stdout).unwrap();
    assert_eq!(parsed["volumes"][0]["verdict"], "protected", "{yaml:?}");

    // Nothing was written anywhere: A is still the one primary.
    assert_eq!(
        (
            cli::requests(&a.cluster, "patch").await,
            cli::requests(&b.cluster, "patch").await,
        ),
        patches_before
    );
    assert_eq!(vr(a, "db").await.spec.replication_state.as_str(), "primary");
    assert_eq!(
        vr(b, "db").await.spec.replication_state.as_str(),
        "secondary"
    );

    // Issue 29 item 4: a migration cut short by --timeout names the wait it was in; the
    // application it left at zero replicas at both sites shows as `down` (exit 1), not
    // `protected`; a rerun finishes the switch. A bare Pod that mounts the claim (no workload
    // the CLI scales) holds the migration in its wait for the claim to be unmounted.
    let pods = kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(a.client(), &a.app);
    let holder: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "holds-db"},
        "spec": {"nodeName": "nowhere", "containers": [{"name": "c", "image": "x"}],
                 "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "db"}}]},
    }))
    .unwrap();
    pods.create(&Default::default(), &holder).await.unwrap();
    let cut = run(
        &["migrate", "--from", "a", "--to", "b", "--timeout", "10s"],
        pair.to_vec(),
    )
    .await;
    assert_eq!(cut.code, 2, "{cut:?}");
    assert!(
        cut.stderr.contains(
            "not done within --timeout 10s, while waiting until no Pod at site a mounts the claims"
        ),
        "{cut:?}"
    );
    let status = run(&["status"], pair.to_vec()).await;
    assert_eq!(status.code, 1, "{status:?}");
    assert!(status.stdout.contains("down"), "{status:?}");
    // No kubelet runs it (nodeName nowhere): delete it at once rather than gracefully.
    pods.delete(
        "holds-db",
        &kube::api::DeleteParams::default().grace_period(0),
    )
    .await
    .unwrap();
    let done = run(&["migrate", "--from", "a", "--to", "b"], pair.to_vec()).await;
    assert_eq!(done.code, 0, "{done:?}");
    let after = run(&["status"], pair.to_vec()).await;
    assert_eq!(
        after.code, 0,
        "protected or syncing after the switch: {after:?}"
    );
}
