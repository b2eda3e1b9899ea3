//! Conformance of the API backends for what Lifeline uses. Written against `TestCluster`
//! only, so the same tests pass on `local` (CI), `envtest` and a real cluster.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Secret};
use kube::api::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::{Api, Discovery, Resource, ResourceExt};
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
async fn crud_namespaced_and_cluster_scoped_with_status_errors() {
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("crud").await.unwrap();
    let cms = Api::<ConfigMap>::namespaced(cluster.client(), &ns);
    let created = cms
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    assert!(created.uid().is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    assert_eq!(created.namespace().as_deref(), Some(ns.as_str()));
    assert_eq!(cms.get("a").await.unwrap().data.unwrap()["k"], "v");
    let (code, reason, _) = api_error(
        cms.create(&PostParams::default(), &cm("a", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));
    let (code, reason, _) = api_error(cms.get("missing").await.unwrap_err());
    assert_eq!((code, reason.as_str()), (404, "NotFound"));
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(cms.get_opt("a").await.unwrap().is_none());

    let pvs = Api::<PersistentVolume>::all(cluster.client());
    let name = format!("pv-{ns}");
    let pv: PersistentVolume = serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "csi": {"driver": "hostpath.lifeline.dev", "volumeHandle": "v1"}}}))
    .unwrap();
    pvs.create(&PostParams::default(), &pv).await.unwrap();
    assert!(pvs.get(&name).await.unwrap().namespace().is_none());
    pvs.delete(&name, &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn generate_name_gives_unique_names() {
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("gen").await.unwrap();
    let secrets = Api::<Secret>::namespaced(cluster.client(), &ns);
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"generateName": "restic-"}})).unwrap();
    let a = secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let b = secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    assert!(a.name_any().starts_with("restic-") && b.name_any().starts_with("restic-"));
    assert_ne!(a.name_any(), b.name_any());
}

