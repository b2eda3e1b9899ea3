//! Finalizers and deletion: a VolumeReplication disables replication, releases its PVC, then
//! goes; a replicated PVC cannot go first; odd orders still end cleanly.

mod support;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::Api;
use kube::api::DeleteParams;
use lifeline_api::replication::{
    PVC_FINALIZER, PVC_OWNER_ANNOTATION, VolumeReplication, VolumeReplicationClass,
};
use lifeline_replication_controller::error::Retry;
use support::{Harness, NS, PVC, VR};
use tonic::Code;

async fn replicated() -> Harness {
    let h = Harness::new().await;
    h.seed("1m");
    h.put_vr("primary", "");
    h.reconcile().await.unwrap();
    h.calls();
    h
}

async fn delete_vr(h: &Harness) {
    Api::<VolumeReplication>::namespaced(h.ctx.client.clone(), NS)
        .delete(VR, &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        h.vr().unwrap().metadata.deletion_timestamp.is_some(),
        "the finalizer holds it"
    );
}

fn claimed(pvc: &PersistentVolumeClaim) -> bool {
    pvc.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == PVC_FINALIZER)
        || pvc
            .metadata
            .annotations
            .iter()
            .flatten()
            .any(|(k, _)| k == PVC_OWNER_ANNOTATION)
}

#[tokio::test]
async fn deleting_disables_then_releases_the_claim_then_goes() {
    let h = replicated().await;
    assert!(claimed(&h.pvc().unwrap()));
    delete_vr(&h).await;
    h.reconcile().await.unwrap();
    assert_eq!(h.calls(), ["Disable"]);
    assert!(
        !claimed(&h.pvc().unwrap()),
        "finalizer and annotation removed"
    );
    assert!(h.vr().is_none(), "the VolumeReplication is gone");
}

#[tokio::test]
async fn disable_not_found_counts_as_done() {
    let h = replicated().await;
    h.driver
        .fail("DisableVolumeReplication", Code::NotFound, "no such volume");
    delete_vr(&h).await;
    h.reconcile().await.unwrap();
    assert_eq!(h.calls(), ["Disable"]);
    assert!(h.vr().is_none());
}

#[tokio::test]
async fn a_failing_disable_holds_deletion_and_retries() {
    let h = replicated().await;
    h.driver.fail(
        "DisableVolumeReplication",
        Code::Unavailable,
        "driver restarting",
    );
    delete_vr(&h).await;
    let error = h.reconcile().await.unwrap_err();
    assert_eq!(error.retry(), Retry::Backoff);
    assert!(h.vr().is_some(), "kept until replication is disabled");
    assert!(claimed(&h.pvc().unwrap()));
    assert!(
        h.api
            .events()
            .iter()
            .any(|(ty, reason, _)| ty == "Warning" && reason == "FailedToDisable")
    );

    h.driver.clear_failures();
    h.reconcile().await.unwrap();
    assert!(h.vr().is_none());
}

#[tokio::test]
async fn a_replicated_pvc_cannot_be_deleted_before_its_volume_replication() {
    let h = replicated().await;
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(h.ctx.client.clone(), NS);
    pvcs.delete(PVC, &DeleteParams::default()).await.unwrap();
    let pvc = h.pvc().expect("held by the protection finalizer");
    assert!(pvc.metadata.deletion_timestamp.is_some());

    delete_vr(&h).await;
    h.reconcile().await.unwrap();
    assert_eq!(h.calls(), ["Disable"]);
    assert!(h.pvc().is_none(), "released, the deleting claim goes");
    assert!(h.vr().is_none());
}

#[tokio::test]
async fn a_volume_replication_whose_pvc_is_gone_still_deletes() {
    let h = replicated().await;
    h.api.remove::<PersistentVolumeClaim>(Some(NS), PVC);
    delete_vr(&h).await;
    h.reconcile().await.unwrap();
    assert!(h.calls().is_empty(), "nothing left to name on the driver");
    assert!(h.vr().is_none());
    assert!(
        h.api
            .events()
            .iter()
            .any(|(ty, reason, _)| ty == "Warning" && reason == "ReplicationNotDisabled")
    );
}

/// Without its class the controller cannot disable replication; letting go would leave it
/// enabled on the storage with nothing in the cluster saying so. Deletion waits, says why and
/// how to delete anyway, and goes once the user annotates it.
#[tokio::test]
async fn a_volume_replication_whose_class_is_gone_waits_until_the_user_abandons_it() {
    let h = replicated().await;
    h.api.remove::<VolumeReplicationClass>(None, "gold");
    delete_vr(&h).await;
    h.reconcile().await.unwrap();
    let held = h.vr().expect("kept: replication may still be enabled");
    assert!(claimed(&h.pvc().unwrap()));
    let conditions = held.status.unwrap().conditions;
    let blocked = conditions
        .iter()
        .find(|c| c.type_ == "Degraded" && c.message.starts_with("deletion waits"))
        .expect("a condition says why deletion waits");
    assert!(
        blocked
            .message
            .contains("replication.lifeline.dev/delete-without-disable=true"),
        "{}",
        blocked.message
    );
    assert!(
        h.api
            .events()
            .iter()
            .any(|(ty, reason, _)| ty == "Warning" && reason == "DeletionBlocked")
    );

    Api::<VolumeReplication>::namespaced(h.ctx.client.clone(), NS)
        .patch(
            VR,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"metadata": {"annotations": {
                "replication.lifeline.dev/delete-without-disable": "true"}}})),
        )
        .await
        .unwrap();
    h.reconcile().await.unwrap();
    assert!(h.vr().is_none(), "abandoned at the user's word");
    assert!(!claimed(&h.pvc().unwrap()));
    assert!(h.calls().is_empty(), "no driver was called");
}

#[tokio::test]
async fn deleting_a_refused_second_claimant_leaves_the_owners_claim() {
    let h = replicated().await;
    h.api.put::<VolumeReplication>(&support::yaml(&format!(
        "metadata: {{name: second, namespace: {NS}, finalizers: [replication.storage.openshift.io], deletionTimestamp: \"2026-01-01T00:00:00Z\"}}\nspec: {{volumeReplicationClass: gold, replicationState: primary, dataSource: {{kind: PersistentVolumeClaim, name: {PVC}}}}}"
    )));
    let second: VolumeReplication = h.api.get(Some(NS), "second").unwrap();
    lifeline_replication_controller::reconcile::reconcile(
        std::sync::Arc::new(second),
        h.ctx.clone(),
    )
    .await
    .unwrap();
    assert!(
        h.calls().is_empty(),
        "the owner's replication is not disabled"
    );
    assert!(claimed(&h.pvc().unwrap()), "the owner's claim stays");
    assert!(h.api.get::<VolumeReplication>(Some(NS), "second").is_none());
}
