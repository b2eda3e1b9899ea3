//! Reconcile tests: the real reconcile function against an in-memory API and a fake driver
//! on a Unix socket. Each test names the behaviour of issue 5 it pins down.

mod support;

use std::time::Duration;

use kube::runtime::controller::Action;
use lifeline_api::replication::{CurrentState, PVC_FINALIZER, PVC_OWNER_ANNOTATION, VR_FINALIZER};
use lifeline_csi_client::fake::Received;
use lifeline_csi_client::proto::replication as pb;
use lifeline_replication_controller::error::Retry;
use support::{Harness, NS, RESYNC_POLL, SECRET_VALUE, VR, yaml};
use tonic::Code;

fn t(s: &str, r: &str, m: &str) -> Option<(String, String, String)> {
    Some((s.into(), r.into(), m.into()))
}

fn healthy_info() -> pb::GetVolumeReplicationInfoResponse {
    pb::GetVolumeReplicationInfoResponse {
        last_sync_time: Some(prost_types::Timestamp {
            seconds: 1_772_445_600,
            nanos: 0,
        }),
        last_sync_duration: Some(prost_types::Duration {
            seconds: 42,
            nanos: 0,
        }),
        last_sync_bytes: 1024,
        status: pb::get_volume_replication_info_response::Status::Healthy as i32,
        status_message: String::new(),
    }
}

#[tokio::test]
async fn fresh_primary_costs_finalizers_one_status_write_and_three_calls() {
    let h = Harness::new().await;
    h.seed("1m");
    h.driver.set_info(healthy_info());
    h.put_vr("primary", "  replicationHandle: mirror-7f3a");

    let action = h.reconcile().await.unwrap();
    // schedulingInterval under 2 minutes: refresh at the interval itself.
    assert_eq!(action, Action::requeue(Duration::from_secs(60)));
    assert_eq!(h.calls(), ["Enable", "Promote()", "Info"]);
    assert_eq!(
        h.api.take_writes(),
        [
            "PATCH /apis/replication.storage.openshift.io/v1alpha1/namespaces/shop/volumereplications/db-replication",
            "PATCH /api/v1/namespaces/shop/persistentvolumeclaims/db-data",
            "PATCH /apis/replication.storage.openshift.io/v1alpha1/namespaces/shop/volumereplications/db-replication/status",
        ]
    );

    let vr = h.vr().unwrap();
    assert!(
        vr.metadata
            .finalizers
            .unwrap()
            .contains(&VR_FINALIZER.to_owned())
    );
    let status = vr.status.unwrap();
    assert_eq!(status.state(), Some(CurrentState::Primary));
    assert_eq!(status.message.as_deref(), Some("volume is marked primary"));
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(status.last_sync_duration.as_deref(), Some("42s"));
    assert_eq!(status.last_sync_bytes, Some(1024));
    assert_eq!(
        h.condition("Completed"),
        t(
            "True",
            "Promoted",
            "volume is promoted to primary and replicating to secondary"
        )
    );
    assert_eq!(
        h.condition("Degraded"),
        t("False", "Healthy", "volume is healthy")
    );
    assert_eq!(
        h.condition("Resyncing"),
        t("False", "NotResyncing", "volume is not resyncing")
    );
    assert_eq!(
        h.condition("Replicating"),
        t("True", "Replicating", "volume is replicating")
    );

    let pvc = h.pvc().unwrap();
    assert!(
        pvc.metadata
            .finalizers
            .unwrap()
            .contains(&PVC_FINALIZER.to_owned())
    );
    assert_eq!(
        pvc.metadata
            .annotations
            .unwrap()
            .get(PVC_OWNER_ANNOTATION)
            .map(String::as_str),
        Some(VR)
    );
    assert!(
        h.api
            .events()
            .iter()
            .any(|(ty, reason, _)| ty == "Normal" && reason == "Promoted")
    );

    // Steady state: nothing is due, so no call and no write.
    let action = h.reconcile().await.unwrap();
    assert!(matches!(action, a if a != Action::await_change()));
    assert!(h.calls().is_empty());
    assert!(h.api.take_writes().is_empty());
}

