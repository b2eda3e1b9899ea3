//! Tests of `status.rs`: the status a VolumeReplication gets for each outcome.
use super::*;
use crate::test_fixtures::vr_yaml;
use lifeline_api::condition::find_condition;
use lifeline_csi_client::{CsiError, Method, ReplicationInfo};
use std::time::{Duration, UNIX_EPOCH};

fn now() -> Timestamp {
    "2026-03-02T10:00:00Z".parse().unwrap()
}

fn error(method: Method, code: tonic::Code) -> CsiError {
    CsiError {
        method,
        code,
        message: "driver says no".into(),
    }
}

fn outcome(operation: Operation) -> Outcome {
    Outcome {
        operation,
        ..Outcome::nothing()
    }
}

/// (type, status, reason, message) of every condition, sorted by type.
fn conditions(status: &VolumeReplicationStatus) -> Vec<(String, String, String, String)> {
    let mut all: Vec<_> = status
        .conditions
        .iter()
        .map(|c| {
            (
                c.type_.clone(),
                c.status.clone(),
                c.reason.clone(),
                c.message.clone(),
            )
        })
        .collect();
    all.sort();
    all
}

fn row(entries: &[(&str, &str, &str, &str)]) -> Vec<(String, String, String, String)> {
    let mut all: Vec<_> = entries
        .iter()
        .map(|(t, s, r, m)| {
            (
                t.to_string(),
                s.to_string(),
                r.to_string(),
                format!("volume {m}"),
            )
        })
        .collect();
    all.sort();
    all
}

fn run(state: &str, operation: Operation) -> VolumeReplicationStatus {
    let vr = vr_yaml(&format!("spec: {{replicationState: {state}}}"));
    next_status(&vr, &outcome(operation), now())
}

#[test]
fn promote_ok() {
    let status = run("primary", Operation::Promoted { forced: false });
    assert_eq!(
        conditions(&status),
        row(&[
            (
                "Completed",
                "True",
                "Promoted",
                "is promoted to primary and replicating to secondary"
            ),
            ("Degraded", "False", "Healthy", "is healthy"),
            ("Resyncing", "False", "NotResyncing", "is not resyncing"),
        ])
    );
    assert_eq!(status.state(), Some(CurrentState::Primary));
    assert_eq!(status.message.as_deref(), Some("volume is marked primary"));
    assert_eq!(status.observed_generation, Some(1));
    assert!(
        status
            .conditions
            .iter()
            .all(|c| c.observed_generation == Some(1))
    );
}

#[test]
fn promote_failed_and_enable_failed() {
    for operation in [
        Operation::PromoteFailed(error(Method::PromoteVolume, tonic::Code::Unavailable)),
        Operation::EnableFailed(error(
            Method::EnableVolumeReplication,
            tonic::Code::Internal,
        )),
    ] {
        let status = run("primary", operation);
        assert_eq!(
            conditions(&status),
            row(&[
                ("Completed", "False", "FailedToPromote", "failed to promote"),
                ("Degraded", "True", "Error", "is degraded"),
                ("Resyncing", "False", "NotResyncing", "is not resyncing"),
                (
                    "Validated",
                    "True",
                    "PrerequisiteMet",
                    "is validated and met all prerequisites"
                ),
            ])
        );
        assert_eq!(status.state(), Some(CurrentState::Unknown));
        assert!(status.message.unwrap().contains("driver says no"));
    }
}

#[test]
fn enable_prerequisite_not_met() {
    let status = run(
        "primary",
        Operation::EnableFailed(error(
            Method::EnableVolumeReplication,
            tonic::Code::FailedPrecondition,
        )),
    );
    assert_eq!(
        conditions(&status),
        row(&[
            ("Completed", "False", "FailedToPromote", "failed to promote"),
            ("Degraded", "True", "Error", "is degraded"),
            ("Resyncing", "False", "NotResyncing", "is not resyncing"),
            (
                "Validated",
                "False",
                "PrerequisiteNotMet",
                "failed to meet prerequisite"
            ),
        ])
    );
}