#[tokio::test]
async fn resource_versions_are_monotonic_and_stale_updates_conflict() {
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("rv").await.unwrap();
    let cms = Api::<ConfigMap>::namespaced(cluster.client(), &ns);
    let first = cms
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    let mut changed = first.clone();
    changed.data = Some([("k".to_owned(), "w".to_owned())].into());
    let second = cms
        .replace("a", &PostParams::default(), &changed)
        .await
        .unwrap();
    let v = |o: &ConfigMap| o.resource_version().unwrap().parse::<u64>().unwrap();
    assert!(v(&second) > v(&first));
    // Replacing with the old resourceVersion is a conflict.
    let (code, reason, _) = api_error(
        cms.replace("a", &PostParams::default(), &changed)
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    // So is a merge patch that names a stale version.
    let stale =
        json!({"metadata": {"resourceVersion": first.resource_version()}, "data": {"k": "x"}});
    let (code, _, _) = api_error(
        cms.patch("a", &PatchParams::default(), &Patch::Merge(&stale))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 409);
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("sel").await.unwrap();
    let cms = Api::<ConfigMap>::namespaced(cluster.client(), &ns);
    for (name, tier) in [("a", "gold"), ("b", "silver"), ("c", "gold")] {
        cms.create(
            &PostParams::default(),
            &cm(name, json!({"tier": tier, "app": "db"})),
        )
        .await
        .unwrap();
    }
    let names = |list: kube::core::ObjectList<ConfigMap>| {
        let mut n: Vec<String> = list.items.iter().map(|c| c.name_any()).collect();
        n.sort();
        n
    };
    assert_eq!(
        names(
            cms.list(&ListParams::default().labels("tier=gold"))
                .await
                .unwrap()
        ),
        ["a", "c"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().labels("tier in (silver),app"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().labels("tier!=gold"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().fields("metadata.name=c"))
                .await
                .unwrap()
        ),
        ["c"]
    );
    let all = Api::<ConfigMap>::all(cluster.client());
    let in_ns = all
        .list(&ListParams::default().fields(&format!("metadata.namespace={ns}")))
        .await
        .unwrap();
    assert_eq!(names(in_ns), ["a", "b", "c"]);
}

/// Clients (kube-runtime's watcher: 500 a page) list in pages; every page has the first
/// page's resourceVersion, and a change between pages is not lost to a watch from it.
#[tokio::test]
async fn lists_page_with_limit_and_continue() {
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("pages").await.unwrap();
    let cms = Api::<ConfigMap>::namespaced(cluster.client(), &ns);
    for name in ["a", "b", "c", "d", "e"] {
        cms.create(&PostParams::default(), &cm(name, json!({"page": "yes"})))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut versions = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut params = ListParams::default().labels("page=yes").limit(2);
        if let Some(token) = &token {
            params = params.continue_token(token);
        }
        let page = cms.list(&params).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|c| c.name_any()));
        versions.push(page.metadata.resource_version.clone().unwrap());
        if pages == 1 {
            // A change while the pages are read.
            cms.create(&PostParams::default(), &cm("z", json!({"page": "yes"})))
                .await
                .unwrap();
        }
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    assert!(pages >= 3, "{pages} pages");
    for name in ["a", "b", "c", "d", "e"] {
        assert!(
            seen.contains(&name.to_owned()),
            "{name} missing from {seen:?}"
        );
    }
    assert!(versions.iter().all(|v| *v == versions[0]), "{versions:?}");
    let from = versions[0].clone();
    let mut events = cms
        .watch(&WatchParams::default().labels("page=yes"), &from)
        .await
        .unwrap()
        .boxed();
    let added = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = events.try_next().await.unwrap() {
            if let WatchEvent::Added(cm) = event
                && cm.name_any() == "z"
            {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(
        added,
        "a watch from the list's version sees the change made between pages"
    );
}

#[tokio::test]
async fn watch_from_a_version_replays_changes_with_bookmarks() {
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("watch").await.unwrap();
    let cms = Api::<ConfigMap>::namespaced(cluster.client(), &ns);
    let start = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    cms.create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "w"}})),
    )
    .await
    .unwrap();
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    let params = WatchParams::default().timeout(10);
    let mut stream = cms.watch(&params, &start).await.unwrap().boxed();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match tokio::time::timeout(T, stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Added(o) => seen.push(("ADDED", o.name_any())),
            WatchEvent::Modified(o) => seen.push(("MODIFIED", o.name_any())),
            WatchEvent::Deleted(o) => seen.push(("DELETED", o.name_any())),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(
        seen,
        [
            ("ADDED", "a".into()),
            ("MODIFIED", "a".into()),
            ("DELETED", "a".into())
        ]
    );

    // With bookmarks allowed, one arrives while nothing changes. A real API server sends them
    // about once a minute and before the watch's deadline, so the watch outlives a minute; the
    // loop ends when the stream does, so a server that sends none fails instead of spinning.
    let mut stream = cms
        .watch(
            &WatchParams {
                bookmarks: true,
                ..WatchParams::default()
            }
            .timeout(90),
            &start,
        )
        .await
        .unwrap()
        .boxed();
    let bookmark = tokio::time::timeout(Duration::from_secs(100), async {
        while let Some(event) = stream.try_next().await.unwrap() {
            if let WatchEvent::Bookmark(b) = event {
                return Some(b);
            }
        }
        None
    })
    .await
    .expect("the watch neither ended nor sent a bookmark")
    .expect("the watch ended without a bookmark");
    assert!(!bookmark.metadata.resource_version.is_empty());
}

