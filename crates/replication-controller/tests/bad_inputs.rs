//! Every bad input of issue 5 ends in a condition and a Warning Event that say what is wrong
//! and how to fix it, with no driver call, no panic and no hot loop.

mod support;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Secret};
use lifeline_api::replication::{VolumeReplication, VolumeReplicationClass};
use lifeline_replication_controller::error::Retry;
use support::{DRIVER, Harness, Mode, NS, PVC, VR, class, yaml};

async fn expect_rejected(h: &Harness, category: &str, says: &str, retry: Retry) {
    let error = h
        .reconcile()
        .await
        .expect_err("a bad input fails the reconcile");
    assert_eq!(error.category(), category, "{error}");
    assert_eq!(error.retry(), retry, "{error}");
    assert!(h.calls().is_empty(), "no driver call on bad input");

    let (status, reason, message) = h.condition("Completed").expect("Completed condition");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "FailedToPromote")
    );
    assert!(
        message.contains(says),
        "condition says {message:?}, expected {says:?}"
    );
    let (status, reason, _) = h.condition("Validated").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "PrerequisiteNotMet")
    );
    let (status, reason, _) = h.condition("Degraded").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Error"));
    assert!(
        h.api
            .events()
            .iter()
            .any(|(ty, _, note)| ty == "Warning" && note.contains(says)),
        "no Warning Event saying {says:?}: {:?}",
        h.api.events()
    );

    // Reconciling again with nothing changed writes nothing new: no status churn.
    h.api.take_writes();
    let _ = h.reconcile().await.unwrap_err();
    assert!(
        h.api.take_writes().is_empty(),
        "an unchanged problem is not rewritten"
    );
}

async fn seeded() -> Harness {
    let h = Harness::new().await;
    h.seed("1m");
    h.put_vr("primary", "");
    h
}

#[tokio::test]
async fn class_missing() {
    let h = seeded().await;
    h.api.remove::<VolumeReplicationClass>(None, "gold");
    expect_rejected(
        &h,
        "class_missing",
        "VolumeReplicationClass \"gold\" not found; create it",
        Retry::AfterChange,
    )
    .await;
}

#[tokio::test]
async fn unknown_reserved_parameter() {
    let h = seeded().await;
    h.api.put(&class(
        "replication.storage.openshift.io/replication-secret: x",
    ));
    expect_rejected(
        &h,
        "invalid_parameters",
        "\"replication.storage.openshift.io/replication-secret\" is not a known key",
        Retry::AfterChange,
    )
    .await;
}

#[tokio::test]
async fn empty_secret_name_or_namespace() {
    for (key, name, namespace) in [("name", "\"\"", "n"), ("namespace", "s", "\"\"")] {
        let h = seeded().await;
        h.api.put(&class(&format!(
            "replication.storage.openshift.io/replication-secret-name: {name}\n    replication.storage.openshift.io/replication-secret-namespace: {namespace}"
        )));
        expect_rejected(
            &h,
            "invalid_parameters",
            &format!("secret {key} cannot be empty"),
            Retry::AfterChange,
        )
        .await;
    }
}

#[tokio::test]
async fn secret_missing() {
    let h = seeded().await;
    h.api.remove::<Secret>(Some("storage"), "mirror");
    expect_rejected(
        &h,
        "secret_invalid",
        "Secret storage/mirror named by VolumeReplicationClass \"gold\" not found",
        Retry::AfterChange,
    )
    .await;
}

#[tokio::test]
async fn pvc_missing() {
    let h = seeded().await;
    h.api.remove::<PersistentVolumeClaim>(Some(NS), PVC);
    expect_rejected(
        &h,
        "pvc_missing",
        "PersistentVolumeClaim shop/db-data not found",
        Retry::AfterChange,
    )
    .await;
}

#[tokio::test]
async fn pvc_not_bound() {
    let h = seeded().await;
    h.api.put::<PersistentVolumeClaim>(&yaml(
        "metadata: {name: db-data, namespace: shop}\nstatus: {phase: Pending}",
    ));
    expect_rejected(
        &h,
        "pvc_not_bound",
        "is Pending, not Bound",
        Retry::AfterChange,
    )
    .await;
}

