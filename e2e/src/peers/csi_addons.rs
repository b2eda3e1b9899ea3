//! csi-addons v0.14.0 as its release deploys it: the manager (`csi-addons-controller-manager`
//! in `csi-addons-system`, with the release's `crds.yaml` and `rbac.yaml`), and the sidecar
//! beside the driver, which registers a CSIAddonsNode naming its Pod and port; the manager
//! dials that Pod's IP and sends every RPC through the sidecar to the driver's socket. The
//! sidecar runs as a Pod on the kubelet stand-in (it reads its in-cluster configuration and
//! its Pod's owner), owned by a DaemonSet as in a driver's node plugin, with a ServiceAccount
//! of its own. Both run with their defaults except `--enable-auth=false`: the TLS and bearer
//! tokens between them need a service CA the harness does not run.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::{Api, Resource};
use serde_json::{Value, json};

use super::{Driver, Running, apply_manifest, free_port};
use crate::actors::kubelet::NODE;
use crate::cluster::TestCluster;
use crate::process::Process;
use crate::service_accounts::{self, TOKEN_MOUNT};
use crate::storage_controllers::asset_file;

/// Where the release installs the manager.
const SYSTEM: &str = "csi-addons-system";
const MANAGER: &str = "csi-addons-controller-manager";
const SIDECAR: &str = "csi-addons-sidecar";

pub fn crds() -> anyhow::Result<Vec<CustomResourceDefinition>> {
    let path = asset_file("csi-addons-crds.yaml")?;
    let text = std::fs::read_to_string(&path)?;
    serde_saphyr::from_str_multiple(&text)
        .with_context(|| format!("{} is not a list of CRDs", path.display()))
}

pub async fn start(
    cluster: &TestCluster,
    namespace: &str,
    driver: &Driver<'_>,
) -> anyhow::Result<Running> {
    let manager_program = asset_file("csi-addons-manager")?;
    asset_file(SIDECAR)?;
    let namespaces = Api::<Namespace>::all(cluster.client());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": SYSTEM}}))?,
        )
        .await
        .context("cannot create csi-addons-system")?;
    apply_manifest(cluster, &asset_file("csi-addons-rbac.yaml")?).await?;
    let manager_identity = service_accounts::identity(cluster, SYSTEM, MANAGER).await?;
    let mut manager = Process::spawn(
        cluster.dir(),
        "csi-addons-manager",
        &manager_program,
        &[
            format!("--namespace={SYSTEM}"),
            "--enable-auth=false".into(),
            "--health-probe-bind-address=0".into(),
            "--metrics-bind-address=0".into(),
        ],
        &[(
            "KUBECONFIG".into(),
            manager_identity.kubeconfig.display().to_string(),
        )],
    )?;
    manager
        .wait_for_text("Starting workers", Duration::from_secs(120))
        .await?;
    let sidecar_user = start_sidecar(cluster, namespace, driver).await?;
    let pid_manager = manager.pid().context("the manager runs")?;
    let node = connected_node(cluster, namespace).await?;
    let pid_sidecar = sidecar_pid(&node.1).context("cannot find the sidecar's process")?;
    Ok(Running {
        processes: vec![manager],
        pids: vec![("controller", pid_manager), ("sidecar", pid_sidecar)],
        users: vec![manager_identity.user, sidecar_user],
        release: "csi-addons v0.14.0 (manager + sidecar)",
    })
}

/// The sidecar's ServiceAccount and what it may do (what its code calls: its Pod and the
/// Pod's ReplicaSet for the CSIAddonsNode's owner, the class's Secret it reads for every RPC, the CSIAddonsNode it creates, updates and
/// watches, the leader-election Lease of a driver with a controller service and its Events),
/// its token Secret, owner DaemonSet and Pod. Returns the user it runs as.
async fn start_sidecar(
    cluster: &TestCluster,
    namespace: &str,
    driver: &Driver<'_>,
) -> anyhow::Result<String> {
    let identity = service_accounts::identity(cluster, namespace, SIDECAR).await?;
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": SIDECAR},
        "rules": [
            {"apiGroups": [""], "resources": ["pods", "secrets"], "verbs": ["get"]},
            {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get"]},
            {"apiGroups": ["csiaddons.openshift.io"], "resources": ["csiaddonsnodes"],
             "verbs": ["get", "list", "watch", "create", "update", "delete"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "verbs": ["get", "create", "update"]},
            {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        ]
    }))?;
    Api::<Role>::namespaced(cluster.client(), namespace)
        .create(&PostParams::default(), &role)
        .await?;
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": SIDECAR},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": SIDECAR},
        "subjects": [{"kind": "ServiceAccount", "name": SIDECAR, "namespace": namespace}]
    }))?;
    Api::<RoleBinding>::namespaced(cluster.client(), namespace)
        .create(&PostParams::default(), &binding)
        .await?;
    let token = format!("{SIDECAR}-token");
    service_accounts::token_secret(cluster, &identity, &token).await?;
    let labels = json!({"app": SIDECAR});
    let owner: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": SIDECAR},
        "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels},
                 "spec": {"containers": [{"name": "csi-addons", "image": "quay.io/csiaddons/k8s-sidecar:v0.14.0"}]}}}
    }))?;
    let owner = Api::<DaemonSet>::namespaced(cluster.client(), namespace)
        .create(&PostParams::default(), &owner)
        .await?;
    let pod = sidecar_pod(
        namespace,
        &owner,
        driver.socket,
        free_port()?,
        &token,
        &service_accounts::service_env(cluster)?,
    )?;
    Api::<Pod>::namespaced(cluster.client(), namespace)
        .create(&PostParams::default(), &pod)
        .await
        .context("cannot create the sidecar's Pod")?;
    Ok(identity.user)
}

