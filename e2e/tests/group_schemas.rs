//! The volume-group kinds (VolumeGroupReplication, its class and content): every object here —
//! upstream's samples and the edges of each field — gets the same verdict from a real API
//! server serving Lifeline's CRD as from one serving csi-addons'
//! (`shared/upstream-crds/kubernetes-csi-addons-main/`): schema after defaults, strict field
//! validation and every CEL rule, on create and on update ([`lifeline_e2e::verdict`]).
//! (`crates/api/tests/upstream_compat.rs` walks the schemas node by node; this checks objects.)

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use lifeline_e2e::{TestCluster, upstream};
use serde_json::{Value, json};

/// csi-addons' CRDs of the three group kinds.
fn theirs() -> Vec<CustomResourceDefinition> {
    [
        "volumegroupreplications",
        "volumegroupreplicationclasses",
        "volumegroupreplicationcontents",
    ]
    .iter()
    .map(|plural| {
        upstream::load(&format!(
            "kubernetes-csi-addons-main/replication.storage.openshift.io_{plural}.yaml"
        ))
        .unwrap()
    })
    .collect()
}

/// Two API servers: one serving Lifeline's CRDs, one csi-addons'.
struct Servers {
    ours: TestCluster,
    theirs: TestCluster,
}

impl Servers {
    async fn start() -> Self {
        let crds = theirs();
        let (ours, theirs) =
            tokio::join!(TestCluster::start(), TestCluster::start_with_crds(&crds));
        Self {
            ours: ours.unwrap(),
            theirs: theirs.unwrap(),
        }
    }

    /// Each case gets the expected verdict from both servers.
    async fn agree(&self, kind: &str, cases: Vec<Case>) {
        for (what, object, old, valid) in cases {
            let verdict = |cluster: &TestCluster| {
                let (client, object, old) = (cluster.client(), object.clone(), old.clone());
                async move {
                    lifeline_e2e::verdict::problems(&client, "default", &object, old.as_ref())
                        .await
                        .unwrap()
                }
            };
            let by_them = verdict(&self.theirs).await;
            let by_us = verdict(&self.ours).await;
            assert_eq!(
                by_them.is_empty(),
                valid,
                "{kind} {what}: upstream says {by_them:?}"
            );
            assert_eq!(
                by_us.is_empty(),
                valid,
                "{kind} {what}: upstream says {by_them:?}, ours {by_us:?}"
            );
        }
    }
}