/// A watch from a version the server no longer keeps answers 410 Gone. Version "1" is compacted
/// on every backend once the server has compacted once: the local server counts versions
/// before its start as compacted; the envtest backend runs kube-apiserver with a short
/// `--etcd-compaction-interval`; an existing cluster has compacted long ago.
#[tokio::test]
async fn watch_from_a_compacted_version_is_gone() {
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("gone").await.unwrap();
    let cms = Api::<ConfigMap>::namespaced(cluster.client(), &ns);
    let code = wait::until(Duration::from_secs(60), "a 410 for version 1", || async {
        let stream = cms.watch(&WatchParams::default().timeout(5), "1").await;
        // Kubernetes answers 410 either as the response or as an ERROR event in the stream.
        let code = match stream {
            Err(kube::Error::Api(s)) => Some(s.code),
            Ok(stream) => match tokio::time::timeout(T, stream.boxed().next()).await {
                Ok(Some(Ok(WatchEvent::Error(e)))) => Some(e.code),
                Ok(Some(Err(kube::Error::Api(s)))) => Some(s.code),
                // Not compacted yet: the stream replays or ends; ask again.
                _ => None,
            },
            Err(_) => None,
        };
        code.filter(|c| *c == 410)
    })
    .await
    .unwrap();
    assert_eq!(code, 410);
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
async fn finalizers_hold_deletion_until_the_last_is_removed() {
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("fin").await.unwrap();
    let cms = Api::<ConfigMap>::namespaced(cluster.client(), &ns);
    let mut object = cm("a", json!({}));
    object.metadata.finalizers = Some(vec!["example.com/one".into(), "example.com/two".into()]);
    cms.create(&PostParams::default(), &object).await.unwrap();
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    let marked = cms.get("a").await.unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    // No finalizer may be added once deleting.
    let add = json!({"metadata": {"finalizers": ["example.com/one", "example.com/two", "example.com/three"]}});
    let (code, _, message) = api_error(
        cms.patch("a", &PatchParams::default(), &Patch::Merge(&add))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 422, "{message}");
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/two"]}})),
    )
    .await
    .unwrap();
    assert!(cms.get_opt("a").await.unwrap().is_some());
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    wait::for_deletion(&cms, "a", T).await.unwrap();
}

#[tokio::test]
async fn json_strategic_and_merge_patches() {
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("patch").await.unwrap();
    let cms = Api::<ConfigMap>::namespaced(cluster.client(), &ns);
    cms.create(&PostParams::default(), &cm("a", json!({"x": "1"})))
        .await
        .unwrap();
    let ops: json_patch_ops::Patch = serde_json::from_value(json!([
        {"op": "add", "path": "/data/j", "value": "json"},
        {"op": "remove", "path": "/metadata/labels/x"},
    ]))
    .unwrap();
    let patched = cms
        .patch("a", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .unwrap();
    assert_eq!(patched.data.as_ref().unwrap()["j"], "json");
    assert!(patched.labels().get("x").is_none());
    let patched = cms
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Strategic(json!({"data": {"s": "smp", "k": null}})),
        )
        .await
        .unwrap();
    let data = patched.data.unwrap();
    assert_eq!(
        (data.get("s").map(String::as_str), data.get("k")),
        (Some("smp"), None)
    );
    // A failing JSON patch test op is rejected and changes nothing.
    let failing: json_patch_ops::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/data/j", "value": "other"}]))
            .unwrap();
    let (code, _, _) = api_error(
        cms.patch("a", &PatchParams::default(), &Patch::<()>::Json(failing))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 422);
}

mod json_patch_ops {
    pub use json_patch::Patch;
}

