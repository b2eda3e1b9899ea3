//! Which Kubernetes Events a reconcile emits: one per transition or failure, so
//! `kubectl describe volumereplication` tells the story. Pure; the reconcile publishes them.

use lifeline_api::condition::find_condition;
use lifeline_api::replication::{ConditionType, VolumeReplicationStatus};
use lifeline_csi_client::ErrorClass;

use crate::outcome::{Operation, Outcome};

/// An Event to publish on the VolumeReplication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub action: &'static str,
    pub message: String,
}

fn normal(reason: &'static str, action: &'static str, message: impl Into<String>) -> Note {
    Note {
        warning: false,
        reason,
        action,
        message: message.into(),
    }
}

fn warning(reason: &'static str, action: &'static str, message: impl Into<String>) -> Note {
    Note {
        warning: true,
        reason,
        action,
        message: message.into(),
    }
}

/// The Events for `outcome`, given the status before and after it. Successful operations are
/// announced when they changed the status; failures every time (the recorder folds repeats
/// into one Event with a count).
pub fn notes(
    old: &VolumeReplicationStatus,
    new: &VolumeReplicationStatus,
    outcome: &Outcome,
) -> Vec<Note> {
    let changed = old.conditions != new.conditions || old.state != new.state;
    let mut notes = Vec::new();
    match &outcome.operation {
        Operation::None => {}
        Operation::Promoted { forced: false } if changed => {
            notes.push(normal("Promoted", "Promote", "promoted to primary"));
        }
        Operation::Promoted { forced: true } if changed => notes.push(warning(
            "ForcePromoted",
            "Promote",
            "promoted to primary with force: the driver refused a planned promotion (peer unreachable or still primary); data written on the old primary after its last sync is not here",
        )),
        Operation::Promoted { .. } => {}
        Operation::EnableFailed(e) | Operation::PromoteFailed(e) => {
            notes.push(warning("FailedToPromote", "Promote", e.to_string()));
        }
        Operation::Demoted { resync: Ok(ready), .. } if changed => notes.push(normal(
            "Demoted",
            "Demote",
            if *ready {
                "demoted to secondary; in sync with the primary"
            } else {
                "demoted to secondary; waiting for the resync to finish"
            },
        )),
        Operation::Demoted { resync: Ok(_), .. } => {}
        // Waiting for the peer to become primary is a step of every planned migration (the
        // old primary is demoted first), not a failure: a Normal Event, once.
        Operation::Demoted { resync: Err(e), .. } | Operation::Resynced(Err(e))
            if e.class() == ErrorClass::FailedPrecondition =>
        {
            if changed {
                notes.push(normal("WaitingForPrimary", "Resync", e.to_string()));
            }
        }
        Operation::Demoted { resync: Err(e), .. } | Operation::Resynced(Err(e)) => {
            notes.push(warning("FailedToResync", "Resync", e.to_string()));
        }
        Operation::DemoteFailed(e) => notes.push(warning("FailedToDemote", "Demote", e.to_string())),
        Operation::Resynced(Ok(true)) if changed => {
            notes.push(normal("Resynced", "Resync", "resync finished; in sync with the primary"))
        }
        Operation::Resynced(Ok(false)) if changed => {
            notes.push(normal("ResyncTriggered", "Resync", "resync started"))
        }
        Operation::Resynced(Ok(_)) => {}
        Operation::Rejected { reason, message } => notes.push(warning(reason, "Validate", message.clone())),
    }
    let replicating = |s: &VolumeReplicationStatus| {
        find_condition(&s.conditions, ConditionType::Replicating.as_str()).map(|c| c.status.clone())
    };
    let (before, after) = (replicating(old), replicating(new));
    if before != after {
        // One Event per transition: a promotion that is replicating at once says so in its own
        // Event instead of a second one.
        let announced = notes.iter_mut().find(|n| !n.warning);
        match (after.as_deref(), announced) {
            (Some("True"), Some(note)) => {
                note.message = format!("{}; the driver reports replication healthy", note.message);
            }
            (Some("True"), None) => notes.push(normal(
                "Replicating",
                "GetInfo",
                "the driver reports replication healthy",
            )),
            (Some("False"), _) => notes.push(warning(
                "NotReplicating",
                "GetInfo",
                new.message
                    .clone()
                    .unwrap_or_else(|| "the driver reports replication degraded".into()),
            )),
            _ => {}
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_api::replication::CurrentState;

    fn status(state: CurrentState, replicating: Option<&str>) -> VolumeReplicationStatus {
        let mut s: VolumeReplicationStatus = serde_json::from_value(serde_json::json!({
            "state": state.as_str(),
        }))
        .unwrap();
        if let Some(r) = replicating {
            s.conditions = serde_json::from_value(serde_json::json!([{
                "type": "Replicating", "status": r, "reason": "x", "message": "",
                "lastTransitionTime": "2026-12-01T00:00:00Z"}]))
            .unwrap();
        }
        s
    }

    #[test]
    fn a_promotion_replicating_at_once_is_one_event() {
        let outcome = Outcome {
            operation: Operation::Promoted { forced: false },
            ..Outcome::nothing()
        };
        let old = status(CurrentState::Secondary, None);
        let new = status(CurrentState::Primary, Some("True"));
        let got = notes(&old, &new, &outcome);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].reason, "Promoted");
        assert!(
            got[0].message.contains("replication healthy"),
            "{:?}",
            got[0]
        );

        // Replicating later on its own: its own Event; not replicating: always a warning.
        let quiet = Outcome {
            operation: Operation::None,
            ..Outcome::nothing()
        };
        let later = notes(&status(CurrentState::Primary, None), &new, &quiet);
        assert_eq!(
            later.iter().map(|n| n.reason).collect::<Vec<_>>(),
            ["Replicating"]
        );
        let degraded = notes(&new, &status(CurrentState::Primary, Some("False")), &quiet);
        assert!(degraded[0].warning && degraded[0].reason == "NotReplicating");
    }

    #[test]
    fn waiting_for_the_peer_to_become_primary_is_a_normal_event_and_a_failure_a_warning() {
        let resync = |code: tonic::Code, message: &str| Outcome {
            operation: Operation::Demoted {
                force_resync: true,
                resync: Err(lifeline_csi_client::CsiError {
                    method: lifeline_csi_client::Method::ResyncVolume,
                    code,
                    message: message.into(),
                }),
            },
            ..Outcome::nothing()
        };
        let (old, new) = (
            status(CurrentState::Primary, None),
            status(CurrentState::Secondary, None),
        );
        let waiting = notes(
            &old,
            &new,
            &resync(
                tonic::Code::FailedPrecondition,
                "volume v is not primary at the peer site",
            ),
        );
        assert_eq!(waiting.len(), 1, "{waiting:?}");
        assert!(!waiting[0].warning, "an expected wait is not a warning");
        assert_eq!(waiting[0].reason, "WaitingForPrimary");
        // Once: no new Event while nothing changes.
        assert!(notes(&new, &new, &resync(tonic::Code::FailedPrecondition, "x")).is_empty());

        let failed = notes(&old, &new, &resync(tonic::Code::Unavailable, "link down"));
        assert!(failed[0].warning && failed[0].reason == "FailedToResync");
    }
}