#[tokio::test]
async fn what_goes_on_the_wire_names_the_volume_secret_handle_and_driver_parameters() {
    let h = Harness::new().await;
    h.seed("1m");
    h.put_vr("primary", "  replicationHandle: mirror-7f3a");
    h.reconcile().await.unwrap();
    let Some(Received::Enable(enable)) = h.driver.received().into_iter().next() else {
        panic!("Enable first");
    };
    assert_eq!(enable.volume_id, "vol-1");
    assert_eq!(enable.replication_id, "mirror-7f3a");
    assert_eq!(
        enable.secrets.get("token").map(String::as_str),
        Some(SECRET_VALUE)
    );
    assert_eq!(
        enable.parameters.keys().collect::<Vec<_>>(),
        ["mirroringMode", "schedulingInterval"],
        "reserved keys are never sent to the driver"
    );
}

#[tokio::test]
async fn promote_refused_with_failed_precondition_is_forced_once() {
    let h = Harness::new().await;
    h.seed("1m");
    h.driver.fail_times(
        "PromoteVolume",
        Code::FailedPrecondition,
        "peer unreachable",
        1,
    );
    h.put_vr("primary", "");
    h.reconcile().await.unwrap();
    assert_eq!(h.calls(), ["Enable", "Promote()", "Promote(force)", "Info"]);
    assert_eq!(
        h.vr().unwrap().status.unwrap().state(),
        Some(CurrentState::Primary)
    );
    assert!(
        h.api
            .events()
            .iter()
            .any(|(ty, reason, _)| ty == "Warning" && reason == "ForcePromoted")
    );
}

#[tokio::test]
async fn forced_promote_failing_too_is_reported_and_backs_off() {
    let h = Harness::new().await;
    h.seed("1m");
    h.driver
        .fail("PromoteVolume", Code::FailedPrecondition, "not replicated");
    h.put_vr("primary", "");
    let error = h.reconcile().await.unwrap_err();
    assert_eq!(h.calls(), ["Enable", "Promote()", "Promote(force)"]);
    assert_eq!(error.retry(), Retry::Backoff);
    assert_eq!(
        h.condition("Completed"),
        t("False", "FailedToPromote", "volume failed to promote")
    );
    assert_eq!(
        h.condition("Degraded"),
        t("True", "Error", "volume is degraded")
    );
}

#[tokio::test]
async fn enable_prerequisite_not_met_sets_validated_false() {
    let h = Harness::new().await;
    h.seed("1m");
    h.driver.fail(
        "EnableVolumeReplication",
        Code::FailedPrecondition,
        "pool not mirrored",
    );
    h.put_vr("primary", "");
    h.reconcile().await.unwrap_err();
    assert_eq!(h.calls(), ["Enable"]);
    assert_eq!(
        h.condition("Validated"),
        t(
            "False",
            "PrerequisiteNotMet",
            "volume failed to meet prerequisite"
        )
    );
    assert!(
        h.vr()
            .unwrap()
            .status
            .unwrap()
            .message
            .unwrap()
            .contains("pool not mirrored")
    );
}

#[tokio::test]
async fn secondary_with_auto_resync_forces_resync_and_polls_until_ready() {
    let h = Harness::new().await;
    h.seed("1m");
    h.put_vr("secondary", "  autoResync: true");
    let action = h.reconcile().await.unwrap();
    assert_eq!(action, Action::requeue(RESYNC_POLL));
    // A volume never replicated here is enabled first, then demoted.
    assert_eq!(h.calls(), ["Enable", "Demote()", "Resync(force)"]);
    assert_eq!(
        h.condition("Resyncing"),
        t(
            "True",
            "ResyncTriggered",
            "volume is resyncing changes from primary to secondary"
        )
    );
    assert_eq!(
        h.condition("Completed"),
        t("True", "Demoted", "volume is demoted to secondary")
    );
    assert_eq!(
        h.vr().unwrap().status.unwrap().message.as_deref(),
        Some("volume is marked secondary")
    );

    h.driver.set_resync_ready(true);
    h.driver.set_info(healthy_info());
    let action = h.reconcile().await.unwrap();
    assert_eq!(
        action,
        Action::requeue(Duration::from_secs(60)),
        "a ready secondary refreshes the facts of the sync it received"
    );
    assert_eq!(
        h.calls(),
        ["Resync(force)", "Info"],
        "already demoted: only the resync is asked again, then what it received"
    );
    assert_eq!(
        h.condition("SyncReceived"),
        t(
            "True",
            "SyncReceived",
            "volume received the sync the status reports: lastSyncTime is when the primary captured the data this site now holds"
        )
    );
    assert!(h.vr().unwrap().status.unwrap().last_sync_time.is_some());
    assert_eq!(
        h.condition("Degraded"),
        t("False", "Healthy", "volume is healthy")
    );
    assert_eq!(
        h.condition("Resyncing"),
        t("False", "NotResyncing", "volume is not resyncing")
    );

    h.reconcile().await.unwrap();
    assert!(h.calls().is_empty(), "an in-sync secondary needs no call");
}

