//! What Lifeline relies on from the control plane the suite runs on: its CRDs served as
//! upstream's (schemas, defaults, immutability, status subresource, printer columns), the
//! chart's roles granted to each controller's identity, and kube-controller-manager's
//! controllers the scenarios need (garbage collection, storage protection). Kubernetes' own API
//! semantics are not retested here: the server is the real one.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, WatchEvent};
use kube::{Api, Discovery, ResourceExt};
use lifeline_api::replication::{VolumeReplication, VolumeReplicationClass};
use lifeline_e2e::TestCluster;
use lifeline_e2e::wait;
use serde_json::json;

const T: Duration = Duration::from_secs(30);

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}),
    )
    .unwrap()
}

fn api_error(e: kube::Error) -> (u16, String, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason, s.message),
        other => panic!("expected an API error, got {other}"),
    }
}

fn vr(name: &str, state: &str) -> VolumeReplication {
    serde_json::from_value(json!({
        "apiVersion": "replication.storage.openshift.io/v1alpha1", "kind": "VolumeReplication",
        "metadata": {"name": name},
        "spec": {"volumeReplicationClass": "gold", "replicationState": state,
                 "dataSource": {"kind": "PersistentVolumeClaim", "name": "data"}},
    }))
    .unwrap()
}

#[tokio::test]
async fn discovery_lists_core_kinds_and_our_crds() {
    let cluster = TestCluster::start().await.unwrap();
    let discovery = Discovery::new(cluster.client()).run().await.unwrap();
    let mut kinds = Vec::new();
    for group in discovery.groups() {
        for (resource, _) in group.recommended_resources() {
            kinds.push(format!("{}/{}", resource.group, resource.kind));
        }
    }
    for expected in [
        "/Namespace",
        "/Secret",
        "/ConfigMap",
        "/PersistentVolume",
        "/PersistentVolumeClaim",
        "/Event",
        "storage.k8s.io/StorageClass",
        "events.k8s.io/Event",
        "coordination.k8s.io/Lease",
        "replication.storage.openshift.io/VolumeReplication",
        "replication.storage.openshift.io/VolumeReplicationClass",
        "datamover.oadp.openshift.io/VolumeSnapshotBackup",
        "volsync.backube/ReplicationSource",
        "snapshot.storage.k8s.io/VolumeSnapshot",
    ] {
        assert!(
            kinds.iter().any(|k| k == expected),
            "{expected} not discovered in {kinds:?}"
        );
    }
}

#[tokio::test]
async fn generation_moves_with_spec_only_and_status_is_a_subresource() {
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("gen").await.unwrap();
    let vrs = Api::<VolumeReplication>::namespaced(cluster.client(), &ns);
    let created = vrs
        .create(&PostParams::default(), &vr("r", "primary"))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    // Status on the main resource is ignored; metadata changes do not bump generation.
    let labelled = vrs
        .patch(
            "r",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {"a": "b"}}, "status": {"state": "Primary"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(1));
    assert!(labelled.status.is_none(), "main writes never change status");
    // A status write changes only status.
    let status = vrs
        .patch_status(
            "r",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"state": "Primary"}, "spec": {"replicationState": "secondary"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(status.status.unwrap().state.unwrap().as_str(), "Primary");
    assert_eq!(
        status.spec.replication_state.as_str(),
        "primary",
        "status writes never change spec"
    );
    assert_eq!(status.metadata.generation, Some(1));
    let respec = vrs
        .patch(
            "r",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicationState": "secondary"}})),
        )
        .await
        .unwrap();
    assert_eq!(respec.metadata.generation, Some(2));
}

#[tokio::test]
async fn owner_references_are_garbage_collected() {
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("gc").await.unwrap();
    let cms = Api::<ConfigMap>::namespaced(cluster.client(), &ns);
    let owner = cms
        .create(&PostParams::default(), &cm("owner", json!({})))
        .await
        .unwrap();
    let mut dependent = cm("dependent", json!({}));
    dependent.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "owner".into(),
            uid: owner.uid().unwrap(),
            ..Default::default()
        },
    ]);
    cms.create(&PostParams::default(), &dependent)
        .await
        .unwrap();
    cms.delete("owner", &DeleteParams::default()).await.unwrap();
    wait::for_deletion(&cms, "dependent", T).await.unwrap();
}

