//! The kubelet stand-in as the real Job controller and kube-scheduler see it: a Job's Pod is
//! bound to the stand-in's Node and runs as a local process with its claim, Secret and
//! ConfigMap mounted, its env resolved and a read-only root; its exit code, termination message
//! and log reach the API as a kubelet reports them; a Pod whose Secret is missing waits with the
//! kubelet's reason and runs once the Secret exists.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{ListParams, LogParams, PostParams};
use kube::{Api, Client, ResourceExt};
use lifeline_e2e::actors::kubelet::NODE;
use lifeline_e2e::{TestCluster, wait};
use serde_json::json;

const T: Duration = Duration::from_secs(60);
const DRIVER: &str = "hostpath.lifeline.dev";

fn obj<K: serde::de::DeserializeOwned>(value: serde_json::Value) -> K {
    serde_json::from_value(value).unwrap()
}

/// A claim on the driver's class, bound; its directory.
async fn claim(client: &Client, ns: &str, name: &str) -> std::path::PathBuf {
    Api::<StorageClass>::all(client.clone())
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": format!("sc-{ns}")}, "provisioner": DRIVER})),
        )
        .await
        .unwrap();
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns);
    claims
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": name},
            "spec": {"storageClassName": format!("sc-{ns}"), "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}})),
        )
        .await
        .unwrap();
    let bound = wait::for_object(&claims, name, T, "bound", |c| {
        c.spec
            .as_ref()
            .and_then(|s| s.volume_name.as_ref())
            .is_some()
    })
    .await
    .unwrap();
    let pv = Api::<PersistentVolume>::all(client.clone())
        .get(&bound.spec.unwrap().volume_name.unwrap())
        .await
        .unwrap();
    let attributes = pv.spec.unwrap().csi.unwrap().volume_attributes.unwrap();
    attributes[lifeline_hostpath_driver::csi::VOLUME_PATH]
        .clone()
        .into()
}

/// A Job of one Pod (no retries) running `script` with the test's volumes and env.
fn job(name: &str, script: &str) -> Job {
    obj(
        json!({"metadata": {"name": name}, "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "main", "image": "example.invalid/shell:1",
                "command": ["/bin/sh", "-c", script],
                "env": [
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
                    {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "greeting"}}},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    {"name": "BOTH", "value": "$(GREETING)-$(NS)"},
                ],
                "volumeMounts": [
                    {"name": "out", "mountPath": "/out"},
                    {"name": "secret", "mountPath": "/secret", "readOnly": true},
                    {"name": "config", "mountPath": "/config"},
                ],
            }],
            "volumes": [
                {"name": "out", "persistentVolumeClaim": {"claimName": "out"}},
                {"name": "secret", "secret": {"secretName": "s"}},
                {"name": "config", "configMap": {"name": "c"}},
            ],
        }}}}),
    )
}

/// The Job's only Pod, once `done` says so.
async fn job_pod(client: &Client, ns: &str, job: &str, done: fn(&Pod) -> bool) -> Pod {
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let selector = format!("batch.kubernetes.io/job-name={job}");
    wait::until(T, &format!("{job}'s Pod"), || {
        let (pods, selector) = (pods.clone(), selector.clone());
        async move {
            let listed = pods
                .list(&ListParams::default().labels(&selector))
                .await
                .ok()?;
            listed.items.into_iter().find(done)
        }
    })
    .await
    .unwrap()
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

/// A cluster with the driver and its sidecars, a namespace, the claim `out` (its directory)
/// and the ConfigMap `c`; the Secret `s` too when `token` is given.
struct World {
    _cluster: TestCluster,
    _storage: (
        lifeline_e2e::actors::Site,
        (
            lifeline_e2e::process::Process,
            lifeline_e2e::storage_controllers::Sidecars,
        ),
    ),
    client: Client,
    ns: String,
    out: std::path::PathBuf,
}

async fn world(token: Option<&str>) -> World {
    let cluster = TestCluster::start().await.unwrap();
    let client = cluster.client();
    let ns = cluster.namespace("kubelet").await.unwrap();
    let storage = cluster.lone_driver(DRIVER).await.unwrap();
    let out = claim(&client, &ns, "out").await;
    if let Some(token) = token {
        create_secret(&client, &ns, token).await;
    }
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "c"}, "data": {"greeting": "hello"}})),
        )
        .await
        .unwrap();
    World {
        _cluster: cluster,
        _storage: storage,
        client,
        ns,
        out,
    }
}