#[tokio::test]
async fn server_side_apply_merges_records_managers_and_reports_conflicts() {
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("ssa").await.unwrap();
    let cms = Api::<ConfigMap>::namespaced(cluster.client(), &ns);
    let apply = |data: serde_json::Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": data});
    cms.patch(
        "a",
        &PatchParams::apply("first"),
        &Patch::Apply(apply(json!({"one": "1"}))),
    )
    .await
    .unwrap();
    let merged = cms
        .patch(
            "a",
            &PatchParams::apply("second"),
            &Patch::Apply(apply(json!({"two": "2"}))),
        )
        .await
        .unwrap();
    let data = merged.data.clone().unwrap();
    assert_eq!((data["one"].as_str(), data["two"].as_str()), ("1", "2"));
    let managers: Vec<String> = merged
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(
        managers.contains(&"first".into()) && managers.contains(&"second".into()),
        "{managers:?}"
    );
    let (code, _, message) = api_error(
        cms.patch(
            "a",
            &PatchParams::apply("second"),
            &Patch::Apply(apply(json!({"one": "changed", "two": "2"}))),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(code, 409);
    assert!(message.contains("first"), "{message}");
    let forced = cms
        .patch(
            "a",
            &PatchParams::apply("second").force(),
            &Patch::Apply(apply(json!({"one": "changed", "two": "2"}))),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["one"], "changed");
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

#[tokio::test]
async fn pvc_status_events_and_leases_are_served() {
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("core").await.unwrap();
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(cluster.client(), &ns);
    let pvc: PersistentVolumeClaim = serde_json::from_value(json!({"metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))
    .unwrap();
    pvcs.create(&PostParams::default(), &pvc).await.unwrap();
    let bound = pvcs
        .patch_status(
            "data",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        bound.status.as_ref().unwrap().phase.as_deref(),
        Some("Bound")
    );

    let recorder = kube::runtime::events::Recorder::new(
        cluster.client(),
        kube::runtime::events::Reporter {
            controller: "conformance".into(),
            instance: None,
        },
    );
    let reference = bound.object_ref(&());
    let event = kube::runtime::events::Event {
        type_: kube::runtime::events::EventType::Normal,
        reason: "Tested".into(),
        note: Some("an event".into()),
        action: "Test".into(),
        secondary: None,
    };
    recorder.publish(&event, &reference).await.unwrap();
    recorder.publish(&event, &reference).await.unwrap();
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(cluster.client(), &ns);
    let listed = events.list(&ListParams::default()).await.unwrap();
    assert!(
        listed
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Tested"))
    );

    let leases =
        Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(cluster.client(), &ns);
    let lease: k8s_openapi::api::coordination::v1::Lease = serde_json::from_value(
        json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}}),
    )
    .unwrap();
    leases.create(&PostParams::default(), &lease).await.unwrap();
    assert_eq!(
        leases
            .get("l")
            .await
            .unwrap()
            .spec
            .unwrap()
            .holder_identity
            .as_deref(),
        Some("me")
    );
}

#[tokio::test]
async fn a_kube_runtime_reflector_becomes_ready_and_follows_changes() {
    use kube::runtime::{WatchStreamExt, reflector, watcher};
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("reflector").await.unwrap();
    let cms = Api::<ConfigMap>::namespaced(cluster.client(), &ns);
    cms.create(&PostParams::default(), &cm("before", json!({})))
        .await
        .unwrap();
    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = watcher(cms.clone(), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    let task = tokio::spawn(stream.for_each(|_| futures::future::ready(())));
    tokio::time::timeout(T, reader.wait_until_ready())
        .await
        .expect("the store becomes ready")
        .unwrap();
    assert!(reader.state().iter().any(|c| c.name_any() == "before"));
    cms.create(&PostParams::default(), &cm("after", json!({})))
        .await
        .unwrap();
    wait::until(T, "the reflector to see the new object", || async {
        reader
            .state()
            .iter()
            .any(|c| c.name_any() == "after")
            .then_some(())
    })
    .await
    .unwrap();
    task.abort();
}

/// A CRD in a protected group (`*.k8s.io`, `*.kubernetes.io`) needs an API-review annotation;
/// the real snapshot CRDs carry one, a CRD generated from our views did not.
#[tokio::test]
async fn crds_in_protected_groups_need_the_approval_annotation() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let cluster = TestCluster::start().await.unwrap();
    let crds = Api::<CustomResourceDefinition>::all(cluster.client());
    let group = format!("lifeline-{}.k8s.io", std::process::id());
    let crd = |annotations: serde_json::Value| -> CustomResourceDefinition {
        serde_json::from_value(json!({
            "metadata": {"name": format!("gadgets.{group}"), "annotations": annotations},
            "spec": {"group": group, "scope": "Namespaced",
                "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object"}}}]},
        }))
        .unwrap()
    };
    let error = crds
        .create(&PostParams::default(), &crd(json!({})))
        .await
        .unwrap_err();
    let (code, _, message) = api_error(error);
    assert_eq!(code, 422);
    assert!(
        message.contains("protected groups must have approval annotation"),
        "{message}"
    );
    let approved = json!({"api-approved.kubernetes.io": "unapproved, testing only"});
    crds.create(&PostParams::default(), &crd(approved))
        .await
        .unwrap();
    crds.delete(&format!("gadgets.{group}"), &DeleteParams::default())
        .await
        .unwrap();
}