#[tokio::test]
async fn crd_schemas_validate_default_prune_and_keep_immutable_fields() {
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("schema").await.unwrap();
    let vrs = Api::<VolumeReplication>::namespaced(cluster.client(), &ns);
    let dynamic = Api::<kube::api::DynamicObject>::namespaced_with(
        cluster.client(),
        &ns,
        &kube::api::ApiResource::erase::<VolumeReplication>(&()),
    );
    // Enum, required and type errors are 422 naming the field.
    let mut bad: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "replication.storage.openshift.io/v1alpha1", "kind": "VolumeReplication",
        "metadata": {"name": "bad"},
        "spec": {"volumeReplicationClass": "gold", "replicationState": "tertiary",
                 "dataSource": {"kind": "PersistentVolumeClaim", "name": "data"}}}))
    .unwrap();
    let (code, reason, message) = api_error(
        dynamic
            .create(&PostParams::default(), &bad)
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert!(message.contains("spec.replicationState"), "{message}");
    bad.data["spec"]
        .as_object_mut()
        .unwrap()
        .remove("dataSource");
    bad.data["spec"]["replicationState"] = json!("primary");
    let (code, _, message) = api_error(
        dynamic
            .create(&PostParams::default(), &bad)
            .await
            .unwrap_err(),
    );
    assert!(code == 422 && message.contains("dataSource"), "{message}");

    // Unknown fields are pruned; defaults are applied.
    let mut extra = bad.clone();
    extra.metadata.name = Some("extra".into());
    extra.data["spec"]["dataSource"] = json!({"kind": "PersistentVolumeClaim", "name": "data"});
    extra.data["spec"]["unknownField"] = json!(true);
    dynamic
        .create(&PostParams::default(), &extra)
        .await
        .unwrap();
    let stored = dynamic.get("extra").await.unwrap();
    assert!(stored.data["spec"].get("unknownField").is_none(), "pruned");
    assert_eq!(stored.data["spec"]["autoResync"], json!(false), "defaulted");

    // Immutable fields keep their message.
    vrs.create(&PostParams::default(), &vr("r", "primary"))
        .await
        .unwrap();
    let (code, _, message) = api_error(
        vrs.patch(
            "r",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"volumeReplicationClass": "silver"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(code, 422);
    assert!(
        message.contains("volumeReplicationClass is immutable"),
        "{message}"
    );
    let classes = Api::<VolumeReplicationClass>::all(cluster.client());
    let class: VolumeReplicationClass = serde_json::from_value(json!({
        "apiVersion": "replication.storage.openshift.io/v1alpha1", "kind": "VolumeReplicationClass",
        "metadata": {"name": format!("c-{ns}")}, "spec": {"provisioner": "a.example.com"}}))
    .unwrap();
    classes
        .create(&PostParams::default(), &class)
        .await
        .unwrap();
    let (_, _, message) = api_error(
        classes
            .patch(
                &format!("c-{ns}"),
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"parameters": {"k": "v"}}})),
            )
            .await
            .unwrap_err(),
    );
    assert!(message.contains("parameters are immutable"), "{message}");
    classes
        .delete(&format!("c-{ns}"), &DeleteParams::default())
        .await
        .unwrap();
}

/// Claims and volumes get their protection finalizers from the API server, and something with
/// kube-controller-manager's job removes them once nothing uses the object, so a deleted claim
/// and a deleted released volume really go.
#[tokio::test]
async fn storage_protection_finalizers_are_added_and_released() {
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("protect").await.unwrap();
    let claims = Api::<PersistentVolumeClaim>::namespaced(cluster.client(), &ns);
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({"metadata": {"name": "c"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "none-such",
                 "resources": {"requests": {"storage": "1Gi"}}}}))
    .unwrap();
    let created = claims.create(&PostParams::default(), &claim).await.unwrap();
    assert!(
        created
            .finalizers()
            .iter()
            .any(|f| f == "kubernetes.io/pvc-protection"),
        "{:?}",
        created.finalizers()
    );
    claims.delete("c", &DeleteParams::default()).await.unwrap();
    wait::for_deletion(&claims, "c", T).await.unwrap();

    let volumes = Api::<PersistentVolume>::all(cluster.client());
    let name = format!("pv-{ns}");
    let volume: PersistentVolume = serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Retain",
                 "csi": {"driver": "none-such.lifeline.dev", "volumeHandle": name}}}))
    .unwrap();
    let created = volumes
        .create(&PostParams::default(), &volume)
        .await
        .unwrap();
    assert!(
        created
            .finalizers()
            .iter()
            .any(|f| f == "kubernetes.io/pv-protection"),
        "{:?}",
        created.finalizers()
    );
    volumes
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    wait::for_deletion(&volumes, &name, T).await.unwrap();
}

