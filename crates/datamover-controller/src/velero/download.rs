//! The DataDownload state machine. Pure: the reconcile fetches, calls [`decide`], applies.
//!
//! As Velero's own mover does: restore into a working claim in Velero's namespace (a VolSync
//! restic ReplicationDestination, `copyMethod: Direct`, the point in time from `snapshotID`),
//! keep its volume (reclaim policy `Retain`), let the working claim go, then hand the volume
//! to the claim Velero restored: `claimRef` to it, the label its selector asks for
//! (`velero.io/dynamic-pv-restore`), and once it is bound the reclaim policy it had (while it
//! is `Released`, a `Delete` policy would have the provisioner delete it).

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::jiff::Timestamp;
use lifeline_api::foreign::velero::{
    DYNAMIC_PV_RESTORE, DataDownload, DataMovePhase, DataMoveProgress,
};
use lifeline_api::foreign::volsync::ReplicationDestination;

use super::location::LocationError;
use super::request::{SnapshotRef, Stage, is_ours, stage, timed_out};

/// Label (Lifeline's) on the volume a DataDownload restored into, valued with its uid: how the
/// volume is found again once the working claim is gone.
pub const RESTORED_BY: &str = "datamover.io/data-download";
/// Annotation (Lifeline's) on that volume: the reclaim policy to give back at hand-over.
pub const RECLAIM_POLICY: &str = "datamover.io/reclaim-policy";

