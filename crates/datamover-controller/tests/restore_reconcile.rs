//! The restore reconcile against an in-memory API: a restore to a published snapshot handle
//! whose data outlives the cleanup, and a failing (e.g. empty) repository ending in Failed.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};
use lifeline_api::datamover::VolumeSnapshotRestore;
use lifeline_api::foreign::snapshot::{VolumeSnapshot, VolumeSnapshotContent};
use lifeline_api::foreign::volsync::ReplicationDestination;
use lifeline_datamover_controller::context::Context;
use lifeline_datamover_controller::reconcile::restore::{names, reconcile};
use lifeline_datamover_controller::settings::Settings;
use lifeline_testkit::MockApi;
use serde_json::json;

const PROTECTED: &str = "lifeline-system";

fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
    serde_saphyr::from_str(text).unwrap()
}

fn example<T: serde::de::DeserializeOwned>(file: &str) -> T {
    yaml(
        &std::fs::read_to_string(format!(
            "{}/../../../shared/examples/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
}

fn world() -> (MockApi, Arc<Context>) {
    let api = MockApi::default();
    api.put::<Namespace>(&yaml(&format!("metadata: {{name: {PROTECTED}}}")));
    api.put::<CustomResourceDefinition>(&yaml(
        "metadata: {name: replicationdestinations.volsync.backube}\nspec: {group: volsync.backube, names: {plural: replicationdestinations, kind: ReplicationDestination}, scope: Namespaced, versions: []}",
    ));
    api.put::<Secret>(&yaml(&format!(
        "metadata: {{name: default-restic, namespace: {PROTECTED}}}\nstringData: {{RESTIC_PASSWORD: pw-123456, RESTIC_REPOSITORY: \"s3:https://s3.example.com/backups/lifeline\", AWS_ACCESS_KEY_ID: key-id, AWS_SECRET_ACCESS_KEY: key-secret-1}}"
    )));
    // The shared example names a snapshot class; this cluster has none, so drop it.
    let mut vsr: VolumeSnapshotRestore = example("volumesnapshotrestore.yaml");
    vsr.spec
        .volume_snapshot_mover_backup_ref
        .volume_snapshot_class_name = None;
    vsr.spec.volume_snapshot_mover_backup_ref.restic_repository =
        Some("s3:https://s3.example.com/backups/lifeline/shop/orders-db-data".into());
    api.put(&vsr);
    let ctx = Arc::new(Context::new(api.client(), Settings::default(), 2, 2));
    (api, ctx)
}

async fn step(api: &MockApi, ctx: &Arc<Context>) -> VolumeSnapshotRestore {
    let vsr: VolumeSnapshotRestore = api.get(Some("shop"), "vsr-orders-db-q9w3e").unwrap();
    reconcile(Arc::new(vsr), Arc::clone(ctx)).await.unwrap();
    api.get(Some("shop"), "vsr-orders-db-q9w3e")
        .expect("the VSR is still there")
}

#[tokio::test]
async fn a_restore_publishes_a_snapshot_handle_whose_data_outlives_cleanup() {
    let (api, ctx) = world();
    let vsr = step(&api, &ctx).await;
    assert_eq!(
        vsr.status.as_ref().unwrap().batching(),
        Some(lifeline_api::datamover::BatchingStatus::Processing)
    );
    let vsr = step(&api, &ctx).await;
    let n = names(&vsr);
    let rd: ReplicationDestination = api
        .get(Some(PROTECTED), &n.replication_destination())
        .expect("destination created");
    let restic = rd.spec.restic.clone().unwrap();
    assert_eq!(restic.capacity.map(|q| q.0).as_deref(), Some("10Gi"));
    assert_eq!(restic.storage_class_name.as_deref(), Some("block-fast"));
    let secret: Secret = api.get(Some(PROTECTED), &n.secret()).unwrap();
    assert_eq!(
        secret.string_data.unwrap()["RESTIC_REPOSITORY"],
        "s3:https://s3.example.com/backups/lifeline/shop/orders-db-data"
    );

    // Play VolSync and the snapshot controller.
    api.put::<VolumeSnapshotContent>(&yaml(
        "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshotContent\nmetadata: {name: restored-content}\nspec: {deletionPolicy: Delete, driver: d, source: {volumeHandle: v}, volumeSnapshotRef: {namespace: lifeline-system, name: restored}}\nstatus: {readyToUse: true, snapshotHandle: handle-restored}",
    ));
    api.put::<VolumeSnapshot>(&yaml(
        "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshot\nmetadata: {name: restored, namespace: lifeline-system}\nspec: {source: {persistentVolumeClaimName: x}}\nstatus: {readyToUse: true, boundVolumeSnapshotContentName: restored-content}",
    ));
    Api::<ReplicationDestination>::namespaced(ctx.client.clone(), PROTECTED)
        .patch_status(
            &n.replication_destination(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"lastManualSync": "vsr-orders-db-q9w3e",
                "latestImage": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "restored"}}})),
        )
        .await
        .unwrap();
    let vsr = step(&api, &ctx).await;
    let status = vsr.status.clone().unwrap();
    assert_eq!(status.phase.unwrap().as_str(), "SnapshotRestoreDone");
    assert_eq!(status.snapshot_handle.as_deref(), Some("handle-restored"));
    assert_eq!(
        status.volume_snapshot_content_name.as_deref(),
        Some("restored-content")
    );
    let content: VolumeSnapshotContent = api.get(None, "restored-content").unwrap();
    assert_eq!(
        content.spec.deletion_policy.as_str(),
        "Retain",
        "the restored data outlives our snapshot objects"
    );

    step(&api, &ctx).await; // clean up
    assert!(
        api.get::<ReplicationDestination>(Some(PROTECTED), &n.replication_destination())
            .is_none()
    );
    assert!(api.get::<Secret>(Some(PROTECTED), &n.secret()).is_none());
    assert!(
        api.get::<VolumeSnapshot>(Some(PROTECTED), "restored")
            .is_none()
    );
    assert!(
        api.get::<VolumeSnapshotContent>(None, "restored-content")
            .is_some(),
        "the handle stays bindable"
    );
    let vsr = step(&api, &ctx).await;
    assert_eq!(vsr.status.unwrap().phase.unwrap().as_str(), "Completed");
}