/// The grants a controller runs with on the control plane are the chart's own, rebound to its user and
/// placed in the test's namespaces; applying them twice (tests share a cluster) is fine.
#[tokio::test]
async fn controllers_get_exactly_the_charts_roles() {
    use lifeline_e2e::rbac::{Controller, chart_grants, grant};
    let grants = chart_grants(
        Controller::Datamover,
        "mover-user",
        "own-ns",
        Some("prot-ns"),
    )
    .unwrap();
    let kinds: Vec<(&str, Option<&str>)> = grants
        .iter()
        .map(|g| {
            (
                g["kind"].as_str().unwrap(),
                g["metadata"]["namespace"].as_str(),
            )
        })
        .collect();
    for expected in [
        ("ClusterRole", None),
        ("ClusterRoleBinding", None),
        ("Role", Some("prot-ns")),
        ("RoleBinding", Some("prot-ns")),
        ("Role", Some("own-ns")),
        ("RoleBinding", Some("own-ns")),
    ] {
        assert!(kinds.contains(&expected), "{expected:?} in {kinds:?}");
    }
    for binding in grants
        .iter()
        .filter(|g| g["kind"].as_str().unwrap().ends_with("Binding"))
    {
        assert_eq!(
            binding["subjects"],
            json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "mover-user"}])
        );
    }
    let without_protected = chart_grants(Controller::Datamover, "u", "own-ns", None).unwrap();
    assert!(
        without_protected
            .iter()
            .all(|g| g["metadata"]["namespace"] != "prot-ns")
    );

    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("rbac").await.unwrap();
    for _ in 0..2 {
        grant(
            &cluster.client(),
            Controller::Replication,
            "replication-user",
            &ns,
            None,
        )
        .await
        .unwrap();
    }
}

/// `kubectl get` asks for the Table format: a CRD's printer columns (with `date` cells shown as
/// ages), the built-in columns of claims, and one-row Tables in a watch.
#[tokio::test]
async fn tables_carry_printer_columns() {
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("table").await.unwrap();
    let client = cluster.client();
    Api::<VolumeReplication>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &vr("db", "primary"))
        .await
        .unwrap();
    let table = |path: String| {
        let client = client.clone();
        async move {
            let request = http::Request::get(path)
                .header(
                    "Accept",
                    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
                )
                .body(Vec::new())
                .unwrap();
            client.request::<serde_json::Value>(request).await.unwrap()
        }
    };
    let vrs = table(format!(
        "/apis/replication.storage.openshift.io/v1alpha1/namespaces/{ns}/volumereplications"
    ))
    .await;
    assert_eq!(vrs["kind"], "Table");
    let names: Vec<&str> = vrs["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Name",
            "Age",
            "VolumeReplicationClass",
            "PVCName",
            "DesiredState",
            "CurrentState"
        ]
    );
    let cells = &vrs["rows"][0]["cells"];
    assert_eq!(cells[0], "db");
    assert!(
        cells[1].as_str().unwrap().ends_with('s'),
        "an age, not a timestamp: {}",
        cells[1]
    );
    assert_eq!(cells[4], "primary");
    assert_eq!(vrs["rows"][0]["object"]["kind"], "PartialObjectMetadata");

    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns);
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({"metadata": {"name": "c"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "none-such",
                 "resources": {"requests": {"storage": "1Gi"}}}}))
    .unwrap();
    claims.create(&PostParams::default(), &claim).await.unwrap();
    let pvcs = table(format!("/api/v1/namespaces/{ns}/persistentvolumeclaims")).await;
    let columns: Vec<(&str, i64)> = pvcs["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["priority"].as_i64().unwrap()))
        .collect();
    for (wanted, priority) in [
        ("Name", 0),
        ("Status", 0),
        ("Volume", 0),
        ("Capacity", 0),
        ("Access Modes", 0),
        ("StorageClass", 0),
        ("Age", 0),
        ("VolumeMode", 1),
    ] {
        assert!(
            columns.contains(&(wanted, priority)),
            "{wanted} in {columns:?}"
        );
    }
    let status = columns.iter().position(|c| c.0 == "Status").unwrap();
    assert_eq!(pvcs["rows"][0]["cells"][status], "Pending");

    // `kubectl get -w`: a watch in the Table format sends one-row Tables.
    let request = http::Request::get(format!(
        "/apis/replication.storage.openshift.io/v1alpha1/namespaces/{ns}/volumereplications?watch=true&timeoutSeconds=10"
    ))
    .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
    .body(Vec::new())
    .unwrap();
    let mut events = client
        .request_events::<serde_json::Value>(request)
        .await
        .unwrap()
        .boxed();
    let first = tokio::time::timeout(T, events.try_next())
        .await
        .expect("an event in time")
        .unwrap()
        .expect("the watch sends the existing object");
    let WatchEvent::Added(added) = first else {
        panic!("expected ADDED, got {first:?}");
    };
    assert_eq!(added["kind"], "Table");
    assert_eq!(added["rows"].as_array().map(Vec::len), Some(1));
    assert_eq!(added["rows"][0]["cells"][0], "db");
    let storage_class = columns.iter().position(|c| c.0 == "StorageClass").unwrap();
    assert_eq!(pvcs["rows"][0]["cells"][storage_class], "none-such");
}
