//! `kubectl lifeline` against two real sites: `status` verdicts, exit codes and JSON shape, and
//! every request it makes allowed by the RBAC rules it documents.

use std::time::Duration;

use lifeline_api::replication::CurrentState;
use lifeline_e2e::sites::TwoSites;
use lifeline_e2e::{cli, wait};

async fn cli(args: &[String]) -> (i32, String) {
    let run = cli::run(args).await;
    (run.code, run.stdout)
}

async fn status(sites: &[String], ns: &str, json: bool) -> (i32, String) {
    let mut args = cli::args(&["status"], ns, sites);
    if json {
        args.extend(["-o".into(), "json".into()]);
    }
    cli(&args).await
}

#[tokio::test]
async fn status_gives_a_verdict_per_volume_and_an_exit_code() {
    let sites = TwoSites::start().await.unwrap();
    let (a, b) = (&sites.a, &sites.b);
    assert_eq!(a.app, b.app, "one application namespace at both sites");
    let ns = a.app.clone();
    let volume = a.provision("db").await.unwrap();
    b.adopt("db", &volume).await.unwrap();
    a.replicate("db", "primary").await.unwrap();
    a.wait_state("db", CurrentState::Primary, true)
        .await
        .unwrap();
    a.wait_reports_sync("db").await.unwrap();
    let pair = [cli::site("a", a), cli::site("b", b)];

    // Only A replicates it: unprotected, exit 1.
    let (code, table) = status(&pair, &ns, false).await;
    assert_eq!(code, 1, "{table}");
    for column in [
        "NAMESPACE",
        "CLAIM",
        "SITE",
        "DESIRED",
        "CURRENT",
        "LAST SYNC",
        "RPO BOUND",
        "VERDICT",
    ] {
        assert!(table.contains(column), "{column} in {table}");
    }
    assert!(table.contains("unprotected"), "{table}");

    // B's peer VolumeReplication: protected, exit 0; the JSON names every fact.
    b.replicate("db", "secondary").await.unwrap();
    b.wait_state("db", CurrentState::Secondary, true)
        .await
        .unwrap();
    let (code, json) = status(&pair, &ns, true).await;
    assert_eq!(code, 0, "{json}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let volume = &report["volumes"][0];
    assert_eq!(volume["namespace"], ns.as_str());
    assert_eq!(volume["claim"], "db");
    assert_eq!(volume["verdict"], "protected");
    let at_a = &volume["sites"][0];
    assert_eq!(at_a["site"], "a");
    assert_eq!(at_a["reachable"], true);
    assert_eq!(at_a["volumeReplication"]["desired"], "primary");
    assert_eq!(at_a["volumeReplication"]["current"], "Primary");
    assert_eq!(at_a["volumeReplication"]["interval"], 60.0);
    assert!(
        at_a["volumeReplication"]["lastSyncTime"].is_string(),
        "{at_a}"
    );
    assert_eq!(
        volume["sites"][1]["volumeReplication"]["current"],
        "Secondary"
    );
    assert_eq!(report["sites"][1]["reachable"], true);

    // A third site whose API server does not answer: site-unreachable, and why.
    let dead = format!("c={}", cli::dead_kubeconfig(&a.cluster).display());
    let (code, json) = status(&[pair[0].clone(), pair[1].clone(), dead], &ns, true).await;
    assert_eq!(code, 1, "{json}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["volumes"][0]["verdict"], "site-unreachable");
    assert_eq!(report["sites"][2]["reachable"], false);
    assert!(
        report["sites"][2]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
    );

    // B promoted too while the link is cut (the driver refuses a forced promotion while the
    // peer answers as primary; cut off, it is the disaster path): split-brain.
    for site in [a, b] {
        lifeline_e2e::process::admin_post(&site.admin, "/link/sever")
            .await
            .unwrap();
    }
    b.replicate("db", "primary").await.unwrap();
    b.wait_state("db", CurrentState::Primary, false)
        .await
        .unwrap();
    let (code, table) = status(&pair, &ns, false).await;
    assert_eq!(code, 1, "{table}");
    assert!(table.contains("split-brain"), "{table}");
    // And migrate refuses it, saying how to resolve it, and changes nothing.
    let refused = cli::run(&cli::args(
        &["migrate", "--from", "a", "--to", "b"],
        &ns,
        &pair,
    ))
    .await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("split-brain") && refused.stderr.contains("failback"),
        "{refused:?}"
    );
    assert_eq!(cli::requests(&a.cluster, "patch").await, 0);
    assert_eq!(cli::requests(&b.cluster, "patch").await, 0);

    // Bad input is refused with exit code 2 and says how to write it.
    let (code, _) = cli(&["status".into(), "--site".into(), "nonsense".into()]).await;
    assert_eq!(code, 2);

    cli::within_documented_rbac(&a.cluster).await;
    cli::within_documented_rbac(&b.cluster).await;
}

async fn protect(pair: &[String], ns: &str, extra: &[&str]) -> (i32, String) {
    let mut args: Vec<String> = ["protect", "--from", "a", "--to", "b", "-n", ns]
        .map(str::to_owned)
        .to_vec();
    for s in pair {
        args.extend(["--site".into(), s.clone()]);
    }
    args.extend(extra.iter().map(|e| e.to_string()));
    cli(&args).await
}

#[tokio::test]
async fn protect_sets_up_the_standby_from_the_primary_alone() {
    use k8s_openapi::api::core::v1::Secret;
    use kube::Api;
    use kube::api::PostParams;
    use lifeline_api::replication::{VolumeReplication, VolumeReplicationClass};

    let sites = TwoSites::start().await.unwrap();
    let (a, b) = (&sites.a, &sites.b);
    let ns = a.app.clone();
    let volume = a.provision("db").await.unwrap();
    std::fs::write(a.volume(&volume).join("orders"), b"42 orders").unwrap();
    a.replicate("db", "primary").await.unwrap();
    a.wait_state("db", CurrentState::Primary, true)
        .await
        .unwrap();
    // A second volume whose class names a Secret (the driver's credentials), present at A only.
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "mirror-credentials", "namespace": ns},
        "stringData": {"token": "s3cr3t"}}))
    .unwrap();
    Api::<Secret>::namespaced(a.client(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let class: VolumeReplicationClass = serde_json::from_value(serde_json::json!({
        "apiVersion": "replication.storage.openshift.io/v1alpha1", "kind": "VolumeReplicationClass",
        "metadata": {"name": "mirror-with-secret"},
        "spec": {"provisioner": a.driver_name, "parameters": {"schedulingInterval": "1m",
            "lifeline.dev/sync-interval-seconds": "1",
            "replication.storage.openshift.io/replication-secret-name": "mirror-credentials",
            "replication.storage.openshift.io/replication-secret-namespace": ns}}}))
    .unwrap();
    Api::<VolumeReplicationClass>::all(a.client())
        .create(&PostParams::default(), &class)
        .await
        .unwrap();
    let logs = a.provision("logs").await.unwrap();
    let vr: VolumeReplication = serde_json::from_value(serde_json::json!({
        "apiVersion": "replication.storage.openshift.io/v1alpha1", "kind": "VolumeReplication",
        "metadata": {"name": "logs-replication", "namespace": ns},
        "spec": {"volumeReplicationClass": "mirror-with-secret", "replicationState": "primary",
                 "dataSource": {"kind": "PersistentVolumeClaim", "name": "logs"}}}))
    .unwrap();
    a.vrs().create(&PostParams::default(), &vr).await.unwrap();
    a.wait_state("logs", CurrentState::Primary, true)
        .await
        .unwrap();
    let pair = [cli::site("a", a), cli::site("b", b)];

    // --dry-run: the objects, and the standby's verdict on them: here its Secret is missing,
    // which the dry run says (exit 1) without creating anything.
    let (code, json) = protect(&pair, &ns, &["--dry-run", "-o", "json"]).await;
    assert_eq!(code, 1, "{json}");
    let objects: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(kinds.len(), 8, "{kinds:?}");
    assert_eq!(cli::requests(&b.cluster, "create").await, 0);

    // The Secret is missing at B: refused before anything is created, saying what to do.
    let (code, _) = protect(&pair, &ns, &[]).await;
    assert_eq!(code, 1);
    assert_eq!(cli::requests(&b.cluster, "create").await, 0);

    Api::<Secret>::namespaced(b.client(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let (code, _) = protect(&pair, &ns, &[]).await;
    assert_eq!(code, 0);
    // One create per object the dry run showed, and no more.
    assert_eq!(cli::requests(&b.cluster, "create").await, kinds.len());
    // A dry run now says everything exists at B (the API server checked each; none stored).
    let rerun = cli::run(&cli::args(
        &["protect", "--from", "a", "--to", "b", "--dry-run"],
        &ns,
        &pair,
    ))
    .await;
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert_eq!(rerun.stderr.matches("exists, kept").count(), 8, "{rerun:?}");
    assert!(rerun.stderr.contains("nothing was created"), "{rerun:?}");
    // B's controller takes its new VolumeReplications to Secondary, resynced from A.
    b.wait_state("db", CurrentState::Secondary, true)
        .await
        .unwrap();
    b.wait_state("logs", CurrentState::Secondary, true)
        .await
        .unwrap();
    sites.wait_in_sync(a, b, &volume).await.unwrap();
    sites.wait_in_sync(a, b, &logs).await.unwrap();
    // And reports the sync it received, as any secondary of the reference driver does.
    let received = wait::for_object(
        &b.vrs(),
        "db-replication",
        Duration::from_secs(60),
        "reports the sync it received",
        |vr| {
            vr.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "SyncReceived" && c.status == "True")
            })
        },
    )
    .await;
    assert!(
        received.is_ok(),
        "{:?}\n{}",
        b.vrs().get("db-replication").await.unwrap().status,
        b.controller.logs()
    );
    assert_eq!(
        std::fs::read(b.volume(&volume).join("orders")).unwrap(),
        b"42 orders"
    );

    // Again: everything exists and is kept as it is.
    let uid = |vr: VolumeReplication| vr.metadata.uid;
    let before = uid(b.vrs().get("db-replication").await.unwrap());
    let (code, _) = protect(&pair, &ns, &[]).await;
    assert_eq!(code, 0);
    assert_eq!(uid(b.vrs().get("db-replication").await.unwrap()), before);
    assert_eq!(
        b.vrs()
            .get("db-replication")
            .await
            .unwrap()
            .spec
            .replication_state
            .as_str(),
        "secondary"
    );

    a.wait_reports_sync("logs").await.unwrap();
    let (code, table) = status(&pair, &ns, false).await;
    assert_eq!(code, 0, "{table}");
    assert_eq!(table.matches("protected").count(), 2, "{table}");
    cli::within_documented_rbac(&a.cluster).await;
    cli::within_documented_rbac(&b.cluster).await;
}