#[tokio::test]
async fn an_empty_repository_is_a_failure_not_a_success() {
    let (api, ctx) = world();
    step(&api, &ctx).await;
    let vsr = step(&api, &ctx).await;
    let n = names(&vsr);
    Api::<ReplicationDestination>::namespaced(ctx.client.clone(), PROTECTED)
        .patch_status(
            &n.replication_destination(),
            &PatchParams::default(),
            // What VolSync v0.14's mover reports for a repository with nothing to restore: the
            // manual sync done, successfully, with these lines kept from its log.
            &Patch::Merge(json!({"status": {"lastManualSync": vsr.metadata.name,
                "latestMoverStatus": {"result": "Successful",
                    "logs": "No eligible snapshots found\n=== No data will be restored ===\nRestic completed in 2s"}}})),
        )
        .await
        .unwrap();
    let vsr = step(&api, &ctx).await;
    let status = vsr.status.unwrap();
    assert_eq!(status.phase.unwrap().as_str(), "Failed");
    assert!(
        status.conditions[0]
            .message
            .contains("no backup to restore"),
        "{}",
        status.conditions[0].message
    );
    step(&api, &ctx).await;
    assert!(
        api.get::<ReplicationDestination>(Some(PROTECTED), &n.replication_destination())
            .is_none(),
        "cleaned up after failure"
    );
}