#[test]
fn demote_ok_and_resync_ready_or_not() {
    let waiting = run(
        "secondary",
        Operation::Demoted {
            force_resync: false,
            resync: Ok(false),
        },
    );
    assert_eq!(
        conditions(&waiting),
        row(&[
            ("Completed", "True", "Demoted", "is demoted to secondary"),
            ("Degraded", "True", "VolumeDegraded", "is degraded"),
            ("Resyncing", "False", "NotResyncing", "is not resyncing"),
        ])
    );
    assert_eq!(waiting.state(), Some(CurrentState::Secondary));
    assert_eq!(
        waiting.message.as_deref(),
        Some("volume is marked secondary")
    );

    let forced = run(
        "secondary",
        Operation::Demoted {
            force_resync: true,
            resync: Ok(false),
        },
    );
    assert_eq!(
        conditions(&forced),
        row(&[
            ("Completed", "True", "Demoted", "is demoted to secondary"),
            ("Degraded", "True", "VolumeDegraded", "is degraded"),
            (
                "Resyncing",
                "True",
                "ResyncTriggered",
                "is resyncing changes from primary to secondary"
            ),
        ])
    );

    let ready = run(
        "secondary",
        Operation::Demoted {
            force_resync: false,
            resync: Ok(true),
        },
    );
    assert_eq!(
        conditions(&ready),
        row(&[
            ("Completed", "True", "Demoted", "is demoted to secondary"),
            ("Degraded", "False", "Healthy", "is healthy"),
            ("Resyncing", "False", "NotResyncing", "is not resyncing"),
        ])
    );
}

#[test]
fn demote_failed() {
    let status = run(
        "secondary",
        Operation::DemoteFailed(error(Method::DemoteVolume, tonic::Code::Aborted)),
    );
    assert_eq!(
        conditions(&status),
        row(&[
            ("Completed", "False", "FailedToDemote", "failed to demote"),
            ("Degraded", "True", "Error", "is degraded"),
            ("Resyncing", "False", "NotResyncing", "is not resyncing"),
        ])
    );
}

#[test]
fn resync_started_ready_and_failed() {
    let started = run("resync", Operation::Resynced(Ok(false)));
    assert_eq!(
        conditions(&started),
        row(&[
            ("Completed", "True", "Demoted", "is demoted to secondary"),
            ("Degraded", "True", "VolumeDegraded", "is degraded"),
            (
                "Resyncing",
                "True",
                "ResyncTriggered",
                "is resyncing changes from primary to secondary"
            ),
        ])
    );
    assert_eq!(
        started.message.as_deref(),
        Some("volume is marked for resyncing")
    );

    // "resync ready" leaves Completed as it was.
    let mut vr = vr_yaml("spec: {replicationState: resync}");
    vr.status = Some(started);
    let ready = next_status(&vr, &outcome(Operation::Resynced(Ok(true))), now());
    assert_eq!(
        conditions(&ready),
        row(&[
            ("Completed", "True", "Demoted", "is demoted to secondary"),
            ("Degraded", "False", "Healthy", "is healthy"),
            ("Resyncing", "False", "NotResyncing", "is not resyncing"),
        ])
    );

    let failed = run(
        "resync",
        Operation::Resynced(Err(error(Method::ResyncVolume, tonic::Code::Unknown))),
    );
    assert_eq!(
        conditions(&failed),
        row(&[
            ("Completed", "False", "FailedToResync", "failed to resync"),
            ("Degraded", "True", "Error", "is degraded"),
            ("Resyncing", "False", "FailedToResync", "failed to resync"),
        ])
    );
}

#[test]
fn our_own_findings_say_what_to_fix() {
    let message = "VolumeReplicationClass \"gold\" not found; create it";
    let status = run(
        "primary",
        Operation::Rejected {
            reason: "ClassNotFound",
            message: message.into(),
        },
    );
    let completed = find_condition(&status.conditions, "Completed").unwrap();
    assert_eq!(
        (completed.status.as_str(), completed.reason.as_str()),
        ("False", "FailedToPromote")
    );
    assert_eq!(completed.message, message);
    let validated = find_condition(&status.conditions, "Validated").unwrap();
    assert_eq!(
        (validated.status.as_str(), validated.reason.as_str()),
        ("False", "PrerequisiteNotMet")
    );
    assert_eq!(validated.message, message);
    assert_eq!(status.message.as_deref(), Some(message));
    assert_eq!(status.state(), Some(CurrentState::Unknown));

    let secondary = run(
        "secondary",
        Operation::Rejected {
            reason: "X",
            message: "m".into(),
        },
    );
    assert_eq!(
        find_condition(&secondary.conditions, "Completed")
            .unwrap()
            .reason,
        "FailedToDemote"
    );
}

