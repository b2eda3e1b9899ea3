//! Pure construction of the next `VolumeReplication.status` from the current one and what a
//! reconcile did: the condition matrix of `../shared/spec/replication-api.md`, row by row.

use std::time::{Duration, SystemTime};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use lifeline_api::condition::{ConditionStatus, NewCondition, remove_condition, set_condition};
use lifeline_api::replication::{
    ConditionType, CurrentState, DataSourceKind, Reason, ReplicationState, StatusMessage, Subject,
    Text, VolumeReplication, VolumeReplicationStatus,
};
use lifeline_csi_client::{Destination, ErrorClass, ReplicationHealth};

use crate::outcome::{DestinationOutcome, InfoOutcome, Operation, Outcome};

use ConditionStatus::{False, True, Unknown};

/// Builds the status `vr` should have after `outcome`. Conditions keep their transition time
/// when their status does not change, so an unchanged result equals the old status and no
/// write is needed.
pub fn next_status(
    vr: &VolumeReplication,
    outcome: &Outcome,
    now: Timestamp,
) -> VolumeReplicationStatus {
    let subject = DataSourceKind::of(&vr.spec.data_source)
        .map(DataSourceKind::subject)
        .unwrap_or(Subject::Volume);
    let mut writer = Writer {
        status: vr.status.clone().unwrap_or_default(),
        subject,
        generation: vr.metadata.generation,
        now,
    };
    writer.status.observed_generation = vr.metadata.generation;
    writer.operation(&outcome.operation, vr.spec.replication_state);
    if let Some(started) = outcome.started {
        writer.status.last_start_time = Some(time(started));
    }
    let succeeded = matches!(
        outcome.operation,
        Operation::Promoted { .. }
            | Operation::Demoted {
                resync: Ok(true),
                ..
            }
            | Operation::Resynced(Ok(true))
    );
    if let (Some(finished), true) = (outcome.finished, succeeded) {
        writer.status.last_completion_time = Some(time(finished));
    }
    if vr.spec.replication_state == ReplicationState::Primary {
        if let Some(info) = &outcome.info {
            writer.info(info);
        }
        if let Some(destination) = &outcome.destination {
            writer.destination(destination);
        }
    } else if outcome.operation.error().is_none()
        && !matches!(outcome.operation, Operation::Rejected { .. })
    {
        // Sync facts and replication health describe a primary; a secondary has none.
        writer.clear_primary_facts();
    }
    writer.status
}

struct Writer {
    status: VolumeReplicationStatus,
    subject: Subject,
    generation: Option<i64>,
    now: Timestamp,
}

impl Writer {
    fn set(
        &mut self,
        type_: ConditionType,
        status: ConditionStatus,
        reason: Reason,
        message: String,
    ) {
        set_condition(
            &mut self.status.conditions,
            NewCondition::new(type_.as_str(), status, reason.as_str(), message),
            self.generation,
            self.now,
        );
    }

    fn says(&self, text: Text) -> String {
        self.subject.says(text)
    }

    fn state(&mut self, state: CurrentState, message: StatusMessage) {
        self.status.state = Some(state);
        self.status.message = Some(self.subject.status(message));
    }

    /// A failure keeps the state we last knew (Unknown if none) and says what failed.
    fn failed(&mut self, text: Text, error: &dyn std::fmt::Display) {
        if self.status.state.is_none() {
            self.status.state = Some(CurrentState::Unknown);
        }
        self.status.message = Some(format!("{}: {error}", self.says(text)));
    }