#[tokio::test]
async fn deleting_a_restore_midway_removes_its_working_objects() {
    let (api, ctx) = world();
    step(&api, &ctx).await;
    let vsr = step(&api, &ctx).await;
    let n = names(&vsr);
    assert!(
        api.get::<ReplicationDestination>(Some(PROTECTED), &n.replication_destination())
            .is_some()
    );
    Api::<VolumeSnapshotRestore>::namespaced(ctx.client.clone(), "shop")
        .delete("vsr-orders-db-q9w3e", &Default::default())
        .await
        .unwrap();
    step(&api, &ctx).await; // clean up
    assert!(
        api.get::<ReplicationDestination>(Some(PROTECTED), &n.replication_destination())
            .is_none()
    );
    assert!(api.get::<Secret>(Some(PROTECTED), &n.secret()).is_none());
    let vsr: VolumeSnapshotRestore = api.get(Some("shop"), "vsr-orders-db-q9w3e").unwrap();
    reconcile(Arc::new(vsr), Arc::clone(&ctx)).await.unwrap(); // release
    assert!(
        api.get::<VolumeSnapshotRestore>(Some("shop"), "vsr-orders-db-q9w3e")
            .is_none()
    );
}

/// A malformed `restore-as-of` annotation (Lifeline's) is a condition naming it, never a panic,
/// and nothing is created; a valid one reaches the ReplicationDestination.
#[tokio::test]
async fn a_malformed_restore_as_of_is_a_condition_not_a_panic() {
    for bad in [
        "",
        "yesterday",
        "2026-13-01T00:00:00Z",
        "2026-12-01",
        "1733000000",
        "\u{0}\u{ffff}",
    ] {
        let (api, ctx) = world();
        let mut vsr: VolumeSnapshotRestore = api.get(Some("shop"), "vsr-orders-db-q9w3e").unwrap();
        vsr.metadata.annotations =
            Some([("datamover.io/restore-as-of".to_owned(), bad.to_owned())].into());
        api.put(&vsr);
        let vsr = step(&api, &ctx).await;
        let status = vsr.status.clone().unwrap();
        let condition = &status.conditions[0];
        assert_eq!(
            (condition.status.as_str(), condition.reason.as_str()),
            ("False", "Error"),
            "{bad:?}"
        );
        assert!(
            condition.message.contains("datamover.io/restore-as-of")
                && condition.message.contains("RFC 3339"),
            "{bad:?}: {}",
            condition.message
        );
        let n = names(&vsr);
        assert!(
            api.get::<ReplicationDestination>(Some(PROTECTED), &n.replication_destination())
                .is_none()
        );
    }
    let (api, ctx) = world();
    let mut vsr: VolumeSnapshotRestore = api.get(Some("shop"), "vsr-orders-db-q9w3e").unwrap();
    vsr.metadata.annotations = Some(
        [(
            "datamover.io/restore-as-of".to_owned(),
            "2026-03-02T01:03:13Z".to_owned(),
        )]
        .into(),
    );
    api.put(&vsr);
    step(&api, &ctx).await;
    let vsr = step(&api, &ctx).await;
    let rd: ReplicationDestination = api
        .get(Some(PROTECTED), &names(&vsr).replication_destination())
        .expect("created");
    assert_eq!(
        rd.spec.restic.unwrap().restore_as_of.unwrap().0.to_string(),
        "2026-03-02T01:03:13Z"
    );
}

/// The real mover cannot write to a local path, so a restore from one is refused by name.
#[tokio::test]
async fn a_local_repository_is_refused() {
    let (api, ctx) = world();
    let mut vsr: VolumeSnapshotRestore = api.get(Some("shop"), "vsr-orders-db-q9w3e").unwrap();
    vsr.spec.volume_snapshot_mover_backup_ref.restic_repository =
        Some("/var/backups/shop/db".into());
    api.put(&vsr);
    let vsr = step(&api, &ctx).await;
    let message = &vsr.status.unwrap().conditions[0].message;
    assert!(
        message.starts_with("spec.volumeSnapshotMoverBackupRef.resticrepository is a local path"),
        "{message}"
    );
}
