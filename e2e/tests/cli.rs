//! `kubectl lifeline` against two real sites: `status` verdicts, exit codes and JSON shape, and
//! every request it makes allowed by the RBAC rules it documents.

use std::time::Duration;
use tokio::process::Command;

use lifeline_api::replication::CurrentState;
use lifeline_e2e::process::binary;
use lifeline_e2e::sites::{SiteEnv, TwoSites};
use lifeline_e2e::{TestCluster, rbac, wait};
use lifeline_runtime::rbac::{Rule, Scope};

fn site(name: &str, site: &SiteEnv) -> String {
    format!("{name}={}", site.cluster.kubeconfig().display())
}

/// Runs `kubectl-lifeline ARGS`; its exit code and stdout. (Asynchronously: the local API
/// servers answer on this test's runtime.)
async fn cli(args: &[String]) -> (i32, String) {
    let output = Command::new(binary("lifeline-cli", "kubectl-lifeline").unwrap())
        .args(args)
        .env_remove("LIFELINE_SITES")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    eprintln!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), stdout)
}

async fn status(sites: &[String], ns: &str, json: bool) -> (i32, String) {
    let mut args = vec!["status".to_owned(), "-n".into(), ns.to_owned()];
    for s in sites {
        args.extend(["--site".into(), s.clone()]);
    }
    if json {
        args.extend(["-o".into(), "json".into()]);
    }
    cli(&args).await
}

/// A kubeconfig like `cluster`'s whose API server is a closed port.
fn dead_kubeconfig(cluster: &TestCluster) -> std::path::PathBuf {
    let text = std::fs::read_to_string(cluster.kubeconfig()).unwrap();
    let mut config: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    config["clusters"][0]["cluster"]["server"] = "http://127.0.0.1:9".into();
    let path = cluster.dir().join("dead-kubeconfig.json");
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

async fn within_documented_rbac(cluster: &TestCluster) {
    let rules: Vec<Rule> = lifeline_cli::rbac::RULES
        .iter()
        .map(|(group, resources, verbs, why)| Rule {
            scope: Scope::Cluster,
            group,
            resources,
            verbs,
            resource_names: &[],
            why,
        })
        .collect();
    rbac::check(
        cluster,
        "kubectl-lifeline/",
        &rules,
        &rbac::Namespaces {
            own: "default",
            protected: None,
        },
    )
    .await
    .unwrap();
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
    wait::for_object(
        &a.vrs(),
        "db-replication",
        Duration::from_secs(60),
        "reports a sync",
        |vr| {
            vr.status
                .as_ref()
                .is_some_and(|s| s.last_sync_time.is_some())
        },
    )
    .await
    .unwrap();
    let pair = [site("a", a), site("b", b)];

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
    let dead = format!("c={}", dead_kubeconfig(&a.cluster).display());
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

    // B promoted too (forced: A still holds it as primary): split-brain.
    b.replicate("db", "primary").await.unwrap();
    b.wait_state("db", CurrentState::Primary, false)
        .await
        .unwrap();
    let (code, table) = status(&pair, &ns, false).await;
    assert_eq!(code, 1, "{table}");
    assert!(table.contains("split-brain"), "{table}");

    // Bad input is refused with exit code 2 and says how to write it.
    let (code, _) = cli(&["status".into(), "--site".into(), "nonsense".into()]).await;
    assert_eq!(code, 2);

    within_documented_rbac(&a.cluster).await;
    within_documented_rbac(&b.cluster).await;
}