#[tokio::test]
async fn a_secondary_whose_driver_reports_no_received_sync_says_the_data_age_is_unknown() {
    let h = Harness::new().await;
    h.seed("1m");
    h.driver.set_resync_ready(true);
    h.driver.fail(
        "GetVolumeReplicationInfo",
        Code::FailedPrecondition,
        "not primary",
    );
    h.put_vr("secondary", "");
    let action = h.reconcile().await.unwrap();
    assert_eq!(
        action,
        Action::requeue(Duration::from_secs(60)),
        "a normal answer on a secondary: no error, no backoff"
    );
    assert_eq!(h.calls(), ["Enable", "Demote()", "Resync()", "Info"]);
    let (status, reason, _) = h.condition("SyncReceived").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "SyncInfoNotOffered")
    );
    let vr_status = h.vr().unwrap().status.unwrap();
    assert!(vr_status.last_sync_time.is_none());
    assert_eq!(
        h.condition("Degraded"),
        t("False", "Healthy", "volume is healthy")
    );
}

#[tokio::test]
async fn sync_facts_moving_less_than_a_refresh_cost_no_status_write() {
    let h = Harness::new().await;
    h.seed("1m");
    h.driver.set_info(healthy_info());
    h.put_vr("primary", "");
    h.reconcile().await.unwrap();
    h.api.take_writes();
    let moved = |seconds: i64| {
        let mut info = healthy_info();
        info.last_sync_time = Some(prost_types::Timestamp {
            seconds: 1_772_445_600 + seconds,
            nanos: 0,
        });
        info
    };
    // Due again (the refresh is what the requeue waits for).
    h.ctx.forget(&h.vr().unwrap().metadata.uid.unwrap());
    h.driver.set_info(moved(30));
    h.reconcile().await.unwrap();
    assert_eq!(h.calls().last().map(String::as_str), Some("Info"));
    assert!(
        h.api.take_writes().is_empty(),
        "30 s newer with a 60 s refresh: the gauges have it, the status waits"
    );
    h.ctx.forget(&h.vr().unwrap().metadata.uid.unwrap());
    h.driver.set_info(moved(90));
    h.reconcile().await.unwrap();
    let writes = h.api.take_writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    let time = h.vr().unwrap().status.unwrap().last_sync_time.unwrap();
    assert_eq!(time.0.as_second(), 1_772_445_600 + 90);
}

#[tokio::test]
async fn secondary_without_auto_resync_does_not_force() {
    let h = Harness::new().await;
    h.seed("1m");
    h.put_vr("secondary", "");
    h.reconcile().await.unwrap();
    assert_eq!(h.calls(), ["Enable", "Demote()", "Resync()"]);
    assert_eq!(
        h.condition("Degraded"),
        t("True", "VolumeDegraded", "volume is degraded")
    );
    assert_eq!(
        h.condition("Resyncing"),
        t("False", "NotResyncing", "volume is not resyncing")
    );
}

#[tokio::test]
async fn resync_state_forces_resync_until_ready() {
    let h = Harness::new().await;
    h.seed("1m");
    h.put_vr("resync", "");
    assert_eq!(h.reconcile().await.unwrap(), Action::requeue(RESYNC_POLL));
    assert_eq!(h.calls(), ["Enable", "Resync(force)"]);
    assert_eq!(
        h.vr().unwrap().status.unwrap().message.as_deref(),
        Some("volume is marked for resyncing")
    );
    h.driver.set_resync_ready(true);
    assert_eq!(
        h.reconcile().await.unwrap(),
        Action::requeue(Duration::from_secs(60))
    );
    assert_eq!(h.calls(), ["Resync(force)", "Info"]);
    h.reconcile().await.unwrap();
    assert!(h.calls().is_empty());
}

