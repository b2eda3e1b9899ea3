//! `kubectl apply`, `create`, `get`, `explain`, `get events` and `describe` work against every
//! backend (discovery, OpenAPI v2 and v3, field validation, tables, Events), with every kubectl
//! named in `LIFELINE_KUBECTL` (binaries separated by `:`; `cargo xtask ci` names the control
//! plane's kubectl and Debian's 1.20) or else the one on PATH; one that does not run fails the
//! test. kubectl
//! 1.27 and newer validate through the server (OpenAPI v3, `fieldValidation=Strict`); older
//! ones download the protobuf OpenAPI v2 document and validate on the client.

use std::path::Path;
use std::process::Command;

use lifeline_e2e::TestCluster;

fn kubectls() -> Vec<String> {
    let named = std::env::var("LIFELINE_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    named
        .split(':')
        .filter(|k| !k.is_empty())
        .map(|k| {
            let works = Command::new(k)
                .args(["version", "--client"])
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(
                works,
                "{k} (LIFELINE_KUBECTL, else PATH) does not run; `cargo xtask ci` provides kubectl"
            );
            k.to_owned()
        })
        .collect()
}

// kubectl blocks this thread while the local server answers on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_creates_from_a_file_and_gets() {
    let kubectls = kubectls();
    assert!(!kubectls.is_empty(), "LIFELINE_KUBECTL names no kubectl");
    let cluster = TestCluster::start().await.unwrap();
    for (i, kubectl) in kubectls.iter().enumerate() {
        let ns = cluster.namespace(&format!("kubectl-{i}")).await.unwrap();
        eprintln!("with {kubectl}");
        works_with(&cluster, Path::new(kubectl), &ns).await;
    }
}

async fn works_with(cluster: &TestCluster, binary: &Path, ns: &str) {
    // The shared example, moved into this test's namespace.
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/examples/volumereplication.yaml"
    ))
    .unwrap()
    .lines()
    .filter(|l| !l.trim_start().starts_with("namespace:"))
    .collect::<Vec<_>>()
    .join("\n");
    let file = cluster.dir().join("vr.yaml");
    std::fs::write(&file, example).unwrap();
    let example = file.to_str().unwrap();
    let kubectl = |args: &[&str]| {
        let output = Command::new(binary)
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig())
            .args(["--namespace", ns])
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            output.status.success(),
            "kubectl {args:?} failed:\n{stdout}\n{stderr}"
        );
        stdout
    };
    // Validation on (kubectl's default): the server says in its OpenAPI v3 document that it
    // validates fields itself, and refuses a field the CRD does not declare.
    let created = kubectl(&["apply", "-f", example]);
    assert!(
        created.contains("volumereplication.replication.storage.openshift.io/"),
        "{created}"
    );
    let bogus = cluster.dir().join("bogus.yaml");
    std::fs::write(
        &bogus,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace("name: orders-db-replication", "name: bogus-replication")
            .replacen("spec:", "spec:\n  bogusField: 1", 1),
    )
    .unwrap();
    let refused = Command::new(binary)
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .args(["--namespace", ns, "apply", "-f"])
        .arg(&bogus)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "an unknown field was accepted");
    // The server's message (kubectl ≥ 1.27), or kubectl's own from the v2 document.
    assert!(
        stderr.contains("unknown field \"spec.bogusField\"")
            || stderr.contains(
                "unknown field \"bogusField\" in io.openshift.storage.replication.v1alpha1.VolumeReplication.spec"
            ),
        "{stderr}"
    );
    let explained = kubectl(&["explain", "volumereplication.spec"]);
    assert!(
        explained.contains("replicationState") && explained.contains("volumeReplicationClass"),
        "{explained}"
    );
    let listed = kubectl(&["get", "volumereplications"]);
    // The CRD's printer columns, as on a real API server.
    for column in [
        "NAME",
        "AGE",
        "VOLUMEREPLICATIONCLASS",
        "PVCNAME",
        "DESIREDSTATE",
        "CURRENTSTATE",
    ] {
        assert!(listed.contains(column), "{column} in {listed}");
    }
    assert!(listed.contains("primary"), "{listed}");
    // What `cargo xtask demo --keep` tells its user to run.
    let both = kubectl(&["get", "vr,pvc"]);
    assert!(
        both.contains("volumereplication.replication.storage.openshift.io/orders-db-replication"),
        "{both}"
    );
    let short = kubectl(&["get", "vr", "-o", "name"]);
    assert!(
        short.starts_with("volumereplication.replication.storage.openshift.io/"),
        "{short}"
    );
    let yaml = kubectl(&["get", "vr", "-o", "yaml"]);
    assert!(yaml.contains("replicationState: primary"), "{yaml}");
    let configmap = cluster.dir().join("cm.yaml");
    std::fs::write(
        &configmap,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-file}\ndata: {k: v}\n",
    )
    .unwrap();
    kubectl(&["create", "-f", configmap.to_str().unwrap()]);
    assert!(kubectl(&["get", "configmaps"]).contains("from-file"));

    // An Event the controllers would write (events.k8s.io/v1) about the VolumeReplication:
    // kubectl reads it from core v1, in `get events` and in `describe`.
    let vr: serde_json::Value =
        serde_json::from_str(&kubectl(&["get", "vr", "-o", "json"])).unwrap();
    let vr = &vr["items"][0];
    let event: k8s_openapi::api::events::v1::Event = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "vr.promoted"},
        "eventTime": "2026-12-01T10:00:00.000000Z",
        "reportingController": "lifeline.dev/replication-controller",
        "reportingInstance": "replication-controller-0",
        "action": "Promote", "reason": "Promoted", "type": "Normal",
        "note": "volume is marked primary",
        "regarding": {"kind": "VolumeReplication", "namespace": ns,
            "name": vr["metadata"]["name"], "uid": vr["metadata"]["uid"],
            "apiVersion": "replication.storage.openshift.io/v1alpha1"},
    }))
    .unwrap();
    kube::Api::<k8s_openapi::api::events::v1::Event>::namespaced(cluster.client(), ns)
        .create(&Default::default(), &event)
        .await
        .unwrap();
    let events = kubectl(&["get", "events"]);
    assert!(
        events.contains("Promoted") && events.contains("volume is marked primary"),
        "{events}"
    );
    let name = vr["metadata"]["name"].as_str().unwrap();
    let described = kubectl(&["describe", "vr", name]);
    assert!(
        described.contains("Events:") && described.contains("volume is marked primary"),
        "{described}"
    );
}
