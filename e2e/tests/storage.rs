//! The reference driver under the real CSI sidecars and snapshot-controller: a claim gets a
//! volume from external-provisioner, csi-snapshotter snapshots it, a claim from the snapshot
//! starts from the copy — real directories behind each.

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use lifeline_api::foreign::snapshot::{VolumeSnapshot, VolumeSnapshotClass, VolumeSnapshotContent};
use lifeline_e2e::{TestCluster, wait};
use serde_json::json;

const T: Duration = Duration::from_secs(30);
const DRIVER: &str = "hostpath.lifeline.dev";

fn obj<K: serde::de::DeserializeOwned>(value: serde_json::Value) -> K {
    serde_json::from_value(value).unwrap()
}

fn pvc(name: &str, class: &str, snapshot: Option<&str>) -> PersistentVolumeClaim {
    let mut spec = json!({"storageClassName": class, "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}});
    if let Some(snapshot) = snapshot {
        spec["dataSource"] = json!({"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": snapshot});
    }
    obj(json!({"metadata": {"name": name}, "spec": spec}))
}

fn snapshot(name: &str, claim: &str, class: &str) -> VolumeSnapshot {
    obj(
        json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot", "metadata": {"name": name},
               "spec": {"volumeSnapshotClassName": class, "source": {"persistentVolumeClaimName": claim}}}),
    )
}

#[tokio::test]
async fn claims_bind_snapshots_copy_and_restores_start_from_the_copy() {
    let cluster = TestCluster::start().await.unwrap();
    let client = cluster.client();
    let ns = cluster.namespace("actors").await.unwrap();
    let (site, _storage) = cluster.lone_driver(DRIVER).await.unwrap();
    let (sc, delete_class, retain_class) = (
        format!("sc-{ns}"),
        format!("vsc-{ns}"),
        format!("vsc-retain-{ns}"),
    );
    Api::<StorageClass>::all(client.clone())
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": sc}, "provisioner": DRIVER})),
        )
        .await
        .unwrap();
    let classes = Api::<VolumeSnapshotClass>::all(client.clone());
    for (name, policy) in [(&delete_class, "Delete"), (&retain_class, "Retain")] {
        classes
            .create(&PostParams::default(), &obj(json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
                "metadata": {"name": name}, "driver": DRIVER, "deletionPolicy": policy})))
            .await
            .unwrap();
    }

    // A claim binds to a new CSI volume backed by a directory.
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns);
    claims
        .create(&PostParams::default(), &pvc("app", &sc, None))
        .await
        .unwrap();
    let bound = wait::for_object(&claims, "app", T, "bound", |c| {
        c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
    })
    .await
    .unwrap();
    let pv_name = bound.spec.unwrap().volume_name.unwrap();
    let pv = Api::<PersistentVolume>::all(client.clone())
        .get(&pv_name)
        .await
        .unwrap();
    let handle = pv.spec.unwrap().csi.unwrap().volume_handle;
    let volume = site.volume_dir(&handle);
    std::fs::create_dir_all(volume.join("nested")).unwrap();
    std::fs::write(volume.join("nested/data.bin"), b"first state").unwrap();

    // A snapshot is a point-in-time copy.
    let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), &ns);
    snapshots
        .create(
            &PostParams::default(),
            &snapshot("snap", "app", &delete_class),
        )
        .await
        .unwrap();
    let ready = wait::for_object(&snapshots, "snap", T, "ready", |s| {
        s.status.as_ref().and_then(|s| s.ready_to_use) == Some(true)
    })
    .await
    .unwrap();
    std::fs::write(volume.join("nested/data.bin"), b"later state").unwrap();
    let content_name = ready
        .status
        .unwrap()
        .bound_volume_snapshot_content_name
        .unwrap();
    let contents = Api::<VolumeSnapshotContent>::all(client.clone());
    let content = contents.get(&content_name).await.unwrap();
    let snapshot_handle = content.status.unwrap().snapshot_handle.unwrap();
    assert_eq!(
        std::fs::read(site.snapshot_dir(&snapshot_handle).join("nested/data.bin")).unwrap(),
        b"first state"
    );

    // A claim from the snapshot starts with the snapshot's data.
    claims
        .create(&PostParams::default(), &pvc("restored", &sc, Some("snap")))
        .await
        .unwrap();
    let restored = wait::for_object(&claims, "restored", T, "bound", |c| {
        c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
    })
    .await
    .unwrap();
    let restored_pv = Api::<PersistentVolume>::all(client.clone())
        .get(&restored.spec.unwrap().volume_name.unwrap())
        .await
        .unwrap();
    let restored_dir = site.volume_dir(&restored_pv.spec.unwrap().csi.unwrap().volume_handle);
    assert_eq!(
        std::fs::read(restored_dir.join("nested/data.bin")).unwrap(),
        b"first state"
    );

    // Deletion policy Delete: the content and the copy go with the snapshot.
    snapshots
        .delete("snap", &DeleteParams::default())
        .await
        .unwrap();
    wait::for_deletion(&contents, &content_name, T)
        .await
        .unwrap();
    assert!(!site.snapshot_dir(&snapshot_handle).exists());

    // Retain: the content stays, and can be bound again as a pre-provisioned snapshot.
    snapshots
        .create(
            &PostParams::default(),
            &snapshot("kept", "app", &retain_class),
        )
        .await
        .unwrap();
    let kept = wait::for_object(&snapshots, "kept", T, "ready", |s| {
        s.status.as_ref().and_then(|s| s.ready_to_use) == Some(true)
    })
    .await
    .unwrap();
    let kept_content = kept
        .status
        .unwrap()
        .bound_volume_snapshot_content_name
        .unwrap();
    let kept_handle = contents
        .get(&kept_content)
        .await
        .unwrap()
        .status
        .unwrap()
        .snapshot_handle
        .unwrap();
    snapshots
        .delete("kept", &DeleteParams::default())
        .await
        .unwrap();
    wait::for_deletion(&snapshots, "kept", T).await.unwrap();
    // The static binding below only becomes ready while the retained data is still there, and
    // only after the actor has judged the deleted snapshot's content.

    let static_name = format!("static-{ns}");
    contents
        .create(&PostParams::default(), &obj(json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
            "metadata": {"name": static_name},
            "spec": {"deletionPolicy": "Retain", "driver": DRIVER, "source": {"snapshotHandle": kept_handle},
                     "volumeSnapshotRef": {"namespace": ns, "name": "static"}}})))
        .await
        .unwrap();
    snapshots
        .create(&PostParams::default(), &obj(json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
            "metadata": {"name": "static"}, "spec": {"source": {"volumeSnapshotContentName": static_name}}})))
        .await
        .unwrap();
    wait::for_object(&snapshots, "static", T, "bound and ready", |s| {
        s.status.as_ref().is_some_and(|s| {
            s.ready_to_use == Some(true)
                && s.bound_volume_snapshot_content_name.as_deref() == Some(static_name.as_str())
        })
    })
    .await
    .unwrap();
    assert!(
        contents.get_opt(&kept_content).await.unwrap().is_some(),
        "Retain keeps the content"
    );

    // A deleted claim takes its volume (reclaim policy Delete) and data with it.
    claims
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    wait::for_deletion(&Api::<PersistentVolume>::all(client.clone()), &pv_name, T)
        .await
        .unwrap();
    assert!(!volume.exists());
}