#[tokio::test]
async fn requeue_follows_the_scheduling_interval_and_one_day_means_a_day() {
    // Under 2 minutes: the interval itself; otherwise half of it (with no --info-refresh
    // ceiling below that).
    for (interval, requeue) in [("1d", 43_200), ("30m", 900), ("2m", 60), ("1m", 60)] {
        let h = Harness::with_info_refresh(Duration::from_secs(365 * 86_400)).await;
        h.seed(interval);
        h.put_vr("primary", "");
        assert_eq!(
            h.reconcile().await.unwrap(),
            Action::requeue(Duration::from_secs(requeue)),
            "{interval}"
        );
    }
}

#[tokio::test]
async fn info_refresh_is_capped_by_the_info_refresh_ceiling() {
    // --info-refresh (default 1m) bounds how stale the reported data age can be.
    for (ceiling, interval, requeue) in [(60, "1d", 60), (120, "1m", 60), (5, "1m", 5)] {
        let h = Harness::with_info_refresh(Duration::from_secs(ceiling)).await;
        h.seed(interval);
        h.put_vr("primary", "");
        assert_eq!(
            h.reconcile().await.unwrap(),
            Action::requeue(Duration::from_secs(requeue)),
            "{ceiling}s ceiling, {interval} interval"
        );
    }
}

#[tokio::test]
async fn info_unimplemented_is_never_asked_again_and_not_found_means_no_info_yet() {
    let h = Harness::new().await;
    h.seed("1m");
    h.driver
        .fail("GetVolumeReplicationInfo", Code::Unimplemented, "no");
    h.put_vr("primary", "");
    assert_eq!(h.reconcile().await.unwrap(), Action::await_change());
    assert_eq!(h.calls(), ["Enable", "Promote()", "Info"]);
    h.ctx.forget(&h.vr().unwrap().metadata.uid.unwrap());
    h.reconcile().await.unwrap();
    assert!(h.calls().is_empty(), "UNIMPLEMENTED stops polling for good");
    assert_eq!(h.condition("Replicating"), None);

    let h = Harness::new().await;
    h.seed("1m");
    h.driver
        .fail("GetVolumeReplicationInfo", Code::NotFound, "no sync yet");
    h.put_vr("primary", "");
    // No info yet: asked again soon, not after the whole interval.
    assert_eq!(
        h.reconcile().await.unwrap(),
        Action::requeue(lifeline_replication_controller::reconcile::NO_INFO_YET_RETRY)
    );
    assert_eq!(h.condition("Replicating"), None);
    assert_eq!(
        h.vr().unwrap().status.unwrap().state(),
        Some(CurrentState::Primary)
    );
}

#[tokio::test]
async fn destination_info_is_recorded_when_the_driver_advertises_it() {
    let h = Harness::new().await;
    h.seed("1m");
    h.driver.set_capabilities(true, true);
    h.driver
        .set_destination(pb::GetReplicationDestinationInfoResponse {
            replication_destination: Some(pb::ReplicationDestination {
                r#type: Some(pb::replication_destination::Type::Volume(
                    pb::replication_destination::VolumeDestination {
                        volume_id: "peer-vol-1".into(),
                    },
                )),
            }),
        });
    h.put_vr("primary", "");
    h.reconcile().await.unwrap();
    assert_eq!(h.calls(), ["Enable", "Promote()", "Info", "DestInfo"]);
    assert_eq!(
        h.vr()
            .unwrap()
            .status
            .unwrap()
            .destination_volume_id
            .as_deref(),
        Some("peer-vol-1")
    );
    assert_eq!(
        h.condition("DestinationInfoAvailable"),
        t(
            "True",
            "DestinationInfoUpdated",
            "volume destination info is available"
        )
    );
}