/// Every CEL rule of a CRD is enforced, not only immutability: the upstream VolumeSnapshot
/// needs exactly one source.
#[tokio::test]
async fn crd_cel_rules_are_enforced_beyond_immutability() {
    use lifeline_api::foreign::snapshot::VolumeSnapshot;
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("cel").await.unwrap();
    let snapshots = Api::<VolumeSnapshot>::namespaced(cluster.client(), &ns);
    let snapshot = |source: serde_json::Value| -> VolumeSnapshot {
        serde_json::from_value(
            json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
            "metadata": {"name": "s"}, "spec": {"source": source}}),
        )
        .unwrap()
    };
    let both =
        snapshot(json!({"persistentVolumeClaimName": "a", "volumeSnapshotContentName": "b"}));
    let (code, _, message) = api_error(
        snapshots
            .create(&PostParams::default(), &both)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 422);
    assert!(
        message.contains(
            "exactly one of volumeSnapshotContentName and persistentVolumeClaimName must be set"
        ),
        "{message}"
    );
    snapshots
        .create(
            &PostParams::default(),
            &snapshot(json!({"persistentVolumeClaimName": "a"})),
        )
        .await
        .unwrap();
    let (code, _, message) = api_error(
        snapshots
            .patch(
                "s",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"source": {"persistentVolumeClaimName": "other"}}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 422);
    assert!(
        message.contains("persistentVolumeClaimName is immutable"),
        "{message}"
    );
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

/// The grants a controller runs with on envtest are the chart's own, rebound to its user and
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

/// One Event, two views: what controllers write to `events.k8s.io/v1` is what `kubectl get
/// events` and `kubectl describe` read from core `v1` (field names converted), selectable by
/// the object it is about; deleting it in one view deletes it in both.
#[tokio::test]
async fn events_are_one_object_with_two_views() {
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use k8s_openapi::api::events::v1::Event;
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("events").await.unwrap();
    let event: Event = serde_json::from_value(json!({
        "metadata": {"name": "db.promoted"},
        "eventTime": "2026-12-01T10:00:00.000000Z",
        "reportingController": "lifeline.dev/replication-controller",
        "reportingInstance": "replication-controller-0",
        "action": "Promote", "reason": "Promoted", "type": "Normal",
        "note": "volume is marked primary",
        "regarding": {"kind": "ConfigMap", "namespace": ns, "name": "db", "apiVersion": "v1"},
    }))
    .unwrap();
    Api::<Event>::namespaced(cluster.client(), &ns)
        .create(&PostParams::default(), &event)
        .await
        .unwrap();
    let core = Api::<CoreEvent>::namespaced(cluster.client(), &ns);
    let selected = core
        .list(&ListParams::default().fields("involvedObject.name=db,involvedObject.kind=ConfigMap"))
        .await
        .unwrap()
        .items;
    assert_eq!(selected.len(), 1, "{selected:?}");
    assert_eq!(
        selected[0].message.as_deref(),
        Some("volume is marked primary")
    );
    assert_eq!(
        selected[0].reporting_component.as_deref(),
        Some("lifeline.dev/replication-controller")
    );
    let others = core
        .list(&ListParams::default().fields("involvedObject.name=other"))
        .await
        .unwrap()
        .items;
    assert!(others.is_empty());
    core.delete("db.promoted", &DeleteParams::default())
        .await
        .unwrap();
    wait::for_deletion(
        &Api::<Event>::namespaced(cluster.client(), &ns),
        "db.promoted",
        T,
    )
    .await
    .unwrap();
}

