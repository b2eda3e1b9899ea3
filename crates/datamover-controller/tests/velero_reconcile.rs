//! The DataUpload and DataDownload reconciles against an in-memory API: who takes a request
//! (guarded by its resourceVersion), what is made from the BackupStorageLocation, what a
//! finished request leaves, and another mover's request untouched.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Secret};
use kube::runtime::controller::Action;
use lifeline_api::datamover::VolumeSnapshotBackup;
use lifeline_api::foreign::snapshot::VolumeSnapshot;
use lifeline_api::foreign::velero::{BackupStorageLocation, DataDownload, DataUpload};
use lifeline_api::foreign::volsync::ReplicationDestination;
use lifeline_datamover_controller::context::Context;
use lifeline_datamover_controller::reconcile::{download, upload};
use lifeline_datamover_controller::settings::Settings;
use lifeline_testkit::MockApi;
use serde_json::json;

const NS: &str = "velero";

fn obj<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).unwrap()
}

fn world() -> (MockApi, Arc<Context>) {
    let api = MockApi::default();
    api.without_status_subresource::<DataUpload>();
    api.without_status_subresource::<DataDownload>();
    api.put::<BackupStorageLocation>(&obj(
        json!({"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
        "metadata": {"name": "default", "namespace": NS},
        "spec": {"provider": "aws", "objectStorage": {"bucket": "backups", "prefix": "a"},
                 "config": {"region": "minio", "s3Url": "https://s3.example:9000"}}}),
    ));
    api.put::<Secret>(&obj(json!({"metadata": {"name": "cloud-credentials", "namespace": NS},
        "stringData": {"cloud": "[default]\naws_access_key_id=AKID\naws_secret_access_key=s3cr3t-value\n"}})));
    api.put::<Secret>(&obj(json!({"metadata": {"name": "pw", "namespace": NS},
        "stringData": {"RESTIC_PASSWORD": "pw-do-not-log-123"}})));
    api.put::<ConfigMap>(&obj(
        json!({"metadata": {"name": "lifeline", "namespace": NS},
        "data": {"repositoryPasswordSecret": "pw"}}),
    ));
    api.put::<VolumeSnapshot>(&obj(json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
        "metadata": {"name": "velero-data-1", "namespace": "shop", "labels": {"velero.io/backup-name": "nightly"}},
        "spec": {"source": {"persistentVolumeClaimName": "data"}},
        "status": {"readyToUse": true, "boundVolumeSnapshotContentName": "snapcontent-1"}})));
    let settings = Settings {
        datamover_name: "lifeline".into(),
        ..Settings::default()
    };
    let ctx = Arc::new(Context::new(api.client(), settings, 4, 4));
    (api, ctx)
}

fn upload_request(datamover: &str) -> DataUpload {
    obj(
        json!({"apiVersion": "velero.io/v2alpha1", "kind": "DataUpload",
        "metadata": {"name": "nightly-x1", "namespace": NS, "uid": "du-uid-1", "labels": {"velero.io/backup-name": "nightly"}},
        "spec": {"snapshotType": "CSI", "sourcePVC": "data", "sourceNamespace": "shop", "datamover": datamover,
                 "backupStorageLocation": "default", "operationTimeout": "10m0s",
                 "csiSnapshot": {"volumeSnapshot": "velero-data-1", "storageClass": "sc"}}}),
    )
}

fn current<K: kube::Resource<DynamicType = ()> + serde::de::DeserializeOwned>(
    api: &MockApi,
    name: &str,
) -> K {
    api.get::<K>(Some(NS), name).unwrap()
}

#[tokio::test]
async fn another_movers_request_gets_no_read_and_no_write() {
    let (api, ctx) = world();
    api.put(&upload_request("velero"));
    api.take_writes();
    api.take_reads();
    let du: DataUpload = current(&api, "nightly-x1");
    upload::reconcile(Arc::new(du), Arc::clone(&ctx))
        .await
        .unwrap();
    assert_eq!(api.take_writes(), Vec::<String>::new());
    assert_eq!(api.take_reads(), Vec::<String>::new());
}

