//! The VolumeGroupReplication reconcile against an in-memory API and the fake driver: the group
//! created from the selected claims, members protected, the content and the group's
//! VolumeReplication made; a member labelled in or out changes the driver's group; bad inputs
//! end in a condition saying what to fix; deletion undone in order.

mod support;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use lifeline_api::replication::{
    VGR_OWNER_ANNOTATION, VGR_PVC_FINALIZER, VolumeGroupReplication, VolumeGroupReplicationClass,
    VolumeGroupReplicationContent, VolumeReplication,
};
use lifeline_csi_client::fake::Received;
use lifeline_replication_controller::error::Retry;
use lifeline_replication_controller::group::reconcile::reconcile;
use support::{DRIVER, Harness, NS, yaml};

fn claim(h: &Harness, name: &str, labelled: bool) {
    let labels = if labelled { "{vm: a}" } else { "{}" };
    h.api.put::<PersistentVolumeClaim>(&yaml(&format!(
        "metadata: {{name: {name}, namespace: {NS}, labels: {labels}}}\nspec: {{volumeName: pv-{name}}}\nstatus: {{phase: Bound}}"
    )));
    h.api.put::<PersistentVolume>(&yaml(&format!(
        "metadata: {{name: pv-{name}}}\nspec: {{csi: {{driver: {DRIVER}, volumeHandle: vol-{name}}}}}"
    )));
}

fn relabel(h: &Harness, name: &str, labelled: bool) {
    let mut c: PersistentVolumeClaim = h.api.get(Some(NS), name).unwrap();
    c.metadata.labels = labelled.then(|| [("vm".to_owned(), "a".to_owned())].into());
    h.api.put(&c);
}

fn seed(h: &Harness, selector: &str) {
    h.seed("1m");
    h.driver.set_group_capability(true);
    h.api.put::<VolumeGroupReplicationClass>(&yaml(&format!(
        "metadata: {{name: groups}}\nspec: {{provisioner: {DRIVER}}}"
    )));
    h.api.put::<VolumeGroupReplication>(&yaml(&format!(
        "metadata: {{name: vm, namespace: {NS}, uid: u-vm, generation: 1}}\nspec: {{volumeGroupReplicationClassName: groups, volumeReplicationClassName: gold, replicationState: primary, autoResync: false, source: {{selector: {selector}}}}}"
    )));
}

fn vgr(h: &Harness) -> VolumeGroupReplication {
    h.api.get(Some(NS), "vm").unwrap()
}

async fn reconcile_once(
    h: &Harness,
) -> Result<kube::runtime::controller::Action, lifeline_replication_controller::Error> {
    reconcile(Arc::new(vgr(h)), Arc::clone(&h.ctx)).await
}

fn protected(h: &Harness, name: &str) -> bool {
    let c: PersistentVolumeClaim = h.api.get(Some(NS), name).unwrap();
    c.metadata
        .finalizers
        .unwrap_or_default()
        .contains(&VGR_PVC_FINALIZER.to_owned())
        && c.metadata
            .annotations
            .unwrap_or_default()
            .get(VGR_OWNER_ANNOTATION)
            == Some(&"vm".to_owned())
}

fn group_calls(h: &Harness) -> Vec<(String, Vec<String>)> {
    let calls = h
        .driver
        .received()
        .into_iter()
        .filter_map(|r| match r {
            Received::CreateGroup(c) => Some(("create".into(), c.volume_ids)),
            Received::ModifyGroup(m) => Some(("modify".into(), m.volume_ids)),
            Received::DeleteGroup(d) => Some(("delete".into(), vec![d.volume_group_id])),
            _ => None,
        })
        .collect();
    h.driver.clear_received();
    calls
}