#[test]
fn replicating_follows_the_drivers_health_and_records_sync_facts() {
    let mut vr = vr_yaml("spec: {replicationState: primary}");
    let info = |health| ReplicationInfo {
        last_sync_time: Some(UNIX_EPOCH + Duration::from_secs(1_772_445_600)),
        last_sync_duration: Some(Duration::from_secs(42)),
        last_sync_bytes: Some(1_048_576),
        health,
        status_message: String::new(),
    };
    let mut o = outcome(Operation::Promoted { forced: false });
    o.info = Some(InfoOutcome::Info(info(ReplicationHealth::Healthy)));
    let status = next_status(&vr, &o, now());
    let replicating = find_condition(&status.conditions, "Replicating").unwrap();
    assert_eq!(
        (
            replicating.status.as_str(),
            replicating.reason.as_str(),
            replicating.message.as_str()
        ),
        ("True", "Replicating", "volume is replicating")
    );
    assert_eq!(
        status.last_sync_time.as_ref().unwrap().0.to_string(),
        "2026-03-02T10:00:00Z"
    );
    assert_eq!(status.last_sync_duration.as_deref(), Some("42s"));
    assert_eq!(status.last_sync_bytes, Some(1_048_576));

    vr.status = Some(status);
    let mut refresh = Outcome::nothing();
    refresh.info = Some(InfoOutcome::Info(info(ReplicationHealth::Degraded)));
    let degraded = next_status(&vr, &refresh, now());
    let replicating = find_condition(&degraded.conditions, "Replicating").unwrap();
    assert_eq!(
        (replicating.status.as_str(), replicating.reason.as_str()),
        ("False", "NotReplicating")
    );
    assert_eq!(degraded.message.as_deref(), Some("volume is degraded"));

    for unknown in [
        InfoOutcome::Info(info(ReplicationHealth::Unknown)),
        InfoOutcome::Failed(error(
            Method::GetVolumeReplicationInfo,
            tonic::Code::Unavailable,
        )),
    ] {
        refresh.info = Some(unknown);
        let status = next_status(&vr, &refresh, now());
        let replicating = find_condition(&status.conditions, "Replicating").unwrap();
        assert_eq!(
            (
                replicating.status.as_str(),
                replicating.reason.as_str(),
                replicating.message.as_str()
            ),
            (
                "Unknown",
                "Replicating",
                "volume replication status is unknown"
            )
        );
    }

    // Not found: no info yet; unimplemented: nothing to say. Neither touches the status.
    for silent in [InfoOutcome::NotYet, InfoOutcome::Unimplemented] {
        refresh.info = Some(silent);
        assert_eq!(Some(next_status(&vr, &refresh, now())), vr.status);
    }
}

#[test]
fn promotion_drops_received_facts_and_a_quiet_secondary_keeps_them() {
    let mut vr = vr_yaml("spec: {replicationState: secondary}");
    let info = ReplicationInfo {
        last_sync_time: Some(UNIX_EPOCH + Duration::from_secs(1_772_445_600)),
        last_sync_duration: Some(Duration::from_secs(2)),
        last_sync_bytes: Some(7),
        health: ReplicationHealth::Healthy,
        status_message: String::new(),
    };
    let mut refresh = outcome(Operation::None);
    refresh.info = Some(InfoOutcome::Info(info));
    vr.status = Some(next_status(&vr, &refresh, now()));
    let received = vr.status.clone().unwrap();
    assert!(received.last_sync_time.is_some());
    assert!(find_condition(&received.conditions, "SyncReceived").is_some());
    // Nothing due: what it received stays.
    assert_eq!(next_status(&vr, &outcome(Operation::None), now()), received);
    // A failed refresh keeps the last answer too.
    let mut failed = outcome(Operation::None);
    failed.info = Some(InfoOutcome::Failed(error(
        Method::GetVolumeReplicationInfo,
        tonic::Code::Unavailable,
    )));
    assert_eq!(
        next_status(&vr, &failed, now()).last_sync_time,
        received.last_sync_time
    );

    vr.spec.replication_state = ReplicationState::Primary;
    let promoted = next_status(&vr, &outcome(Operation::Promoted { forced: true }), now());
    assert!(find_condition(&promoted.conditions, "SyncReceived").is_none());
    assert_eq!(
        promoted.last_sync_time, None,
        "received facts are not shipped facts"
    );
}