#[tokio::test]
async fn a_request_changed_since_it_was_read_is_not_taken() {
    let (api, ctx) = world();
    api.put(&upload_request("lifeline"));
    let stale: DataUpload = current(&api, "nightly-x1");
    // Another mover (or replica) writes first.
    api.put(&current::<DataUpload>(&api, "nightly-x1"));
    let action = upload::reconcile(Arc::new(stale), Arc::clone(&ctx))
        .await
        .unwrap();
    assert_eq!(action, Action::await_change());
    let now: DataUpload = current(&api, "nightly-x1");
    assert!(now.status.is_none(), "not taken: {:?}", now.status);
    assert!(api.events().is_empty(), "{:?}", api.events());
    // Read afresh, it is taken.
    upload::reconcile(Arc::new(now), Arc::clone(&ctx))
        .await
        .unwrap();
    let taken: DataUpload = current(&api, "nightly-x1");
    let status = taken.status.unwrap();
    assert_eq!(status.phase.unwrap().as_str(), "Accepted");
    assert!(status.accepted_timestamp.is_some());
}

#[tokio::test]
async fn an_upload_is_served_through_an_owned_backup_and_leaves_nothing() {
    let (api, ctx) = world();
    api.put(&upload_request("lifeline"));
    for _ in 0..2 {
        let du: DataUpload = current(&api, "nightly-x1");
        upload::reconcile(Arc::new(du), Arc::clone(&ctx))
            .await
            .unwrap();
    }
    let secret: Secret = current(&api, "nightly-x1-repository");
    let data = secret.data.unwrap();
    let text = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
    assert_eq!(
        text("RESTIC_REPOSITORY"),
        "s3:https://s3.example:9000/backups/a/plugins/lifeline"
    );
    assert_eq!(text("AWS_ACCESS_KEY_ID"), "AKID");
    assert_eq!(text("RESTIC_PASSWORD"), "pw-do-not-log-123");
    let backup: VolumeSnapshotBackup = current(&api, "nightly-x1");
    assert_eq!(
        backup.spec.volume_snapshot_content.name.as_deref(),
        Some("snapcontent-1")
    );
    assert_eq!(backup.spec.protected_namespace, NS);
    assert_eq!(
        backup.spec.restic_secret_ref.unwrap().name,
        "nightly-x1-repository"
    );
    let owner = &backup.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("DataUpload", "du-uid-1")
    );

    // The backup completes (as its own reconcile would write it).
    let mut done = current::<VolumeSnapshotBackup>(&api, "nightly-x1");
    done.metadata.annotations = Some(
        [
            (
                "datamover.io/restore-as-of".to_owned(),
                "2026-12-01T10:03:01Z".to_owned(),
            ),
            (
                "datamover.io/restic-snapshot-id".to_owned(),
                "4f2a9c1b".to_owned(),
            ),
        ]
        .into(),
    );
    done.status = Some(obj(
        json!({"phase": "Completed", "progress": {"phase": "Done", "bytesDone": 4096, "bytesTotal": 4096}}),
    ));
    api.put(&done);
    let du: DataUpload = current(&api, "nightly-x1");
    upload::reconcile(Arc::new(du), Arc::clone(&ctx))
        .await
        .unwrap();
    let completed: DataUpload = current(&api, "nightly-x1");
    let status = completed.status.clone().unwrap();
    assert_eq!(status.phase.unwrap().as_str(), "Completed");
    assert_eq!(
        status.snapshot_id.as_deref(),
        Some("4f2a9c1b@2026-12-01T10:03:01Z")
    );
    assert_eq!(status.progress.unwrap().bytes_done, Some(4096));
    // Then the backup, and after it the Secret and Velero's snapshot, go.
    for _ in 0..2 {
        let du: DataUpload = current(&api, "nightly-x1");
        upload::reconcile(Arc::new(du), Arc::clone(&ctx))
            .await
            .unwrap();
    }
    assert!(
        api.get::<VolumeSnapshotBackup>(Some(NS), "nightly-x1")
            .is_none()
    );
    assert!(
        api.get::<Secret>(Some(NS), "nightly-x1-repository")
            .is_none()
    );
    assert!(
        api.get::<VolumeSnapshot>(Some("shop"), "velero-data-1")
            .is_none()
    );
    let log = format!("{:?}", api.events());
    assert!(
        !log.contains("pw-do-not-log-123") && !log.contains("s3cr3t"),
        "{log}"
    );
}