#[tokio::test]
async fn the_group_follows_its_labels_and_is_undone_in_order() {
    let h = Harness::new().await;
    seed(&h, "{matchLabels: {vm: a}}");
    claim(&h, "boot", true);
    claim(&h, "data", true);
    claim(&h, "scratch", false);

    reconcile_once(&h).await.unwrap();
    assert_eq!(
        group_calls(&h),
        [(
            "create".to_owned(),
            vec!["vol-boot".to_owned(), "vol-data".to_owned()]
        )]
    );
    assert!(protected(&h, "boot") && protected(&h, "data") && !protected(&h, "scratch"));
    let content: VolumeGroupReplicationContent = h.api.get(None, "vgrcontent-shop-vm").unwrap();
    assert_eq!(
        content.spec.volume_group_replication_handle.as_deref(),
        Some("group-shop-vm")
    );
    assert_eq!(content.spec.source.volume_handles, ["vol-boot", "vol-data"]);
    assert_eq!(
        vgr(&h)
            .spec
            .volume_group_replication_content_name
            .as_deref(),
        Some("vgrcontent-shop-vm")
    );
    let vr: VolumeReplication = h.api.get(Some(NS), "vm").unwrap();
    assert_eq!(vr.spec.data_source.kind, "VolumeGroupReplication");
    assert_eq!(vr.spec.replication_state.as_str(), "primary");
    assert_eq!(vr.spec.volume_replication_class, "gold");
    let status = vgr(&h).status.unwrap();
    assert_eq!(status.persistent_volume_claims_ref_list.len(), 2);

    // Unchanged: no driver call, nothing rewritten but the status it already has.
    reconcile_once(&h).await.unwrap();
    assert!(group_calls(&h).is_empty());

    // scratch labelled in, boot out: one membership change each way, boot released.
    relabel(&h, "scratch", true);
    reconcile_once(&h).await.unwrap();
    assert_eq!(
        group_calls(&h),
        [(
            "modify".to_owned(),
            vec![
                "vol-boot".to_owned(),
                "vol-data".to_owned(),
                "vol-scratch".to_owned()
            ]
        )]
    );
    relabel(&h, "boot", false);
    reconcile_once(&h).await.unwrap();
    assert_eq!(
        group_calls(&h),
        [(
            "modify".to_owned(),
            vec!["vol-data".to_owned(), "vol-scratch".to_owned()]
        )]
    );
    assert!(!protected(&h, "boot") && protected(&h, "scratch"));
    let content: VolumeGroupReplicationContent = h.api.get(None, "vgrcontent-shop-vm").unwrap();
    assert_eq!(
        content.spec.source.volume_handles,
        ["vol-data", "vol-scratch"]
    );

    // The group's role follows to its VolumeReplication.
    let mut g = vgr(&h);
    g.spec.replication_state = lifeline_api::replication::ReplicationState::Secondary;
    h.api.put(&g);
    reconcile_once(&h).await.unwrap();
    let vr: VolumeReplication = h.api.get(Some(NS), "vm").unwrap();
    assert_eq!(vr.spec.replication_state.as_str(), "secondary");

    // Deletion: first the VolumeReplication, then the driver's group, the content, the claims.
    let mut g = vgr(&h);
    g.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
    ));
    h.api.put(&g);
    reconcile_once(&h).await.unwrap();
    assert!(h.api.get::<VolumeReplication>(Some(NS), "vm").is_none());
    assert!(
        group_calls(&h).is_empty(),
        "the group stays until its replication is gone"
    );
    reconcile_once(&h).await.unwrap();
    assert_eq!(
        group_calls(&h),
        [("delete".to_owned(), vec!["group-shop-vm".to_owned()])]
    );
    assert!(
        h.api
            .get::<VolumeGroupReplicationContent>(None, "vgrcontent-shop-vm")
            .is_none()
    );
    assert!(!protected(&h, "data") && !protected(&h, "scratch"));
    // Its finalizer gone, the group itself goes.
    assert!(
        h.api
            .get::<VolumeGroupReplication>(Some(NS), "vm")
            .is_none_or(|g| g.metadata.finalizers.unwrap_or_default().is_empty())
    );
}

#[tokio::test]
async fn bad_group_inputs_end_in_a_condition_that_says_what_to_fix() {
    let cases: [(&str, &str, &str); 4] = [
        (
            "{matchExpressions: [{key: vm, operator: Equals, values: [a]}]}",
            "invalid_selector",
            "unknown operator",
        ),
        (
            "{matchLabels: {vm: nobody}}",
            "no_members",
            "selects no PersistentVolumeClaim",
        ),
        ("{matchLabels: {vm: a}}", "invalid_member", "not Bound"),
        (
            "{matchLabels: {vm: other-driver}}",
            "invalid_member",
            "the class's provisioner",
        ),
    ];
    for (selector, category, says) in cases {
        let h = Harness::new().await;
        seed(&h, selector);
        claim(&h, "boot", true);
        h.api.put::<PersistentVolumeClaim>(&yaml(&format!(
            "metadata: {{name: pending, namespace: {NS}, labels: {{vm: a}}}}\nstatus: {{phase: Pending}}"
        )));
        h.api.put::<PersistentVolumeClaim>(&yaml(&format!(
            "metadata: {{name: foreign, namespace: {NS}, labels: {{vm: other-driver}}}}\nspec: {{volumeName: pv-foreign}}\nstatus: {{phase: Bound}}"
        )));
        h.api.put::<PersistentVolume>(&yaml(
            "metadata: {name: pv-foreign}\nspec: {csi: {driver: other.csi, volumeHandle: v}}",
        ));
        let error = reconcile_once(&h).await.unwrap_err();
        assert_eq!(error.category(), category, "{selector}: {error}");
        assert_eq!(error.retry(), Retry::AfterChange);
        let status = vgr(&h).status.unwrap();
        let validated = status
            .replication
            .conditions
            .iter()
            .find(|c| c.type_ == "Validated")
            .unwrap();
        assert_eq!(validated.status, "False");
        assert!(
            validated.message.contains(says),
            "{selector}: {}",
            validated.message
        );
        assert!(group_calls(&h).is_empty(), "nothing sent to the driver");
    }

    // A driver without the group capability, and a group without a replication class.
    let h = Harness::new().await;
    seed(&h, "{matchLabels: {vm: a}}");
    claim(&h, "boot", true);
    h.driver.set_group_capability(false);
    let error = reconcile_once(&h).await.unwrap_err();
    assert_eq!(error.category(), "driver_not_capable", "{error}");
    let mut g = vgr(&h);
    g.spec.volume_replication_class_name = None;
    h.api.put(&g);
    let error = reconcile_once(&h).await.unwrap_err();
    assert_eq!(error.category(), "no_replication_class", "{error}");
}