fn sample(file: &str) -> Value {
    let text = std::fs::read_to_string(upstream::dir().join("samples").join(file)).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// Each case: (what it is, the object, the old object on an update, valid?).
type Case = (&'static str, Value, Option<Value>, bool);

/// `object` with the field at `path` set to `value` (removed when `value` is null); a number
/// in the path indexes a list.
fn with(mut object: Value, path: &[&str], value: Value) -> Value {
    let (last, parents) = path.split_last().unwrap();
    let pointer: String = parents.iter().map(|p| format!("/{p}")).collect();
    let node = object.pointer_mut(&pointer).expect("the parent exists");
    match (node, value.is_null()) {
        (Value::Object(map), true) => {
            map.remove(*last);
        }
        (Value::Object(map), false) => {
            map.insert(last.to_string(), value);
        }
        (node, _) => panic!("{pointer} is not an object: {node}"),
    }
    object
}

/// One pair of API servers for every case of the three kinds (each start costs seconds).
#[tokio::test]
async fn the_group_kinds_get_upstreams_verdict() {
    let servers = Servers::start().await;
    volume_group_replications(&servers).await;
    volume_group_replication_classes(&servers).await;
    volume_group_replication_contents(&servers).await;
}

async fn volume_group_replications(servers: &Servers) {
    let vgr = sample("kca-sample-volumegroupreplication.yaml");
    let spec = |path: &[&str], value: Value| {
        let mut full = vec!["spec"];
        full.extend_from_slice(path);
        with(vgr.clone(), &full, value)
    };
    servers.agree(
        "VolumeGroupReplication",
        vec![
            ("the sample", vgr.clone(), None, true),
            (
                "without autoResync (defaulted)",
                spec(&["autoResync"], Value::Null),
                None,
                true,
            ),
            (
                "without source",
                spec(&["source"], Value::Null),
                None,
                false,
            ),
            (
                "without a class",
                spec(&["volumeGroupReplicationClassName"], Value::Null),
                None,
                false,
            ),
            (
                "an unknown state",
                spec(&["replicationState"], json!("tertiary")),
                None,
                false,
            ),
            (
                "every optional field",
                spec(&["volumeReplicationClassName"], json!("mirror"))
                    .pipe(|o| with(o, &["spec", "volumeReplicationName"], json!("vm-1")))
                    .pipe(|o| {
                        with(
                            o,
                            &["spec", "volumeGroupReplicationContentName"],
                            json!("c"),
                        )
                    })
                    .pipe(|o| with(o, &["spec", "external"], json!(true))),
                None,
                true,
            ),
            (
                "a selector with expressions",
                spec(
                    &["source", "selector"],
                    json!({"matchExpressions": [{"key": "vm", "operator": "In", "values": ["a"]}]}),
                ),
                None,
                true,
            ),
            (
                "the state changed",
                spec(&["replicationState"], json!("secondary")),
                Some(vgr.clone()),
                true,
            ),
            (
                "the selector changed",
                spec(
                    &["source", "selector", "matchLabels"],
                    json!({"group": "other"}),
                ),
                Some(vgr.clone()),
                false,
            ),
            (
                "external changed",
                spec(&["external"], json!(true)),
                Some(vgr.clone()),
                false,
            ),
            (
                "the class changed",
                spec(&["volumeGroupReplicationClassName"], json!("other")),
                Some(vgr.clone()),
                false,
            ),
        ],
    )
    .await;
}

async fn volume_group_replication_classes(servers: &Servers) {
    let class = sample("kca-sample-volumegroupreplicationclass.yaml");
    servers
        .agree(
            "VolumeGroupReplicationClass",
            vec![
                ("the sample", class.clone(), None, true),
                (
                    "without parameters",
                    with(class.clone(), &["spec", "parameters"], Value::Null),
                    None,
                    true,
                ),
                (
                    "without a provisioner",
                    with(class.clone(), &["spec", "provisioner"], Value::Null),
                    None,
                    false,
                ),
                (
                    "parameters changed",
                    with(class.clone(), &["spec", "parameters"], json!({"a": "b"})),
                    Some(class.clone()),
                    false,
                ),
                (
                    "parameters removed",
                    with(class.clone(), &["spec", "parameters"], Value::Null),
                    Some(class.clone()),
                    false,
                ),
                (
                    "the provisioner changed",
                    with(class.clone(), &["spec", "provisioner"], json!("other.csi")),
                    Some(class.clone()),
                    false,
                ),
            ],
        )
        .await;
}

async fn volume_group_replication_contents(servers: &Servers) {
    // Upstream's sample has `source` as a list, which its own schema refuses; this is it as the
    // schema means it.
    let content = json!({
        "apiVersion": "replication.storage.openshift.io/v1alpha1",
        "kind": "VolumeGroupReplicationContent",
        "metadata": {"name": "content-1"},
        "spec": {
            "volumeGroupReplicationRef": {"name": "vm-1", "namespace": "default", "uid": "u-1",
                "kind": "VolumeGroupReplication", "apiVersion": "replication.storage.openshift.io/v1alpha1"},
            "volumeGroupReplicationHandle": "group-1",
            "provisioner": "driver.csi.com",
            "volumeGroupReplicationClassName": "groups",
            "source": {"volumeHandles": ["vol-1", "vol-2"]},
        },
        "status": {"persistentVolumeRefList": [{"name": "pv-1"}],
            "persistentVolumeMappingList": [{"name": "pv-1", "volumeHandle": "vol-1", "destinationVolumeHandle": "peer-1"}]},
    });
    let spec = |path: &[&str], value: Value| {
        let mut full = vec!["spec"];
        full.extend_from_slice(path);
        with(content.clone(), &full, value)
    };
    let upstream_sample = sample("kca-sample-volumegroupreplicationcontent.yaml");
    servers
        .agree(
            "VolumeGroupReplicationContent",
            vec![
                ("a full content", content.clone(), None, true),
                (
                    "upstream's sample (source as a list)",
                    upstream_sample,
                    None,
                    false,
                ),
                (
                    "without a reference",
                    spec(&["volumeGroupReplicationRef"], Value::Null),
                    None,
                    true,
                ),
                (
                    "a reference without a uid",
                    spec(&["volumeGroupReplicationRef", "uid"], Value::Null),
                    None,
                    false,
                ),
                (
                    "a reference without a namespace",
                    spec(&["volumeGroupReplicationRef", "namespace"], Value::Null),
                    None,
                    false,
                ),
                (
                    "without volume handles",
                    spec(&["source", "volumeHandles"], Value::Null),
                    None,
                    false,
                ),
                (
                    "the attributes changed",
                    spec(&["volumeGroupAttributes"], json!({"a": "2"})),
                    Some(spec(&["volumeGroupAttributes"], json!({"a": "1"}))),
                    false,
                ),
                (
                    "a mapping without a handle",
                    with(
                        content.clone(),
                        &["status", "persistentVolumeMappingList", "0", "volumeHandle"],
                        Value::Null,
                    ),
                    None,
                    false,
                ),
            ],
        )
        .await;
}

/// `value.pipe(f)` = `f(value)`, for building cases in one expression.
trait Pipe: Sized {
    fn pipe(self, f: impl FnOnce(Self) -> Self) -> Self {
        f(self)
    }
}
impl Pipe for Value {}
