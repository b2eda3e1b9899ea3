//! The volume-replication-operator v0.3.0 as shipped: one process beside the driver (it dials
//! the driver's socket itself), its release's CRDs (`../shared/upstream-crds/`) and its
//! `manager-role` ClusterRole bound to a ServiceAccount of its own, plus what that role lacks
//! (drivers shipped it inside their own provisioner's role). Its defaults are kept: one
//! reconcile at a time (controller-runtime's default; the release has no flag for it).

use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use super::{Driver, Running, apply_manifest};
use crate::cluster::TestCluster;
use crate::process::Process;
use crate::service_accounts;
use crate::storage_controllers::asset_file;

const ACCOUNT: &str = "volume-replication-operator";

pub fn crds() -> anyhow::Result<Vec<CustomResourceDefinition>> {
    [
        "volume-replication-operator-v0.3.0/replication.storage.openshift.io_volumereplicationclasses.yaml",
        "volume-replication-operator-v0.3.0/replication.storage.openshift.io_volumereplications.yaml",
    ]
    .into_iter()
    .map(crate::upstream::load)
    .collect()
}

pub async fn start(
    cluster: &TestCluster,
    namespace: &str,
    driver: &Driver<'_>,
) -> anyhow::Result<Running> {
    let program = asset_file("volume-replication-operator")?;
    apply_manifest(
        cluster,
        &asset_file("volume-replication-operator-role.yaml")?,
    )
    .await?;
    let identity = service_accounts::identity(cluster, namespace, ACCOUNT).await?;
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": format!("volume-replication-operator-{namespace}")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "manager-role"},
        "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": namespace}]
    }))?;
    Api::<ClusterRoleBinding>::all(cluster.client())
        .create(&PostParams::default(), &binding)
        .await
        .context("cannot bind the operator's manager-role")?;
    grant_what_the_role_lacks(cluster, namespace).await?;
    let mut operator = Process::spawn(
        cluster.dir(),
        "volume-replication-operator",
        &program,
        &[
            format!("--driver-name={}", driver.name),
            format!("--csi-address={}", driver.socket.display()),
            format!("--leader-election-namespace={namespace}"),
            "--health-probe-bind-address=0".into(),
            "--metrics-bind-address=0".into(),
        ],
        &[(
            "KUBECONFIG".into(),
            identity.kubeconfig.display().to_string(),
        )],
    )?;
    // controller-runtime's line once the informers synced and the reconcile workers run.
    operator
        .wait_for_text("Starting workers", Duration::from_secs(120))
        .await?;
    let pid = operator.pid().context("the operator runs")?;
    Ok(Running {
        processes: vec![operator],
        pids: vec![("controller", pid)],
        users: vec![identity.user],
        release: "volume-replication-operator v0.3.0",
    })
}

/// The release's role grants only VolumeReplications; the operator also reads classes, claims,
/// volumes and (through controller-runtime's cache: list and watch) Secrets, updates claims and
/// records Events. Drivers that shipped it granted these in their provisioner's role; the same
/// rules here, bound to the operator's ServiceAccount.
async fn grant_what_the_role_lacks(cluster: &TestCluster, namespace: &str) -> anyhow::Result<()> {
    let name = format!("volume-replication-operator-extras-{namespace}");
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": name},
        "rules": [
            {"apiGroups": ["replication.storage.openshift.io"], "resources": ["volumereplicationclasses"],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["persistentvolumeclaims"],
             "verbs": ["get", "list", "watch", "update", "patch"]},
            {"apiGroups": [""], "resources": ["persistentvolumes", "secrets"],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
        ]
    }))?;
    Api::<ClusterRole>::all(cluster.client())
        .create(&PostParams::default(), &role)
        .await?;
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": namespace}]
    }))?;
    Api::<ClusterRoleBinding>::all(cluster.client())
        .create(&PostParams::default(), &binding)
        .await?;
    Ok(())
}