#[test]
fn secondary_drops_primary_facts() {
    let mut vr = vr_yaml("spec: {replicationState: secondary}");
    vr.status = Some(VolumeReplicationStatus {
        last_sync_time: Some(Time(now())),
        last_sync_duration: Some("1s".into()),
        last_sync_bytes: Some(5),
        ..Default::default()
    });
    set_condition(
        &mut vr.status.as_mut().unwrap().conditions,
        NewCondition::new("Replicating", True, "Replicating", "volume is replicating"),
        Some(1),
        now(),
    );
    let status = next_status(
        &vr,
        &outcome(Operation::Demoted {
            force_resync: false,
            resync: Ok(true),
        }),
        now(),
    );
    assert!(find_condition(&status.conditions, "Replicating").is_none());
    assert_eq!(
        (
            status.last_sync_time,
            status.last_sync_duration,
            status.last_sync_bytes
        ),
        (None, None, None)
    );
}

#[test]
fn destination_info_conditions() {
    let vr = vr_yaml("spec: {replicationState: primary}");
    let with = |d| Outcome {
        destination: Some(d),
        ..outcome(Operation::Promoted { forced: false })
    };
    let status = next_status(
        &vr,
        &with(DestinationOutcome::Available(Destination::Volume(
            "peer-1".into(),
        ))),
        now(),
    );
    assert_eq!(status.destination_volume_id.as_deref(), Some("peer-1"));
    let c = find_condition(&status.conditions, "DestinationInfoAvailable").unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
        (
            "True",
            "DestinationInfoUpdated",
            "volume destination info is available"
        )
    );
    let status = next_status(&vr, &with(DestinationOutcome::Pending), now());
    let c = find_condition(&status.conditions, "DestinationInfoAvailable").unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
        (
            "False",
            "DestinationInfoPending",
            "volume destination info is pending update"
        )
    );
    let failed = DestinationOutcome::Failed(error(
        Method::GetReplicationDestinationInfo,
        tonic::Code::Internal,
    ));
    let status = next_status(&vr, &with(failed), now());
    let c = find_condition(&status.conditions, "DestinationInfoAvailable").unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "FailedToGetDestinationInfo")
    );
}

#[test]
fn an_unchanged_result_is_the_same_status() {
    let mut vr = vr_yaml("spec: {replicationState: primary}");
    vr.status = Some(next_status(
        &vr,
        &outcome(Operation::Promoted { forced: false }),
        now(),
    ));
    let later: Timestamp = "2026-03-03T00:00:00Z".parse().unwrap();
    assert_eq!(
        Some(next_status(&vr, &Outcome::nothing(), later)),
        vr.status
    );
}

#[test]
fn operation_times_are_recorded_and_completion_only_on_success() {
    let vr = vr_yaml("spec: {replicationState: primary}");
    let start = UNIX_EPOCH + Duration::from_secs(1_772_445_601);
    let end = start + Duration::from_secs(1);
    let mut o = outcome(Operation::Promoted { forced: true });
    (o.started, o.finished) = (Some(start), Some(end));
    let status = next_status(&vr, &o, now());
    assert_eq!(
        status.last_start_time.unwrap().0.to_string(),
        "2026-03-02T10:00:01Z"
    );
    assert_eq!(
        status.last_completion_time.unwrap().0.to_string(),
        "2026-03-02T10:00:02Z"
    );
    o.operation = Operation::PromoteFailed(error(Method::PromoteVolume, tonic::Code::Aborted));
    assert!(next_status(&vr, &o, now()).last_completion_time.is_none());
}

/// A retry that fails as the previous attempt did leaves the status as it was, start time
/// included, however much later it runs: a waiting state costs no writes.
#[test]
fn a_retry_failing_the_same_way_changes_nothing() {
    let mut vr = vr_yaml("spec: {replicationState: resync}");
    let first = UNIX_EPOCH + Duration::from_secs(1_772_445_601);
    let mut o = outcome(Operation::Resynced(Err(error(
        Method::ResyncVolume,
        tonic::Code::Unavailable,
    ))));
    o.started = Some(first);
    vr.status = Some(next_status(&vr, &o, now()));
    o.started = Some(first + Duration::from_secs(90));
    let later: Timestamp = "2026-03-02T10:01:30Z".parse().unwrap();
    assert_eq!(Some(next_status(&vr, &o, later)), vr.status);
    // A different failure is news: it is written, with its own start time.
    o.operation = Operation::Resynced(Err(error(Method::ResyncVolume, tonic::Code::Aborted)));
    let changed = next_status(&vr, &o, later);
    assert_ne!(Some(&changed), vr.status.as_ref());
    assert_eq!(
        changed.last_start_time.unwrap().0.to_string(),
        "2026-03-02T10:01:31Z"
    );
}