    fn operation(&mut self, operation: &Operation, desired: ReplicationState) {
        use ConditionType::{Completed, Degraded, Resyncing, Validated};
        match operation {
            Operation::None => {}
            Operation::Promoted { .. } => {
                self.set(
                    Completed,
                    True,
                    Reason::Promoted,
                    self.says(Text::PromotedAndReplicating),
                );
                self.set(Degraded, False, Reason::Healthy, self.says(Text::Healthy));
                self.set(
                    Resyncing,
                    False,
                    Reason::NotResyncing,
                    self.says(Text::NotResyncing),
                );
                // A stale "prerequisite not met" must not outlive the promotion it blocked.
                if lifeline_api::condition::find_condition(
                    &self.status.conditions,
                    Validated.as_str(),
                )
                .is_some()
                {
                    self.set(
                        Validated,
                        True,
                        Reason::PrerequisiteMet,
                        self.says(Text::Validated),
                    );
                }
                self.state(CurrentState::Primary, StatusMessage::MarkedPrimary);
            }
            Operation::EnableFailed(e) | Operation::PromoteFailed(e) => {
                self.set(
                    Completed,
                    False,
                    Reason::FailedToPromote,
                    self.says(Text::FailedToPromote),
                );
                self.set(Degraded, True, Reason::Error, self.says(Text::Degraded));
                self.set(
                    Resyncing,
                    False,
                    Reason::NotResyncing,
                    self.says(Text::NotResyncing),
                );
                let prerequisite = matches!(operation, Operation::EnableFailed(_))
                    && e.class() == ErrorClass::FailedPrecondition;
                if prerequisite {
                    self.set(
                        Validated,
                        False,
                        Reason::PrerequisiteNotMet,
                        self.says(Text::FailedToMeetPrerequisite),
                    );
                } else {
                    self.set(
                        Validated,
                        True,
                        Reason::PrerequisiteMet,
                        self.says(Text::Validated),
                    );
                }
                self.failed(Text::FailedToPromote, e);
            }
            Operation::Demoted {
                force_resync,
                resync,
            } => match resync {
                Ok(ready) => {
                    self.set(Completed, True, Reason::Demoted, self.says(Text::Demoted));
                    if *ready {
                        self.set(Degraded, False, Reason::Healthy, self.says(Text::Healthy));
                        self.set(
                            Resyncing,
                            False,
                            Reason::NotResyncing,
                            self.says(Text::NotResyncing),
                        );
                    } else if *force_resync {
                        self.resync_started();
                    } else {
                        self.set(
                            Degraded,
                            True,
                            Reason::VolumeDegraded,
                            self.says(Text::Degraded),
                        );
                        self.set(
                            Resyncing,
                            False,
                            Reason::NotResyncing,
                            self.says(Text::NotResyncing),
                        );
                    }
                    self.state(CurrentState::Secondary, StatusMessage::MarkedSecondary);
                }
                Err(e) => {
                    self.resync_failed();
                    self.status.state = Some(CurrentState::Secondary);
                    self.failed(Text::FailedToResync, e);
                }
            },
            Operation::DemoteFailed(e) => {
                self.set(
                    Completed,
                    False,
                    Reason::FailedToDemote,
                    self.says(Text::FailedToDemote),
                );
                self.set(Degraded, True, Reason::Error, self.says(Text::Degraded));
                self.set(
                    Resyncing,
                    False,
                    Reason::NotResyncing,
                    self.says(Text::NotResyncing),
                );
                self.failed(Text::FailedToDemote, e);
            }
            Operation::Resynced(Ok(true)) => {
                self.set(Degraded, False, Reason::Healthy, self.says(Text::Healthy));
                self.set(
                    Resyncing,
                    False,
                    Reason::NotResyncing,
                    self.says(Text::NotResyncing),
                );
                self.state(CurrentState::Secondary, StatusMessage::MarkedForResync);
            }
            Operation::Resynced(Ok(false)) => {
                self.resync_started();
                self.state(CurrentState::Secondary, StatusMessage::MarkedForResync);
            }
            Operation::Resynced(Err(e)) => {
                self.resync_failed();
                self.failed(Text::FailedToResync, e);
            }
            Operation::Rejected { message, .. } => {
                let (reason, resyncing) = match desired {
                    ReplicationState::Primary => (Reason::FailedToPromote, Reason::NotResyncing),
                    ReplicationState::Secondary => (Reason::FailedToDemote, Reason::NotResyncing),
                    ReplicationState::Resync => (Reason::FailedToResync, Reason::FailedToResync),
                };
                // Our own finding: the message says exactly what is wrong and what to do.
                self.set(Completed, False, reason, message.clone());
                self.set(Degraded, True, Reason::Error, message.clone());
                self.set(Resyncing, False, resyncing, self.says(Text::NotResyncing));
                self.set(
                    Validated,
                    False,
                    Reason::PrerequisiteNotMet,
                    message.clone(),
                );
                if self.status.state.is_none() {
                    self.status.state = Some(CurrentState::Unknown);
                }
                self.status.message = Some(message.clone());
            }
        }
    }

    fn resync_started(&mut self) {
        use ConditionType::{Completed, Degraded, Resyncing};
        self.set(Completed, True, Reason::Demoted, self.says(Text::Demoted));
        self.set(
            Degraded,
            True,
            Reason::VolumeDegraded,
            self.says(Text::Degraded),
        );
        self.set(
            Resyncing,
            True,
            Reason::ResyncTriggered,
            self.says(Text::Resyncing),
        );
    }

