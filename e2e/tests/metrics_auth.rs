//! The chart's secured `/metrics` on the real API server: HTTPS with a self-signed certificate
//! made at start, and a bearer token the API server authenticates (TokenReview) and authorises
//! for `get /metrics` (SubjectAccessReview). The probes stay open.

use std::time::Duration;

use lifeline_e2e::metrics::https_get;
use lifeline_e2e::process::{Process, binary};
use lifeline_e2e::{TestCluster, rbac};

const T: Duration = Duration::from_secs(60);

/// The bearer token a harness kubeconfig carries.
fn token_of(kubeconfig: &std::path::Path) -> String {
    std::fs::read_to_string(kubeconfig)
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: ").map(str::to_owned))
        .expect("a token kubeconfig")
}

#[tokio::test]
async fn metrics_need_a_token_allowed_to_get_them_and_probes_do_not() {
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("metrics").await.unwrap();
    let dir = cluster.dir();
    let kubeconfig = cluster
        .controller_kubeconfig(rbac::Controller::Replication, &ns, None)
        .await
        .unwrap();
    let mut controller = Process::spawn(
        dir,
        "replication-controller",
        &binary(
            "lifeline-replication-controller",
            "lifeline-replication-controller",
        )
        .unwrap(),
        &[
            "--driver-name".into(),
            "hostpath.lifeline.dev".into(),
            "--csi-address".into(),
            format!("unix://{}", dir.join("absent.sock").display()),
            "--admin-address".into(),
            "127.0.0.1:0".into(),
            "--watch-namespace".into(),
            ns.clone(),
            "--admin-self-signed".into(),
            "--metrics-auth".into(),
        ],
        &[("KUBECONFIG".into(), kubeconfig.display().to_string())],
    )
    .unwrap();
    let address = controller.wait_for_line("admin-listen", T).await.unwrap();

    let status = |response: &str| response.lines().next().unwrap_or_default().to_owned();
    let healthz = https_get(&address, "/healthz", None).await.unwrap();
    assert!(status(&healthz).contains("200"), "{healthz}");

    let anonymous = https_get(&address, "/metrics", None).await.unwrap();
    assert!(status(&anonymous).contains("401"), "{anonymous}");
    let forged = https_get(&address, "/metrics", Some("not-a-token"))
        .await
        .unwrap();
    assert!(status(&forged).contains("401"), "{forged}");

    // The CLI's user is real but may not read /metrics.
    let cli = token_of(&cluster.cli_kubeconfig().await.unwrap());
    let denied = https_get(&address, "/metrics", Some(&cli)).await.unwrap();
    assert!(status(&denied).contains("403"), "{denied}");
    assert!(denied.contains("may not get /metrics"), "{denied}");

    let admin = token_of(cluster.kubeconfig());
    let scraped = https_get(&address, "/metrics", Some(&admin)).await.unwrap();
    assert!(status(&scraped).contains("200"), "{scraped}");
    assert!(scraped.contains("lifeline_controller_ready"), "{scraped}");
}
