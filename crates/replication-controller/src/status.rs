//! Pure construction of the next `VolumeReplication.status` from the current one and what a
//! reconcile did: the condition matrix of `../shared/spec/replication-api.md`, row by row.

use std::time::SystemTime;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use lifeline_api::condition::{ConditionStatus, NewCondition, remove_condition, set_condition};
use lifeline_api::go_duration;
use lifeline_api::replication::{
    ConditionType, CurrentState, DataSourceKind, Reason, ReplicationState, StatusMessage, Subject,
    Text, VolumeReplication, VolumeReplicationStatus,
};
use lifeline_csi_client::{Destination, ErrorClass, ReplicationHealth};

use crate::condition_matrix::{self, Cell, Event, Message, ValidatedRule};
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
    let before = writer.status.clone();
    writer.operation(&outcome.operation, vr.spec.replication_state);
    // A retry that fails exactly as the last attempt did is the same operation still waiting
    // (e.g. a resync with no primary to pull from): it does not move lastStartTime, so a
    // waiting state costs no status write per retry.
    let same_failure = outcome.operation.error().is_some() && writer.status == before;
    if let Some(started) = outcome.started.filter(|_| !same_failure) {
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
    let changed_role = outcome.operation.error().is_none()
        && !matches!(
            outcome.operation,
            Operation::Rejected { .. } | Operation::None
        );
    if vr.spec.replication_state == ReplicationState::Primary {
        if changed_role && writer.clear_received_facts() {
            // What it received as a secondary is not what it ships as a primary.
            writer.clear_sync_facts();
        }
        if let Some(info) = &outcome.info {
            writer.info(info);
        }
        if let Some(destination) = &outcome.destination {
            writer.destination(destination);
        }
    } else {
        if changed_role {
            // A primary's sync facts and replication health do not describe a secondary.
            remove_condition(
                &mut writer.status.conditions,
                ConditionType::Replicating.as_str(),
            );
            writer.clear_sync_facts();
        }
        if let Some(info) = &outcome.info {
            writer.received(info);
        }
    }
    writer.status
}