async fn create_secret(client: &Client, ns: &str, token: &str) {
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "s"}, "stringData": {"token": token}})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_jobs_pod_runs_with_its_volumes_env_and_a_read_only_root_and_reports_its_end() {
    let World {
        client, ns, out, ..
    } = &world(Some("abc")).await;
    let (client, ns) = (client.clone(), ns.clone());
    let script = r#"echo started
echo "$GREETING $POD $NS $TOKEN $BOTH" > /out/env.txt
cat /secret/token /config/greeting > /out/files.txt
if touch /written 2>/dev/null; then echo writable; else echo read-only; fi > /out/root.txt
if touch /secret/written 2>/dev/null; then echo writable; else echo read-only; fi > /out/secret.txt
echo "gave up on purpose" > /dev/termination-log
exit 3"#;
    Api::<Job>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &job("probe", script))
        .await
        .unwrap();
    let pod = job_pod(&client, &ns, "probe", |p| phase(p) == Some("Failed")).await;
    assert_eq!(
        pod.spec.as_ref().unwrap().node_name.as_deref(),
        Some(NODE),
        "bound by kube-scheduler"
    );
    let state = pod
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0]
        .state
        .clone()
        .unwrap();
    let ended = state.terminated.unwrap();
    assert_eq!(ended.exit_code, 3);
    assert_eq!(ended.reason.as_deref(), Some("Error"));
    assert_eq!(ended.message.as_deref(), Some("gave up on purpose\n"));
    let name = pod.name_any();
    assert_eq!(
        std::fs::read_to_string(out.join("env.txt")).unwrap(),
        format!("hello {name} {ns} abc hello-{ns}\n")
    );
    assert_eq!(
        std::fs::read_to_string(out.join("files.txt")).unwrap(),
        "abchello"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("root.txt")).unwrap(),
        "read-only\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("secret.txt")).unwrap(),
        "read-only\n"
    );
    let log = Api::<Pod>::namespaced(client.clone(), &ns)
        .logs(&name, &LogParams::default())
        .await
        .unwrap();
    assert_eq!(log, "started\n", "pods/log through the API server");
    // The real Job controller counts the failure.
    wait::for_object(
        &Api::<Job>::namespaced(client.clone(), &ns),
        "probe",
        T,
        "the Job failed",
        |j| j.status.as_ref().and_then(|s| s.failed) == Some(1),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_pod_waits_for_its_secret_with_the_kubelets_reason_then_runs() {
    let World {
        client, ns, out, ..
    } = &world(None).await;
    let (client, ns) = (client.clone(), ns.clone());
    Api::<Job>::namespaced(client.clone(), &ns)
        .create(
            &PostParams::default(),
            &job("late", r#"echo "$TOKEN" > /out/token.txt"#),
        )
        .await
        .unwrap();
    let waiting = job_pod(&client, &ns, "late", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first()?.state.as_ref()?.waiting.clone())
            .is_some()
    })
    .await;
    let reason = waiting.status.unwrap().container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .waiting
        .unwrap();
    assert_eq!(
        reason.reason.as_deref(),
        Some("ContainerCreating"),
        "{reason:?}"
    );
    assert!(reason.message.unwrap().contains("secret \"s\" not found"));
    assert!(!out.join("token.txt").exists(), "nothing ran");
    create_secret(&client, &ns, "late-token").await;
    job_pod(&client, &ns, "late", |p| phase(p) == Some("Succeeded")).await;
    assert_eq!(
        std::fs::read_to_string(out.join("token.txt")).unwrap(),
        "late-token\n"
    );
}