#[derive(Clone, Debug)]
pub struct Observed {
    pub dd: DataDownload,
    pub mover: String,
    pub now: Timestamp,
    pub served: Result<(), String>,
    /// `None` when not read (nothing to create).
    pub keys: Option<Result<(), LocationError>>,
    /// The claim Velero restored, which gets the data.
    pub target: Option<PersistentVolumeClaim>,
    pub secret: bool,
    /// The working claim the mover restores into, and the volume bound to it.
    pub claim: Option<PersistentVolumeClaim>,
    pub claim_volume: Option<PersistentVolume>,
    pub destination: Option<ReplicationDestination>,
    /// The volume labelled [`RESTORED_BY`] this request.
    pub volume: Option<PersistentVolume>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leftover {
    Destination,
    Claim,
    Secret,
    /// A volume restored but never handed over: its reclaim policy goes back to `Delete`, so
    /// the storage is freed once it is released.
    Volume,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Ignore,
    Take,
    CancelUntaken,
    ReadLocation,
    Fail(String),
    Wait(&'static str),
    /// Create what is missing (phase `Prepared`).
    Create {
        secret: bool,
        claim: bool,
        destination: bool,
    },
    /// The mover runs: `InProgress`, and its progress when due.
    Running,
    /// Restored: keep the working claim's volume (`Retain`, labelled).
    Keep,
    /// The volume is kept: let the destination and working claim go.
    Release,
    /// The working claim is gone: give the volume to Velero's claim.
    HandOver,
    Complete,
    Cancel,
    CleanUp(Vec<Leftover>),
    Canceled,
}

fn handed_over(volume: &PersistentVolume, target: (&str, &str)) -> bool {
    volume
        .spec
        .as_ref()
        .and_then(|s| s.claim_ref.as_ref())
        .is_some_and(|r| {
            r.namespace.as_deref() == Some(target.0) && r.name.as_deref() == Some(target.1)
        })
}

fn target_of(dd: &DataDownload) -> (String, String) {
    let target = dd.spec.target_volume.clone().unwrap_or_default();
    (
        target.namespace.unwrap_or_default(),
        target.pvc.unwrap_or_default(),
    )
}

fn leftovers(observed: &Observed) -> Vec<Leftover> {
    let mut left = Vec::new();
    if observed.destination.is_some() {
        left.push(Leftover::Destination);
    }
    if observed.claim.is_some() {
        left.push(Leftover::Claim);
    }
    if observed.secret {
        left.push(Leftover::Secret);
    }
    let (ns, pvc) = target_of(&observed.dd);
    if let Some(volume) = &observed.volume
        && !handed_over(volume, (&ns, &pvc))
    {
        left.push(Leftover::Volume);
    }
    left
}

/// The restore's point in time, from `spec.snapshotID`.
pub fn point_in_time(dd: &DataDownload) -> Result<SnapshotRef, String> {
    SnapshotRef::parse(dd.spec.snapshot_id.as_deref().unwrap_or_default())
}

pub fn decide(observed: &Observed) -> Decision {
    let dd = &observed.dd;
    if !is_ours(dd.spec.datamover.as_deref(), &observed.mover) {
        return Decision::Ignore;
    }
    let status = dd.status.clone().unwrap_or_default();
    let cancel = dd.spec.cancel == Some(true);
    let moving = match stage(status.phase.as_ref()) {
        Stage::Foreign => return Decision::Ignore,
        Stage::Finished(_) => {
            let left = leftovers(observed);
            return if left.is_empty() {
                Decision::Ignore
            } else {
                Decision::CleanUp(left)
            };
        }
        Stage::Untaken if cancel => return Decision::CancelUntaken,
        Stage::Untaken => return Decision::Take,
        Stage::Canceling => {
            let left = leftovers(observed);
            return if left.is_empty() {
                Decision::Canceled
            } else {
                Decision::CleanUp(left)
            };
        }
        Stage::Moving(phase) => phase,
    };
    let (ns, pvc) = target_of(dd);
    // Once the volume is Velero's claim's, a cancel or a time limit can only lose the data.
    if let Some(volume) = &observed.volume
        && handed_over(volume, (&ns, &pvc))
    {
        let bound = observed.target.as_ref().is_some_and(|t| {
            t.spec.as_ref().and_then(|s| s.volume_name.as_deref())
                == volume.metadata.name.as_deref()
                && t.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
        });
        return if bound {
            Decision::Complete
        } else {
            Decision::Wait("the restored claim to bind to its volume")
        };
    }
    if cancel {
        return Decision::Cancel;
    }
    // As Velero's own mover: the limit is on preparing (`Accepted`), not on moving the data.
    if moving == DataMovePhase::Accepted
        && let Some(message) = timed_out(
            dd.spec.operation_timeout.as_deref(),
            status.accepted_timestamp.as_ref(),
            observed.now,
        )
    {
        return Decision::Fail(message);
    }
    if let Err(message) = &observed.served {
        return Decision::Fail(message.clone());
    }
    if let Err(message) = required(dd) {
        return Decision::Fail(message);
    }
    let Some(target) = &observed.target else {
        return Decision::Wait("Velero to create the claim it restores");
    };
    if let Err(message) = restorable(target) {
        return Decision::Fail(message);
    }
    if observed.volume.is_some() {
        // Kept, not yet handed over.
        return if observed.claim.is_some() || observed.destination.is_some() {
            Decision::Release
        } else {
            Decision::HandOver
        };
    }
    if let Some(destination) = &observed.destination {
        let sync = destination
            .status
            .as_ref()
            .map(|s| s.sync.clone())
            .unwrap_or_default();
        if sync.last_manual_sync.as_deref() == dd.metadata.name.as_deref() {
            return if observed.claim_volume.is_some() {
                Decision::Keep
            } else {
                Decision::Wait("the working claim's volume")
            };
        }
        if let Some(message) = crate::mover_failure::final_failure(&sync) {
            return Decision::Fail(message);
        }
    }
    let missing = (
        !observed.secret,
        observed.claim.is_none(),
        observed.destination.is_none(),
    );
    if missing.0 || missing.1 || missing.2 {
        match &observed.keys {
            None if missing.0 => return Decision::ReadLocation,
            Some(Err(error)) => return Decision::Fail(error.to_string()),
            _ => {}
        }
        return Decision::Create {
            secret: missing.0,
            claim: missing.1,
            destination: missing.2,
        };
    }
    Decision::Running
}

fn required(dd: &DataDownload) -> Result<(), String> {
    let spec = &dd.spec;
    let set = |value: Option<&str>| value.is_some_and(|v| !v.trim().is_empty());
    let target = spec.target_volume.clone().unwrap_or_default();
    if !set(target.pvc.as_deref()) || !set(target.namespace.as_deref()) {
        return Err(
            "spec.targetVolume.pvc and .namespace must name the claim to restore into".into(),
        );
    }
    if !set(spec.source_namespace.as_deref()) {
        return Err("spec.sourceNamespace is not set".into());
    }
    if !set(spec.backup_storage_location.as_deref()) {
        return Err("spec.backupStorageLocation is not set".into());
    }
    point_in_time(dd).map(|_| ())
}

/// The restic mover restores files: a block-mode claim cannot take them.
fn restorable(target: &PersistentVolumeClaim) -> Result<(), String> {
    let spec = target.spec.clone().unwrap_or_default();
    if spec.volume_mode.as_deref() == Some("Block") {
        return Err("the claim to restore into is volumeMode Block: the restic mover moves files, not raw blocks".into());
    }
    if spec.volume_name.as_deref().is_some_and(|v| !v.is_empty()) {
        return Err(
            "the claim to restore into is already bound to a volume; Velero restores it unbound"
                .into(),
        );
    }
    Ok(())
}

/// The value of the label Velero's claim selects its volume by.
pub fn restore_label(target: &PersistentVolumeClaim) -> Option<String> {
    target
        .spec
        .as_ref()?
        .selector
        .as_ref()?
        .match_labels
        .as_ref()?
        .get(DYNAMIC_PV_RESTORE)
        .cloned()
}

/// Velero's progress columns from the mover's counts; the total is the snapshot's size when
/// the mover has not counted it.
pub fn progress_of(
    counts: Option<crate::progress::Counts>,
    snapshot_size: Option<i64>,
) -> DataMoveProgress {
    DataMoveProgress {
        total_bytes: counts
            .and_then(|c| c.bytes_total)
            .map(|b| b as i64)
            .or(snapshot_size),
        bytes_done: counts.map(|c| c.bytes_done as i64),
    }
}

/// Where a phase may go next: never back.
pub fn forward(current: Option<DataMovePhase>, next: DataMovePhase) -> bool {
    let rank = |p: Option<DataMovePhase>| match p {
        Some(DataMovePhase::Accepted) => 1,
        Some(DataMovePhase::Prepared) => 2,
        Some(DataMovePhase::InProgress) => 3,
        _ => 0,
    };
    rank(Some(next)) > rank(current)
}

pub mod build;
#[cfg(test)]
mod tests;