/// Whether a new status is worth a write: not when only the sync facts moved, and
/// `lastSyncTime` by no more than one refresh period (a driver syncing every second would
/// otherwise cost a status write per refresh per volume; the gauges carry the fresh values).
pub fn worth_writing(
    old: &VolumeReplicationStatus,
    new: &VolumeReplicationStatus,
    refresh: std::time::Duration,
) -> bool {
    let facts_only = |s: &VolumeReplicationStatus| VolumeReplicationStatus {
        last_sync_time: None,
        last_sync_duration: None,
        last_sync_bytes: None,
        ..s.clone()
    };
    if old == new {
        return false;
    }
    if facts_only(old) != facts_only(new) {
        return true;
    }
    match (&old.last_sync_time, &new.last_sync_time) {
        (Some(old), Some(new)) => {
            let moved = (new.0.as_second() - old.0.as_second()).unsigned_abs();
            moved > refresh.as_secs()
        }
        // Facts appearing or going away is news.
        _ => true,
    }
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
        self.status.state = Some(state.into());
        self.status.message = Some(self.subject.status(message));
    }

    /// A failure keeps the state we last knew (Unknown if none) and says what failed.
    fn failed(&mut self, text: Text, error: &dyn std::fmt::Display) {
        if self.status.state.is_none() {
            self.status.state = Some(CurrentState::Unknown.into());
        }
        self.status.message = Some(format!("{}: {error}", self.says(text)));
    }

    /// Sets the conditions `event`'s row of the matrix names; `own` is the message of a row
    /// whose cells carry the operation's own words.
    fn apply(&mut self, event: Event, own: Option<&str>) {
        use ConditionType::{Completed, Degraded, Resyncing, Validated};
        let row = condition_matrix::row(event);
        for (type_, cell) in [
            (Completed, row.completed),
            (Degraded, row.degraded),
            (Resyncing, row.resyncing),
        ] {
            if let Some(cell) = cell {
                self.put(type_, cell, own);
            }
        }
        match row.validated {
            ValidatedRule::Keep => {}
            ValidatedRule::Set(cell) => self.put(Validated, cell, own),
            ValidatedRule::RefreshIfPresent(cell) => {
                if lifeline_api::condition::find_condition(
                    &self.status.conditions,
                    Validated.as_str(),
                )
                .is_some()
                {
                    self.put(Validated, cell, own);
                }
            }
        }
    }

    fn put(&mut self, type_: ConditionType, cell: Cell, own: Option<&str>) {
        let message = match cell.message {
            Message::Says(text) => self.says(text),
            Message::Own => own.unwrap_or_default().to_owned(),
        };
        self.set(type_, cell.status, cell.reason, message);
    }

    /// The conditions from the matrix (`condition_matrix`), then the state and message.
    fn operation(&mut self, operation: &Operation, desired: ReplicationState) {
        match operation {
            Operation::None => {}
            Operation::Promoted { .. } => {
                self.apply(Event::PromoteOk, None);
                self.state(CurrentState::Primary, StatusMessage::MarkedPrimary);
            }
            Operation::EnableFailed(e) | Operation::PromoteFailed(e) => {
                let prerequisite = matches!(operation, Operation::EnableFailed(_))
                    && e.class() == ErrorClass::FailedPrecondition;
                self.apply(
                    if prerequisite {
                        Event::PrerequisiteNotMet
                    } else {
                        Event::EnableOrPromoteFailed
                    },
                    None,
                );
                self.failed(Text::FailedToPromote, e);
            }
            Operation::Demoted {
                force_resync,
                resync,
            } => match resync {
                Ok(ready) => {
                    let event = match (ready, force_resync) {
                        (true, _) => Event::DemotedAndResynced,
                        (false, true) => Event::ResyncStarted,
                        (false, false) => Event::DemoteOk,
                    };
                    self.apply(event, None);
                    self.state(CurrentState::Secondary, StatusMessage::MarkedSecondary);
                }
                Err(e) => {
                    self.apply(Event::ResyncFailed, None);
                    self.status.state = Some(CurrentState::Secondary.into());
                    self.failed(Text::FailedToResync, e);
                }
            },
            Operation::DemoteFailed(e) => {
                self.apply(Event::DemoteFailed, None);
                self.failed(Text::FailedToDemote, e);
            }
            Operation::Resynced(Ok(ready)) => {
                let event = if *ready {
                    Event::ResyncReady
                } else {
                    Event::ResyncStarted
                };
                self.apply(event, None);
                self.state(CurrentState::Secondary, StatusMessage::MarkedForResync);
            }
            Operation::Resynced(Err(e)) => {
                self.apply(Event::ResyncFailed, None);
                self.failed(Text::FailedToResync, e);
            }
            Operation::Rejected { message, .. } => {
                // Our own finding: the message says exactly what is wrong and what to do.
                let event = match desired {
                    ReplicationState::Primary => Event::RejectedAsPrimary,
                    ReplicationState::Secondary => Event::RejectedAsSecondary,
                    ReplicationState::Resync => Event::RejectedAsResync,
                };
                self.apply(event, Some(message));
                if self.status.state.is_none() {
                    self.status.state = Some(CurrentState::Unknown.into());
                }
                self.status.message = Some(message.clone());
            }
        }
    }

    fn info(&mut self, info: &InfoOutcome) {
        let replicating = |w: &mut Self, status, reason, text| {
            let message = w.says(text);
            w.set(ConditionType::Replicating, status, reason, message);
        };
        match info {
            InfoOutcome::Info(info) => {
                self.facts(info);
                match info.health {
                    ReplicationHealth::Healthy => {
                        replicating(self, True, Reason::Replicating, Text::Replicating);
                        if self.status.state() == Some(CurrentState::Primary) {
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
            InfoOutcome::NotYet | InfoOutcome::Unimplemented | InfoOutcome::NotOffered => {}
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

    fn clear_sync_facts(&mut self) {
        self.status.last_sync_time = None;
        self.status.last_sync_duration = None;
        self.status.last_sync_bytes = None;
    }

    /// Removes the secondary's SyncReceived condition; says whether there was one.
    fn clear_received_facts(&mut self) -> bool {
        let had = lifeline_api::condition::find_condition(
            &self.status.conditions,
            ConditionType::SyncReceived.as_str(),
        )
        .is_some();
        remove_condition(
            &mut self.status.conditions,
            ConditionType::SyncReceived.as_str(),
        );
        had
    }

    /// A secondary's GetVolumeReplicationInfo answer: the last sync it received.
    fn received(&mut self, info: &InfoOutcome) {
        let type_ = ConditionType::SyncReceived;
        match info {
            InfoOutcome::Info(info) => {
                self.facts(info);
                self.set(
                    type_,
                    True,
                    Reason::SyncReceived,
                    self.says(Text::SyncReceived),
                );
            }
            InfoOutcome::NotYet => {
                self.clear_sync_facts();
                self.set(
                    type_,
                    False,
                    Reason::NoSyncReceived,
                    self.says(Text::NoSyncReceived),
                );
            }
            InfoOutcome::NotOffered => {
                self.clear_sync_facts();
                self.set(
                    type_,
                    False,
                    Reason::SyncInfoNotOffered,
                    self.says(Text::SyncInfoNotOffered),
                );
            }
            InfoOutcome::Unimplemented => {
                self.clear_sync_facts();
                self.clear_received_facts();
            }
            // Keep the last answer: the data is no younger than it said.
            InfoOutcome::Failed(_) => {}
        }
    }

    fn facts(&mut self, info: &lifeline_csi_client::ReplicationInfo) {
        if let Some(at) = info.last_sync_time {
            self.status.last_sync_time = Some(time(at));
        }
        if let Some(duration) = info.last_sync_duration {
            self.status.last_sync_duration = Some(go_duration(duration));
        }
        if let Some(bytes) = info.last_sync_bytes {
            self.status.last_sync_bytes = i64::try_from(bytes).ok();
        }
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

#[cfg(test)]
mod tests;