/// The sidecar's Pod, as a driver's manifest runs it (bound to the stand-in's Node, as a
/// DaemonSet's Pod is): the driver's socket folder at `/csi`, the ServiceAccount's files where
/// a kubelet projects them.
fn sidecar_pod(
    namespace: &str,
    owner: &DaemonSet,
    socket: &Path,
    port: u16,
    token_secret: &str,
    service_env: &[(String, String)],
) -> anyhow::Result<Pod> {
    let socket_dir = socket.parent().context("the socket has a folder")?;
    let socket_name = socket
        .file_name()
        .context("the socket has a name")?
        .to_string_lossy();
    let field = |path: &str| json!({"fieldRef": {"fieldPath": path}});
    let mut env = vec![
        json!({"name": "NODE_ID", "valueFrom": field("spec.nodeName")}),
        json!({"name": "POD_NAME", "valueFrom": field("metadata.name")}),
        json!({"name": "POD_NAMESPACE", "valueFrom": field("metadata.namespace")}),
        json!({"name": "POD_UID", "valueFrom": field("metadata.uid")}),
    ];
    env.extend(
        service_env
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v})),
    );
    let owner_ref = owner
        .controller_owner_ref(&())
        .context("the DaemonSet has a name and uid")?;
    Ok(serde_json::from_value(json!({
        "metadata": {"name": SIDECAR, "namespace": namespace, "labels": {"app": SIDECAR},
                     "ownerReferences": [owner_ref]},
        "spec": {
            "nodeName": NODE,
            "serviceAccountName": SIDECAR,
            "containers": [{
                "name": "csi-addons",
                "image": "quay.io/csiaddons/k8s-sidecar:v0.14.0",
                "command": ["/usr/local/bin/csi-addons-sidecar"],
                "args": [
                    "--node-id=$(NODE_ID)",
                    format!("--csi-addons-address=/csi/{socket_name}"),
                    format!("--controller-port={port}"),
                    "--pod=$(POD_NAME)",
                    "--namespace=$(POD_NAMESPACE)",
                    "--pod-uid=$(POD_UID)",
                    "--enable-auth=false",
                ],
                "env": env,
                "volumeMounts": [
                    {"name": "socket-dir", "mountPath": "/csi"},
                    {"name": "token", "mountPath": TOKEN_MOUNT, "readOnly": true},
                ],
            }],
            "volumes": [
                {"name": "socket-dir", "hostPath": {"path": socket_dir.display().to_string(), "type": "Directory"}},
                {"name": "token", "secret": {"secretName": token_secret}},
            ],
        }
    }))?)
}

/// Waits for the CSIAddonsNode the sidecar registers to be `Connected` (the manager dialled
/// it); returns its name and endpoint.
async fn connected_node(
    cluster: &TestCluster,
    namespace: &str,
) -> anyhow::Result<(String, String)> {
    let gvk = GroupVersionKind::gvk("csiaddons.openshift.io", "v1alpha1", "CSIAddonsNode");
    let nodes = Api::<DynamicObject>::namespaced_with(
        cluster.client(),
        namespace,
        &ApiResource::from_gvk(&gvk),
    );
    crate::wait::until(
        Duration::from_secs(120),
        "the sidecar's CSIAddonsNode is Connected",
        || {
            let nodes = nodes.clone();
            async move {
                let list = nodes.list(&Default::default()).await.ok()?;
                list.items.iter().find_map(|n| {
                    let state = n.data.pointer("/status/state").and_then(Value::as_str);
                    let endpoint = n
                        .data
                        .pointer("/spec/driver/endpoint")
                        .and_then(Value::as_str);
                    (state == Some("Connected"))
                        .then(|| Some((n.metadata.name.clone()?, endpoint?.to_owned())))
                        .flatten()
                })
            }
        },
    )
    .await
}

/// The sidecar's process: the one whose command line names the sidecar and the port of the
/// endpoint it registered (`pod://name.namespace:port`).
fn sidecar_pid(endpoint: &str) -> Option<u32> {
    let port = endpoint.rsplit(':').next()?;
    let wanted = format!("--controller-port={port}");
    std::fs::read_dir("/proc").ok()?.find_map(|entry| {
        let entry = entry.ok()?;
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let program = String::from_utf8_lossy(args.first()?);
        (program.ends_with(SIDECAR) && args.contains(&wanted.as_bytes())).then_some(pid)
    })
}