#[tokio::test]
async fn retryable_driver_errors_back_off_with_jitter_and_permanent_ones_wait() {
    let h = Harness::new().await;
    h.seed("1m");
    h.put_vr("primary", "");
    h.driver.fail(
        "EnableVolumeReplication",
        Code::Aborted,
        "operation pending",
    );
    let error = h.reconcile().await.unwrap_err();
    assert_eq!(error.retry(), Retry::Backoff);
    assert_eq!(error.category(), "rpc_retryable");
    // Jittered in [step/2, step] over 1s, 2s, 4s steps.
    for (low, high) in [(500, 1000), (1000, 2000), (2000, 4000)] {
        let ms = h.retry_after(&error).as_millis();
        assert!((low..=high).contains(&ms), "{ms} not in {low}..={high}");
    }
    assert_ne!(h.error_policy(&error), Action::await_change());

    h.driver.fail(
        "EnableVolumeReplication",
        Code::Unauthenticated,
        "bad credentials",
    );
    let error = h.reconcile().await.unwrap_err();
    assert_eq!(error.retry(), Retry::AfterChange);
    assert_eq!(h.retry_after(&error), Duration::from_secs(300));

    // Success resets the backoff.
    h.driver.clear_failures();
    h.reconcile().await.unwrap();
    let retry = lifeline_replication_controller::Error::Csi(lifeline_csi_client::CsiError {
        method: lifeline_csi_client::Method::PromoteVolume,
        code: Code::Aborted,
        message: "x".into(),
    });
    assert!(h.retry_after(&retry) <= Duration::from_secs(1));
}

#[tokio::test]
async fn a_second_volume_replication_cannot_claim_the_same_pvc() {
    let h = Harness::new().await;
    h.seed("1m");
    h.put_vr("primary", "");
    h.reconcile().await.unwrap();
    h.calls();
    h.api.put::<lifeline_api::replication::VolumeReplication>(&yaml(&format!(
        "metadata: {{name: second, namespace: {NS}}}\nspec: {{volumeReplicationClass: gold, replicationState: primary, dataSource: {{kind: PersistentVolumeClaim, name: db-data}}}}"
    )));
    let second: lifeline_api::replication::VolumeReplication =
        h.api.get(Some(NS), "second").unwrap();
    let error = lifeline_replication_controller::reconcile::reconcile(
        std::sync::Arc::new(second),
        h.ctx.clone(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.category(), "pvc_claimed");
    assert!(h.calls().is_empty());
    let second: lifeline_api::replication::VolumeReplication =
        h.api.get(Some(NS), "second").unwrap();
    let completed = second
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Completed")
        .unwrap();
    assert!(
        completed
            .message
            .contains("already replicated by VolumeReplication \"db-replication\""),
        "{}",
        completed.message
    );
}

/// A secondary with no primary anywhere (the driver keeps answering Resync with the same
/// UNAVAILABLE) is a stable waiting state: the status is written once, one Warning Event is
/// emitted, and the controller backs off instead of polling.
#[tokio::test]
async fn a_secondary_with_nothing_to_resync_from_settles_instead_of_churning() {
    let h = Harness::new().await;
    h.seed("1m");
    h.driver.fail(
        "ResyncVolume",
        tonic::Code::Unavailable,
        "resync of volume vol-1 failed: volume vol-1 is not primary at the peer site",
    );
    h.put_vr("secondary", "");
    let first = h.reconcile().await.unwrap_err();
    let status_writes = |writes: Vec<String>| {
        writes
            .into_iter()
            .filter(|w| w.ends_with("/status"))
            .count()
    };
    assert_eq!(status_writes(h.api.take_writes()), 1);
    let message = h.vr().unwrap().status.unwrap().message.unwrap();
    assert!(
        message.contains("not primary at the peer site"),
        "{message}"
    );
    assert_eq!(h.calls(), ["Enable", "Demote()", "Resync()"]);
    let mut delays = vec![h.retry_after(&first)];
    for _ in 0..4 {
        let again = h.reconcile().await.unwrap_err();
        // Demoted already: only the resync is tried again.
        assert_eq!(h.calls(), ["Resync()"]);
        delays.push(h.retry_after(&again));
    }
    assert_eq!(status_writes(h.api.take_writes()), 0, "no status churn");
    assert_eq!(h.vr().unwrap().status.unwrap().message.unwrap(), message);
    let warnings: Vec<_> = h
        .api
        .events()
        .into_iter()
        .filter(|(ty, _, _)| ty == "Warning")
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        delays.windows(2).all(|w| w[1] >= w[0]) && delays.last() > delays.first(),
        "backs off: {delays:?}"
    );
}