/// What kubectl reads to validate and explain: the OpenAPI v3 root names a document per
/// group-version; a CRD kind's schema carries its group-version-kind and its PATCH the
/// `fieldValidation` parameter; with `fieldValidation=Strict` an undeclared field is refused.
#[tokio::test]
async fn openapi_v3_and_strict_field_validation() {
    let cluster = TestCluster::start().await.unwrap();
    let client = cluster.client();
    let get = |path: String| {
        let client = client.clone();
        async move {
            let request = http::Request::get(path).body(Vec::new()).unwrap();
            client.request::<serde_json::Value>(request).await.unwrap()
        }
    };
    let root = get("/openapi/v3".into()).await;
    let url = root["paths"]["apis/replication.storage.openshift.io/v1alpha1"]["serverRelativeURL"]
        .as_str()
        .expect("the group-version is listed")
        .to_owned();
    let document = get(url).await;
    let schemas = document["components"]["schemas"].as_object().unwrap();
    let vr_schema = schemas
        .values()
        .find(|s| {
            s["x-kubernetes-group-version-kind"]
                .as_array()
                .is_some_and(|g| g.iter().any(|g| g["kind"] == "VolumeReplication"))
        })
        .expect("a schema for VolumeReplication");
    assert!(vr_schema["properties"]["spec"]["properties"]["replicationState"].is_object());
    let patch_has_field_validation = document["paths"].as_object().unwrap().values().any(|p| {
        p["patch"]["x-kubernetes-group-version-kind"]["kind"] == "VolumeReplication"
            && p["patch"]["parameters"].as_array().is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
            })
    });
    assert!(patch_has_field_validation);

    let ns = cluster.namespace("strict").await.unwrap();
    let mut object = serde_json::to_value(vr("strict", "primary")).unwrap();
    object["spec"]["bogusField"] = json!(1);
    let request = http::Request::post(format!(
        "/apis/replication.storage.openshift.io/v1alpha1/namespaces/{ns}/volumereplications?fieldValidation=Strict"
    ))
    .header("Content-Type", "application/json")
    .body(serde_json::to_vec(&object).unwrap())
    .unwrap();
    let error = client
        .request::<serde_json::Value>(request)
        .await
        .unwrap_err();
    let (code, _, message) = api_error(error);
    assert_eq!(code, 400);
    assert!(
        message.contains("unknown field \"spec.bogusField\""),
        "{message}"
    );
}

/// What kubectl ≤ 1.26 reads to validate and explain: `/openapi/v2`, as JSON and as gnostic's
/// protobuf, with a definition per kind that carries its group-version-kind and declares the
/// object fields every kind has, so a client-side validator accepts `apiVersion`, `kind` and
/// `metadata` and refuses an undeclared spec field.
#[tokio::test]
async fn openapi_v2_in_json_and_protobuf() {
    let cluster = TestCluster::start().await.unwrap();
    let client = cluster.client();
    let request = http::Request::get("/openapi/v2")
        .header("Accept", "application/json")
        .body(Vec::new())
        .unwrap();
    let document = client.request::<serde_json::Value>(request).await.unwrap();
    assert_eq!(document["swagger"], "2.0");
    let (name, vr_schema) = document["definitions"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, s)| {
            s["x-kubernetes-group-version-kind"]
                .as_array()
                .is_some_and(|g| g.iter().any(|g| g["kind"] == "VolumeReplication"))
        })
        .expect("a definition for VolumeReplication");
    assert_eq!(
        name,
        "io.openshift.storage.replication.v1alpha1.VolumeReplication"
    );
    for field in ["apiVersion", "kind", "metadata", "spec"] {
        assert!(vr_schema["properties"][field].is_object(), "{field}");
    }
    assert!(vr_schema["properties"]["spec"]["properties"]["replicationState"].is_object());

    let request = http::Request::get("/openapi/v2")
        .header(
            "Accept",
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
        )
        .body(Vec::new())
        .unwrap();
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.contains("protobuf"), "{content_type}");
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    // The protobuf starts with `swagger` (field 1) = "2.0" and names the definition.
    assert_eq!(&bytes[..5], b"\x0a\x032.0");
    let named = b"io.openshift.storage.replication.v1alpha1.VolumeReplication";
    assert!(bytes.windows(named.len()).any(|w| w == named));
}
