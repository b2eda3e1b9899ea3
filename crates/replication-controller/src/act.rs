//! Carrying out a [`Plan`] against a driver. The only decision made here is the one the
//! contract ties to a call's answer: Promote FAILED_PRECONDITION → Promote(force=true) once.

use std::time::SystemTime;

use lifeline_csi_client::{CsiClient, ErrorClass, ReplicationRequest, code_name};

use crate::outcome::{DestinationOutcome, InfoOutcome, Operation, Outcome};
use crate::plan::Plan;

/// Which read-only calls the reconcile wants after the plan's state-changing calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reads {
    /// Ask GetVolumeReplicationInfo (the driver has not said it lacks it).
    pub info: bool,
    /// Ask GetReplicationDestinationInfo (a primary's, advertised, and not known yet).
    pub destination: bool,
}

pub async fn act(
    plan: Plan,
    client: &CsiClient,
    request: &ReplicationRequest,
    reads: Reads,
) -> Outcome {
    let mut outcome = Outcome::nothing();
    let started = SystemTime::now();
    match plan {
        Plan::Nothing => return outcome,
        Plan::RefreshInfo => {}
        Plan::Promote => {
            outcome.started = Some(started);
            outcome.operation = promote(client, request).await;
            outcome.finished = Some(SystemTime::now());
        }
        Plan::Demote {
            force_resync,
            already_demoted,
            enable,
        } => {
            outcome.started = Some(started);
            outcome.operation = match demote(client, request, already_demoted, enable).await {
                Err(e) => Operation::DemoteFailed(e),
                Ok(()) => Operation::Demoted {
                    force_resync,
                    resync: client.resync(request, force_resync).await,
                },
            };
            outcome.finished = Some(SystemTime::now());
        }
        Plan::Resync { enable } => {
            outcome.started = Some(started);
            let enabled = if enable {
                client.enable(request).await
            } else {
                Ok(())
            };
            outcome.operation = Operation::Resynced(match enabled {
                Ok(()) => client.resync(request, true).await,
                Err(e) => Err(e),
            });
            outcome.finished = Some(SystemTime::now());
        }
    }
    // In the desired state now: a primary reports what it shipped, a ready secondary what it
    // received.
    let settled = matches!(plan, Plan::RefreshInfo)
        || matches!(
            outcome.operation,
            Operation::Promoted { .. }
                | Operation::Demoted {
                    resync: Ok(true),
                    ..
                }
                | Operation::Resynced(Ok(true))
        );
    if settled && reads.info {
        outcome.info = Some(match client.replication_info(request).await {
            Ok(info) => InfoOutcome::Info(info),
            Err(e) => match e.class() {
                ErrorClass::NotFound => InfoOutcome::NotYet,
                ErrorClass::NotImplemented => InfoOutcome::Unimplemented,
                ErrorClass::FailedPrecondition => InfoOutcome::NotOffered,
                _ => InfoOutcome::Failed(e),
            },
        });
    }
    if settled && reads.destination {
        outcome.destination = match client.destination_info(request).await {
            Ok(destination) => Some(DestinationOutcome::Available(destination)),
            Err(e) if e.class() == ErrorClass::NotImplemented => None,
            // UNAVAILABLE here means the destination is not known yet.
            Err(e) if code_name(e.code) == "UNAVAILABLE" => Some(DestinationOutcome::Pending),
            Err(e) => Some(DestinationOutcome::Failed(e)),
        };
    }
    outcome
}

async fn demote(
    client: &CsiClient,
    request: &ReplicationRequest,
    already_demoted: bool,
    enable: bool,
) -> Result<(), lifeline_csi_client::CsiError> {
    if already_demoted {
        return Ok(());
    }
    if enable {
        client.enable(request).await?;
    }
    client.demote(request, false).await
}

async fn promote(client: &CsiClient, request: &ReplicationRequest) -> Operation {
    if let Err(e) = client.enable(request).await {
        return Operation::EnableFailed(e);
    }
    match client.promote(request, false).await {
        Ok(()) => Operation::Promoted { forced: false },
        // The peer is unreachable or still primary: this is the disaster failover.
        Err(e) if e.class() == ErrorClass::FailedPrecondition => {
            tracing::warn!(error = %e, "promote refused; promoting with force (disaster failover)");
            match client.promote(request, true).await {
                Ok(()) => Operation::Promoted { forced: true },
                Err(e) => Operation::PromoteFailed(e),
            }
        }
        Err(e) => Operation::PromoteFailed(e),
    }
}