#[tokio::test]
async fn pvc_being_deleted() {
    let h = seeded().await;
    h.api.put::<PersistentVolumeClaim>(&yaml(
        "metadata: {name: db-data, namespace: shop, deletionTimestamp: \"2026-01-01T00:00:00Z\", finalizers: [kubernetes.io/pvc-protection]}\nspec: {volumeName: pv-1}\nstatus: {phase: Bound}",
    ));
    expect_rejected(&h, "pvc_deleting", "is being deleted", Retry::AfterChange).await;
}

#[tokio::test]
async fn pv_not_csi() {
    let h = seeded().await;
    h.api.put::<PersistentVolume>(&yaml(
        "metadata: {name: pv-1}\nspec: {hostPath: {path: /data}}",
    ));
    expect_rejected(
        &h,
        "pv_invalid",
        "PersistentVolume \"pv-1\" is not a CSI volume",
        Retry::AfterChange,
    )
    .await;
}

#[tokio::test]
async fn pv_of_another_driver() {
    let h = seeded().await;
    h.api.put::<PersistentVolume>(&yaml(
        "metadata: {name: pv-1}\nspec: {csi: {driver: other.csi.example.com, volumeHandle: v}}",
    ));
    expect_rejected(
        &h,
        "driver_mismatch",
        "belongs to CSI driver \"other.csi.example.com\"",
        Retry::AfterChange,
    )
    .await;
}

#[tokio::test]
async fn unsupported_data_source_kind() {
    let h = seeded().await;
    h.api.put::<VolumeReplication>(&yaml(&format!(
        "metadata: {{name: {VR}, namespace: {NS}}}\nspec: {{volumeReplicationClass: gold, replicationState: primary, dataSource: {{apiGroup: snapshot.storage.k8s.io, kind: VolumeSnapshot, name: snap}}}}"
    )));
    expect_rejected(
        &h,
        "unsupported_data_source",
        "kind \"VolumeSnapshot\"",
        Retry::AfterChange,
    )
    .await;
}

#[tokio::test]
async fn driver_not_configured_in_central_mode() {
    let h = Harness::with_mode(Mode::Central(&["other.csi.example.com"])).await;
    h.seed("1m");
    h.put_vr("primary", "");
    expect_rejected(
        &h,
        "driver_not_configured",
        &format!("--driver-endpoint {DRIVER}=URI"),
        Retry::AfterChange,
    )
    .await;
}

#[tokio::test]
async fn driver_unreachable_is_retried_with_backoff() {
    let h = Harness::with_mode(Mode::Unreachable).await;
    h.seed("1m");
    h.put_vr("primary", "");
    expect_rejected(&h, "driver_unreachable", "is unreachable", Retry::Backoff).await;
}

#[tokio::test]
async fn driver_without_volume_replication_capability() {
    let h = seeded().await;
    h.driver.set_capabilities(false, false);
    expect_rejected(
        &h,
        "driver_not_capable",
        "does not advertise the VOLUME_REPLICATION capability",
        Retry::AfterChange,
    )
    .await;
}

#[tokio::test]
async fn sidecar_mode_leaves_other_drivers_volume_replications_alone() {
    let h = seeded().await;
    let mut other = class("");
    other.spec.provisioner = "other.csi.example.com".into();
    h.api.put(&other);
    assert_eq!(
        h.reconcile().await.unwrap(),
        kube::runtime::controller::Action::await_change()
    );
    assert!(h.calls().is_empty());
    assert!(
        h.api.take_writes().is_empty(),
        "another controller's object is not touched"
    );
}

#[tokio::test]
async fn fixing_the_input_recovers_without_manual_help() {
    let h = seeded().await;
    h.api.remove::<Secret>(Some("storage"), "mirror");
    h.reconcile().await.unwrap_err();
    h.api.put::<Secret>(&yaml(
        "metadata: {name: mirror, namespace: storage}\nstringData: {token: t}",
    ));
    h.reconcile().await.unwrap();
    assert_eq!(h.calls(), ["Enable", "Promote()", "Info"]);
    assert_eq!(
        h.condition("Validated").map(|c| (c.0, c.1)),
        Some(("True".into(), "PrerequisiteMet".into())),
        "a stale PrerequisiteNotMet does not outlive the fix"
    );
    assert_eq!(h.condition("Completed").unwrap().1, "Promoted");
}