#[tokio::test]
async fn a_download_restores_into_a_working_claim_and_hands_the_volume_over() {
    let (api, ctx) = world();
    api.put::<PersistentVolumeClaim>(&obj(json!({"metadata": {"name": "data", "namespace": "shop-2"},
        "spec": {"storageClassName": "sc", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}},
                 "selector": {"matchLabels": {"velero.io/dynamic-pv-restore": "shop-2.data.abc"}}}})));
    api.put(&obj::<DataDownload>(json!({"apiVersion": "velero.io/v2alpha1", "kind": "DataDownload",
        "metadata": {"name": "restore-x1", "namespace": NS, "uid": "dd-uid-1"},
        "spec": {"targetVolume": {"pvc": "data", "pv": "", "namespace": "shop-2"}, "backupStorageLocation": "default",
                 "datamover": "lifeline", "snapshotID": "4f2a9c1b@2026-12-01T10:03:01Z", "sourceNamespace": "shop",
                 "operationTimeout": "10m0s"}})));
    let step = async || {
        let dd: DataDownload = current(&api, "restore-x1");
        download::reconcile(Arc::new(dd), Arc::clone(&ctx))
            .await
            .unwrap();
    };
    step().await; // Accepted
    step().await; // Secret, working claim, ReplicationDestination
    let secret: Secret = current(&api, "restore-x1-repository");
    let repository = secret.string_data.unwrap()["RESTIC_REPOSITORY"].clone();
    assert_eq!(
        repository,
        "s3:https://s3.example:9000/backups/a/plugins/lifeline/shop/data"
    );
    let claim: PersistentVolumeClaim = current(&api, "restore-x1-restore");
    let spec = claim.spec.clone().unwrap();
    assert_eq!(spec.storage_class_name.as_deref(), Some("sc"));
    assert_eq!(
        spec.resources.unwrap().requests.unwrap()["storage"].0,
        "2Gi"
    );
    let rd: ReplicationDestination = current(&api, "restore-x1-restore");
    let restic = rd.spec.restic.clone().unwrap();
    assert_eq!(
        restic.destination_pvc.as_deref(),
        Some("restore-x1-restore")
    );
    assert_eq!(
        restic.restore_as_of.unwrap().0.to_string(),
        "2026-12-01T10:03:01Z"
    );
    let dd: DataDownload = current(&api, "restore-x1");
    assert_eq!(dd.status.unwrap().phase.unwrap().as_str(), "Prepared");

    // Restored: the working claim is bound to a volume and the mover's trigger is done.
    api.put::<PersistentVolume>(&obj(json!({"metadata": {"name": "pv-9"},
        "spec": {"persistentVolumeReclaimPolicy": "Delete", "claimRef": {"namespace": NS, "name": "restore-x1-restore", "uid": "c-1"}}})));
    let mut bound = claim;
    bound.spec.as_mut().unwrap().volume_name = Some("pv-9".into());
    api.put(&bound);
    let mut finished = rd;
    finished.status = Some(obj(json!({"lastManualSync": "restore-x1"})));
    api.put(&finished);
    step().await; // keep the volume
    let pv = api.get::<PersistentVolume>(None, "pv-9").unwrap();
    assert_eq!(
        pv.spec
            .as_ref()
            .unwrap()
            .persistent_volume_reclaim_policy
            .as_deref(),
        Some("Retain")
    );
    step().await; // release the working claim and the destination
    assert!(
        api.get::<PersistentVolumeClaim>(Some(NS), "restore-x1-restore")
            .is_none()
    );
    assert!(
        api.get::<ReplicationDestination>(Some(NS), "restore-x1-restore")
            .is_none()
    );
    step().await; // hand over, still Retain
    let pv = api.get::<PersistentVolume>(None, "pv-9").unwrap();
    let claim_ref = pv.spec.as_ref().unwrap().claim_ref.clone().unwrap();
    assert_eq!(
        (
            claim_ref.namespace.as_deref(),
            claim_ref.name.as_deref(),
            claim_ref.uid.as_deref()
        ),
        (Some("shop-2"), Some("data"), None)
    );
    assert_eq!(
        pv.metadata.labels.as_ref().unwrap()["velero.io/dynamic-pv-restore"],
        "shop-2.data.abc"
    );
    assert_eq!(
        pv.spec
            .as_ref()
            .unwrap()
            .persistent_volume_reclaim_policy
            .as_deref(),
        Some("Retain")
    );
    // Velero's claim binds: Completed, the reclaim policy back, the Secret gone.
    api.put::<PersistentVolumeClaim>(&obj(
        json!({"metadata": {"name": "data", "namespace": "shop-2"},
        "spec": {"volumeName": "pv-9"}, "status": {"phase": "Bound"}}),
    ));
    step().await;
    let pv = api.get::<PersistentVolume>(None, "pv-9").unwrap();
    assert_eq!(
        pv.spec
            .as_ref()
            .unwrap()
            .persistent_volume_reclaim_policy
            .as_deref(),
        Some("Delete")
    );
    let dd: DataDownload = current(&api, "restore-x1");
    assert_eq!(dd.status.unwrap().phase.unwrap().as_str(), "Completed");
    step().await;
    assert!(
        api.get::<Secret>(Some(NS), "restore-x1-repository")
            .is_none()
    );
}