#[tokio::test]
async fn a_vr_of_a_group_replicates_the_drivers_group_and_leaves_the_claims_to_it() {
    use lifeline_api::replication::{
        VolumeGroupReplication, VolumeGroupReplicationContent, VolumeReplication,
    };
    use pb::replication_source::{Type, VolumeGroupSource};
    let h = Harness::new().await;
    h.seed("1m");
    h.driver.set_info(healthy_info());
    let group_vr = format!(
        "metadata: {{name: {VR}, namespace: {NS}}}\nspec: {{volumeReplicationClass: gold, replicationState: primary, dataSource: {{apiGroup: replication.storage.openshift.io, kind: VolumeGroupReplication, name: vm}}}}"
    );
    h.api.put::<VolumeReplication>(&yaml(&group_vr));

    // No VolumeGroupReplication yet: said so, in the status, and nothing sent to the driver.
    let error = h.reconcile().await.unwrap_err();
    assert_eq!(error.category(), "group_missing");
    assert_eq!(error.retry(), Retry::AfterChange);
    assert!(h.calls().is_empty());
    let (status, reason, message) = h.condition("Validated").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "PrerequisiteNotMet")
    );
    assert!(
        message.contains("VolumeGroupReplication shop/vm"),
        "{message}"
    );

    // The group and its content as the VolumeGroupReplication controller leaves them.
    h.api.put::<VolumeGroupReplication>(&yaml(&format!(
        "metadata: {{name: vm, namespace: {NS}}}\nspec: {{volumeGroupReplicationClassName: groups, volumeGroupReplicationContentName: vgrcontent-vm, replicationState: primary, autoResync: false, source: {{selector: {{matchLabels: {{vm: a}}}}}}}}"
    )));
    h.api.put::<VolumeGroupReplicationContent>(&yaml(&format!(
        "metadata: {{name: vgrcontent-vm}}\nspec: {{provisioner: {}, volumeGroupReplicationClassName: groups, volumeGroupReplicationHandle: vg-vm, source: {{volumeHandles: [vol-1, vol-2]}}}}",
        support::DRIVER
    )));
    h.api.take_writes();
    h.reconcile().await.unwrap();
    let received = h.driver.received();
    let Some(Received::Enable(enable)) = received.first() else {
        panic!("{received:?}")
    };
    assert_eq!(
        enable
            .replication_source
            .as_ref()
            .and_then(|s| s.r#type.clone()),
        Some(Type::Volumegroup(VolumeGroupSource {
            volume_group_id: "vg-vm".into()
        }))
    );
    assert_eq!(enable.volume_id, "", "no single volume for a group");
    assert_eq!(h.calls(), ["Enable", "Promote()", "Info"]);
    // The claims are the group's to protect: no claim was patched.
    let writes = h.api.take_writes();
    assert!(
        writes.iter().all(|w| !w.contains("persistentvolumeclaims")),
        "{writes:?}"
    );
    assert_eq!(
        h.vr().unwrap().status.unwrap().state(),
        Some(CurrentState::Primary)
    );
}

const SECRET_PATH: &str = "/api/v1/namespaces/storage/secrets/mirror";

/// Issue 30: a thousand VolumeReplications of one class read its Secret once, not a thousand
/// times.
#[tokio::test]
async fn the_classes_secret_is_read_once_for_reconciles_close_together() {
    let h = Harness::new().await;
    h.seed("1m");
    h.put_vr("primary", "");
    h.reconcile().await.unwrap();
    h.put_vr("secondary", "");
    h.reconcile().await.unwrap();
    let reads = h.api.take_reads();
    assert_eq!(
        reads.iter().filter(|r| *r == SECRET_PATH).count(),
        1,
        "{reads:?}"
    );
}

/// A rotated Secret is used at once after the driver refuses the old credentials.
#[tokio::test]
async fn credentials_the_driver_refuses_are_read_afresh_for_the_next_try() {
    let h = Harness::new().await;
    h.seed("1m");
    h.driver.fail_times(
        "EnableVolumeReplication",
        Code::Unauthenticated,
        "bad token",
        1,
    );
    h.put_vr("primary", "");
    h.reconcile().await.unwrap_err();
    h.api.put::<k8s_openapi::api::core::v1::Secret>(&yaml(
        "metadata: {name: mirror, namespace: storage}\nstringData: {token: rotated}",
    ));
    h.driver.clear_received();
    h.reconcile().await.unwrap();
    let Some(Received::Enable(enable)) = h.driver.received().into_iter().next() else {
        panic!("Enable first");
    };
    assert_eq!(
        enable.secrets.get("token").map(String::as_str),
        Some("rotated")
    );
}