    fn resync_failed(&mut self) {
        use ConditionType::{Completed, Degraded, Resyncing};
        self.set(
            Completed,
            False,
            Reason::FailedToResync,
            self.says(Text::FailedToResync),
        );
        self.set(Degraded, True, Reason::Error, self.says(Text::Degraded));
        self.set(
            Resyncing,
            False,
            Reason::FailedToResync,
            self.says(Text::FailedToResync),
        );
    }

    fn info(&mut self, info: &InfoOutcome) {
        let replicating = |w: &mut Self, status, reason, text| {
            let message = w.says(text);
            w.set(ConditionType::Replicating, status, reason, message);
        };
        match info {
            InfoOutcome::Info(info) => {
                if let Some(at) = info.last_sync_time {
                    self.status.last_sync_time = Some(time(at));
                }
                if let Some(duration) = info.last_sync_duration {
                    self.status.last_sync_duration = Some(go_duration(duration));
                }
                if let Some(bytes) = info.last_sync_bytes {
                    self.status.last_sync_bytes = i64::try_from(bytes).ok();
                }
                match info.health {
                    ReplicationHealth::Healthy => {
                        replicating(self, True, Reason::Replicating, Text::Replicating);
                        if self.status.state == Some(CurrentState::Primary) {
                            self.state(CurrentState::Primary, StatusMessage::MarkedPrimary);
                        }
                    }
                    ReplicationHealth::Degraded | ReplicationHealth::Error => {
                        replicating(self, False, Reason::NotReplicating, Text::NotReplicating);
                        let mut message = self.subject.status(StatusMessage::Degraded);
                        if !info.status_message.is_empty() {
                            message = format!("{message}: {}", info.status_message);
                        }
                        self.status.message = Some(message);
                    }
                    ReplicationHealth::Unknown => replicating(
                        self,
                        Unknown,
                        Reason::Replicating,
                        Text::ReplicationStatusUnknown,
                    ),
                }
            }
            InfoOutcome::NotYet | InfoOutcome::Unimplemented => {}
            InfoOutcome::Failed(_) => replicating(
                self,
                Unknown,
                Reason::Replicating,
                Text::ReplicationStatusUnknown,
            ),
        }
    }

    fn destination(&mut self, destination: &DestinationOutcome) {
        let type_ = ConditionType::DestinationInfoAvailable;
        match destination {
            DestinationOutcome::Available(Destination::Volume(id))
            | DestinationOutcome::Available(Destination::VolumeGroup { id, .. }) => {
                self.status.destination_volume_id = Some(id.clone());
                self.set(
                    type_,
                    True,
                    Reason::DestinationInfoUpdated,
                    self.says(Text::DestinationInfoAvailable),
                );
            }
            DestinationOutcome::Available(Destination::Unknown) | DestinationOutcome::Pending => {
                self.set(
                    type_,
                    False,
                    Reason::DestinationInfoPending,
                    self.says(Text::DestinationInfoPending),
                );
            }
            DestinationOutcome::Failed(_) => {
                self.set(
                    type_,
                    False,
                    Reason::FailedToGetDestinationInfo,
                    self.says(Text::FailedToGetDestinationInfo),
                );
            }
        }
    }

    fn clear_primary_facts(&mut self) {
        remove_condition(
            &mut self.status.conditions,
            ConditionType::Replicating.as_str(),
        );
        self.status.last_sync_time = None;
        self.status.last_sync_duration = None;
        self.status.last_sync_bytes = None;
    }
}

fn time(at: SystemTime) -> Time {
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let ts = Timestamp::from_second(i64::try_from(since.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(Timestamp::UNIX_EPOCH);
    // metav1.Time has second precision on the wire; keep it that way so round-trips compare equal.
    Time(ts)
}

/// Formats a duration the way Go's `time.Duration.String` does ("42s", "1m30s", "1h0m0s",
/// "1.5s", "250ms"), which is what tools reading `lastSyncDuration` parse.
pub fn go_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    if d < Duration::from_secs(1) {
        let nanos = d.as_nanos();
        return if nanos < 1_000 {
            format!("{nanos}ns")
        } else if nanos < 1_000_000 {
            format!("{}µs", trim_fraction(nanos, 1_000))
        } else {
            format!("{}ms", trim_fraction(nanos, 1_000_000))
        };
    }
    let total = d.as_secs();
    let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60);
    let seconds = trim_fraction(
        u128::from(seconds) * 1_000_000_000 + u128::from(d.subsec_nanos()),
        1_000_000_000,
    );
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

/// `value / unit` with its fraction, trailing zeros trimmed ("1.5", "2").
fn trim_fraction(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let fraction = value % unit;
    if fraction == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{fraction:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}