#[tokio::test]
async fn a_download_cancelled_after_its_volume_was_kept_frees_the_volume_and_leaves_nothing() {
    let (api, ctx) = world();
    api.put::<PersistentVolumeClaim>(&obj(json!({"metadata": {"name": "data", "namespace": "shop-2"},
        "spec": {"storageClassName": "sc", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})));
    api.put(&obj::<DataDownload>(json!({"apiVersion": "velero.io/v2alpha1", "kind": "DataDownload",
        "metadata": {"name": "restore-x2", "namespace": NS, "uid": "dd-uid-2"},
        "spec": {"targetVolume": {"pvc": "data", "pv": "", "namespace": "shop-2"}, "backupStorageLocation": "default",
                 "datamover": "lifeline", "snapshotID": "@2026-12-01T10:03:01Z", "sourceNamespace": "shop",
                 "operationTimeout": "10m0s", "cancel": true},
        "status": {"phase": "InProgress", "acceptedTimestamp": "2026-12-01T10:00:00Z"}})));
    let owner = json!([{"apiVersion": "velero.io/v2alpha1", "kind": "DataDownload", "name": "restore-x2", "uid": "dd-uid-2", "controller": true}]);
    api.put::<Secret>(&obj(json!({"metadata": {"name": "restore-x2-repository", "namespace": NS, "ownerReferences": owner}})));
    api.put::<PersistentVolumeClaim>(&obj(json!({"metadata": {"name": "restore-x2-restore", "namespace": NS, "ownerReferences": owner}})));
    api.put::<ReplicationDestination>(&obj(json!({"apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationDestination",
        "metadata": {"name": "restore-x2-restore", "namespace": NS, "ownerReferences": owner}, "spec": {}})));
    // Kept (Retain, labelled) but not handed over.
    api.put::<PersistentVolume>(&obj(json!({"metadata": {"name": "pv-7",
            "labels": {"datamover.io/data-download": "dd-uid-2"}, "annotations": {"datamover.io/reclaim-policy": "Delete"}},
        "spec": {"persistentVolumeReclaimPolicy": "Retain", "claimRef": {"namespace": NS, "name": "restore-x2-restore"}}})));
    let phase = || {
        api.get::<DataDownload>(Some(NS), "restore-x2")
            .and_then(|d| d.status?.phase)
            .map(|p| p.as_str().to_owned())
    };
    for _ in 0..4 {
        let dd: DataDownload = current(&api, "restore-x2");
        download::reconcile(Arc::new(dd), Arc::clone(&ctx))
            .await
            .unwrap();
        if phase().as_deref() == Some("Canceled") {
            break;
        }
    }
    assert_eq!(phase().as_deref(), Some("Canceled"));
    assert!(
        api.get::<ReplicationDestination>(Some(NS), "restore-x2-restore")
            .is_none()
    );
    assert!(
        api.get::<PersistentVolumeClaim>(Some(NS), "restore-x2-restore")
            .is_none()
    );
    assert!(
        api.get::<Secret>(Some(NS), "restore-x2-repository")
            .is_none()
    );
    let pv = api.get::<PersistentVolume>(None, "pv-7").unwrap();
    assert_eq!(
        pv.spec.unwrap().persistent_volume_reclaim_policy.as_deref(),
        Some("Delete"),
        "the storage is freed once the volume is released"
    );
    assert!(
        !pv.metadata
            .labels
            .unwrap_or_default()
            .contains_key("datamover.io/data-download")
    );
}
