//! What happened in one reconcile, as plain data: the input to the pure status and Event
//! builders.

use std::time::SystemTime;

use lifeline_csi_client::{CsiError, Destination, ReplicationInfo};

/// The result of the state-changing calls of a plan.
#[derive(Clone, Debug, PartialEq)]
pub enum Operation {
    /// No state-changing call was due.
    None,
    /// Enable and Promote succeeded; `forced` when Promote needed `force=true` (disaster
    /// failover: the peer is unreachable or still primary).
    Promoted {
        forced: bool,
    },
    /// Enable failed; FAILED_PRECONDITION here means a prerequisite is not met.
    EnableFailed(CsiError),
    PromoteFailed(CsiError),
    /// Demote succeeded; then Resync answered `ready` or failed.
    Demoted {
        force_resync: bool,
        resync: Result<bool, CsiError>,
    },
    DemoteFailed(CsiError),
    /// Resync(force=true) answered `ready` or failed.
    Resynced(Result<bool, CsiError>),
    /// Our own check failed before any call (bad input, driver unusable); the message says
    /// what to fix, the reason names the problem in Events.
    Rejected {
        reason: &'static str,
        message: String,
    },
}

impl Operation {
    /// The call error, if a call failed.
    pub fn error(&self) -> Option<&CsiError> {
        match self {
            Operation::EnableFailed(e)
            | Operation::PromoteFailed(e)
            | Operation::DemoteFailed(e)
            | Operation::Demoted { resync: Err(e), .. }
            | Operation::Resynced(Err(e)) => Some(e),
            _ => None,
        }
    }
}

/// GetVolumeReplicationInfo's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum InfoOutcome {
    Info(ReplicationInfo),
    /// NOT_FOUND: the driver has no info yet (no sync happened).
    NotYet,
    /// UNIMPLEMENTED: the driver lacks the call; never ask again.
    Unimplemented,
    /// FAILED_PRECONDITION: the driver reports no sync facts for this volume in its role (the
    /// usual answer on a secondary; Lifeline's reference driver reports the sync it received).
    NotOffered,
    Failed(CsiError),
}

/// GetReplicationDestinationInfo's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum DestinationOutcome {
    Available(Destination),
    /// UNAVAILABLE: not known yet.
    Pending,
    Failed(CsiError),
}

/// Everything one reconcile did.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub operation: Operation,
    pub info: Option<InfoOutcome>,
    pub destination: Option<DestinationOutcome>,
    /// When the first state-changing call started and when the last one ended.
    pub started: Option<SystemTime>,
    pub finished: Option<SystemTime>,
}

impl Outcome {
    pub fn nothing() -> Self {
        Self {
            operation: Operation::None,
            info: None,
            destination: None,
            started: None,
            finished: None,
        }
    }

    pub fn rejected(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            operation: Operation::Rejected {
                reason,
                message: message.into(),
            },
            ..Self::nothing()
        }
    }
}
