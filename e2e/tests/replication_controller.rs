//! The real replication controller binary and the real hostpath driver against the test
//! cluster: watches, status writes, finalizers and Events through the API, not a mock.

use std::time::Duration;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::DeleteParams;
use kube::{Api, ResourceExt};
use lifeline_api::replication::{CurrentState, PVC_FINALIZER, VolumeReplication};
use lifeline_e2e::process::{Process, binary, lone_hostpath_driver};
use lifeline_e2e::{TestCluster, fixtures, wait};
use serde_json::json;

const T: Duration = Duration::from_secs(60);
const DRIVER: &str = "hostpath.lifeline.dev";

#[tokio::test]
async fn a_volume_replication_becomes_primary_and_deletes_cleanly() {
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("repl").await.unwrap();
    let client = cluster.client();
    let dir = cluster.dir();
    let root = dir.join("site-a");
    let volume = format!("vol-{ns}");
    std::fs::create_dir_all(root.join("volumes").join(&volume)).unwrap();
    std::fs::write(root.join("volumes").join(&volume).join("data.txt"), "hello").unwrap();
    let (driver, endpoint) = start_driver(dir, &root).await;
    let mut controller = start_controller(
        &cluster,
        &ns,
        &endpoint,
        &["--log-level", "info,lifeline_replication_controller=debug"],
    )
    .await;

    let (pvcs, vrs) = replicated_claim(
        &client,
        &ns,
        &volume,
        json!({"provisioner": DRIVER, "parameters": {"schedulingInterval": "1m"}}),
    )
    .await;

    let primary = wait::for_object(&vrs, "data-replication", T, "to be Primary", |vr| {
        vr.status
            .as_ref()
            .is_some_and(|s| s.state() == Some(CurrentState::Primary))
    })
    .await
    .unwrap();
    let status = primary.status.unwrap();
    let completed = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Completed")
        .unwrap();
    assert_eq!(
        (completed.status.as_str(), completed.reason.as_str()),
        ("True", "Promoted")
    );
    assert_eq!(status.observed_generation, primary.metadata.generation);
    assert!(
        pvcs.get("data")
            .await
            .unwrap()
            .finalizers()
            .contains(&PVC_FINALIZER.to_owned())
    );
    // No peer here, so the promotion needed force; the Event says so.
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(client.clone(), &ns);
    wait::until(T, "a ForcePromoted event", || async {
        let list = events.list(&Default::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| e.reason.as_deref() == Some("ForcePromoted"))
            .then_some(())
    })
    .await
    .unwrap();

    // The admin endpoint: separate liveness and readiness, and the metrics of what happened.
    let admin = controller.wait_for_line("admin-listen", T).await.unwrap();
    assert!(
        http_get(&admin, "/healthz")
            .await
            .starts_with("HTTP/1.1 200")
    );
    let ready = http_get(&admin, "/readyz").await;
    assert!(
        ready.starts_with("HTTP/1.1 200"),
        "{ready}\n{}",
        controller.logs()
    );
    let metrics = http_get(&admin, "/metrics").await;
    assert!(
        metrics.contains("lifeline_replication_reconciles_total{result=\"ok\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lifeline_csi_rpc_duration_seconds_count{code=\"FAILED_PRECONDITION\",method=\"PromoteVolume\"} 1"),
        "the refused planned promotion is counted: {metrics}"
    );

    vrs.delete("data-replication", &DeleteParams::default())
        .await
        .unwrap();
    wait::for_deletion(&vrs, "data-replication", T)
        .await
        .unwrap();
    let released = pvcs.get("data").await.unwrap();
    assert!(!released.finalizers().contains(&PVC_FINALIZER.to_owned()));
    let status = controller.terminate(T).await.unwrap();
    assert!(
        status.success(),
        "SIGTERM stops the controller cleanly: {status}"
    );
    drop(driver);
}

/// The hostpath driver on `root`, serving on a socket in `dir`; and its endpoint.
async fn start_driver(dir: &std::path::Path, root: &std::path::Path) -> (Process, String) {
    lone_hostpath_driver(dir, "driver", root, T).await.unwrap()
}

/// The replication controller for `ns`, with its own identity, driving the driver at `endpoint`.
async fn start_controller(
    cluster: &TestCluster,
    ns: &str,
    endpoint: &str,
    extra: &[&str],
) -> Process {
    let kubeconfig = cluster
        .controller_kubeconfig(lifeline_e2e::rbac::Controller::Replication, ns, None)
        .await
        .unwrap();
    let args: Vec<String> = [
        "--driver-name",
        DRIVER,
        "--csi-address",
        endpoint,
        "--admin-address",
        "127.0.0.1:0",
        "--watch-namespace",
        ns,
    ]
    .iter()
    .chain(extra)
    .map(|a| a.to_string())
    .collect();
    Process::spawn(
        cluster.dir(),
        "replication-controller",
        &binary(
            "lifeline-replication-controller",
            "lifeline-replication-controller",
        )
        .unwrap(),
        &args,
        &[("KUBECONFIG".into(), kubeconfig.display().to_string())],
    )
    .unwrap()
}

/// The class `gold-<ns>` with `class_spec`, a CSI volume on `volume`, the claim `data` bound
/// to it, and the VolumeReplication `data-replication` (primary) of that claim.
async fn replicated_claim(
    client: &kube::Client,
    ns: &str,
    volume: &str,
    class_spec: serde_json::Value,
) -> (Api<PersistentVolumeClaim>, Api<VolumeReplication>) {
    fixtures::replicated_claim(
        client,
        ns,
        DRIVER,
        volume,
        &format!("gold-{ns}"),
        class_spec,
        "data-replication",
    )
    .await
    .unwrap()
}

async fn http_get(address: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

/// The reconcile reads its class, claim and volume from the controller's watches, not with a
/// GET each (on a real API server those GETs were a third of the work per VolumeReplication).
/// Everything exists before the controller starts, so its first lists hold it all: the access
/// log shows lists and watches of the three kinds and not one GET of them.
#[tokio::test]
async fn the_reconcile_reads_class_claim_and_volume_from_watch_caches() {
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("cached").await.unwrap();
    let client = cluster.client();
    let dir = cluster.dir();
    let root = dir.join("site-a");
    let volume = format!("vol-{ns}");
    std::fs::create_dir_all(root.join("volumes").join(&volume)).unwrap();
    let (_pvcs, vrs) =
        replicated_claim(&client, &ns, &volume, json!({"provisioner": DRIVER})).await;
    let (_driver, endpoint) = start_driver(dir, &root).await;
    let _controller = start_controller(&cluster, &ns, &endpoint, &[]).await;
    wait::for_object(&vrs, "data-replication", T, "to be Primary", |vr| {
        vr.status
            .as_ref()
            .is_some_and(|s| s.state() == Some(CurrentState::Primary))
    })
    .await
    .unwrap();
    let log = cluster.audit_log().await.unwrap();
    let of_controller: Vec<_> = log
        .iter()
        .filter(|a| a.agent.starts_with("lifeline-replication-controller/"))
        .collect();
    for resource in [
        "volumereplicationclasses",
        "persistentvolumeclaims",
        "persistentvolumes",
    ] {
        let verbs: Vec<&str> = of_controller
            .iter()
            .filter(|a| a.resource == resource)
            .map(|a| a.verb.as_str())
            .collect();
        assert!(
            verbs.contains(&"list") && verbs.contains(&"watch"),
            "{resource} is watched: {verbs:?}"
        );
        assert!(
            !verbs.contains(&"get"),
            "{resource} is never fetched: {verbs:?}"
        );
    }
}
