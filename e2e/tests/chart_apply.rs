//! The chart meets a real API server: every committed render under `docs/examples/helm/`
//! (CRDs, RBAC, Deployments, Services, PodDisruptionBudgets, the ServiceMonitor and the
//! PrometheusRule) applies server-side with kubectl v1.36 — strict field validation, so an
//! unknown or misplaced field is an error — with no error and no warning. The Prometheus
//! operator's CRDs come from `../shared/upstream-crds/prometheus-operator-v0.93.0/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use lifeline_e2e::{TestCluster, upstream};

fn renders() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/helm");
    let mut renders: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    renders.sort();
    assert!(
        renders.len() >= 8,
        "the renders are in {}: {renders:?}",
        dir.display()
    );
    renders
}

fn prometheus_operator_crds() -> Vec<CustomResourceDefinition> {
    ["podmonitors", "prometheusrules", "servicemonitors"]
        .iter()
        .map(|plural| {
            upstream::load(&format!(
                "prometheus-operator-v0.93.0/monitoring.coreos.com_{plural}.yaml"
            ))
            .unwrap()
        })
        .collect()
}

/// The namespaces a render's objects live in.
fn namespaces(render: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(render).unwrap();
    let objects: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    let mut namespaces: Vec<String> = objects
        .iter()
        .filter_map(|o| o["metadata"]["namespace"].as_str().map(str::to_owned))
        .collect();
    namespaces.sort();
    namespaces.dedup();
    namespaces
}

#[tokio::test]
async fn every_chart_render_applies_server_side_without_a_warning() {
    let cluster = TestCluster::start_with_crds(&prometheus_operator_crds())
        .await
        .unwrap();
    let kubectl = lifeline_e2e::control_plane::kubectl()
        .expect("a kubectl v1.36: KUBEBUILDER_ASSETS/kubectl (cargo xtask control-plane) or PATH");
    let run = |args: &[&str]| {
        let output = Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig())
            .args(args)
            .output()
            .expect("kubectl runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    for render in renders() {
        for namespace in namespaces(&render) {
            let (_, _, stderr) = run(&["create", "namespace", &namespace]);
            assert!(
                stderr.is_empty() || stderr.contains("AlreadyExists"),
                "{stderr}"
            );
        }
        let file = render.display().to_string();
        let (ok, stdout, stderr) = run(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=helm",
            "--validate=strict",
            "-f",
            &file,
        ]);
        assert!(ok, "{file} does not apply:\n{stderr}");
        assert!(
            !stderr.to_lowercase().contains("warning"),
            "{file} applies with warnings:\n{stderr}"
        );
        assert!(stdout.contains("serverside-applied"), "{stdout}");
    }
}
