//! The DataUpload state machine. Pure: the reconcile fetches, calls [`decide`], applies.
//!
//! A DataUpload is served through a VolumeSnapshotBackup the mover makes beside it (owned by
//! it, in Velero's namespace) with a restic Secret derived from the BackupStorageLocation: the
//! same pipeline, queue, progress and cleanup as every VolumeSnapshotBackup. Its phases are
//! mirrored into Velero's; when it ends, the backup, the Secret and the snapshot Velero took
//! are deleted, as Velero's built-in mover does.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use lifeline_api::datamover::{BackupPhase, BatchingStatus, MoverPhase, VolumeSnapshotBackup};
use lifeline_api::foreign::snapshot::VolumeSnapshot;
use lifeline_api::foreign::velero::{DataMovePhase, DataMoveProgress, DataUpload};

use super::location::LocationError;
use super::request::{SnapshotRef, Stage, is_ours, stage, timed_out};

/// Annotation (Lifeline's) on a VolumeSnapshotBackup: the restic snapshot id its mover wrote.
pub const RESTIC_SNAPSHOT_ID: &str = "datamover.io/restic-snapshot-id";

/// Everything [`decide`] needs, fetched by the reconcile.
#[derive(Clone, Debug)]
pub struct Observed {
    pub du: DataUpload,
    pub mover: String,
    pub now: Timestamp,
    /// Whether this controller works in the request's namespace (`--protected-namespace`).
    pub served: Result<(), String>,
    /// The restic keys from the location; `None` when not fetched (nothing to create).
    pub keys: Option<Result<(), LocationError>>,
    /// Velero's snapshot in `spec.sourceNamespace`.
    pub snapshot: Option<VolumeSnapshot>,
    pub backup: Option<VolumeSnapshotBackup>,
    pub secret: bool,
    /// `spec.sourcePVC` is `volumeMode: Block` (read with the location).
    pub source_block: bool,
}

/// What is left of a request's transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leftover {
    Backup,
    Secret,
    Snapshot,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Not ours, or nothing to do.
    Ignore,
    /// `New` → `Accepted`, only if nobody changed it since it was read.
    Take,
    /// Cancelled before anyone took it: `Canceled` (also conflict-safe).
    CancelUntaken,
    /// Create what is missing; `Prepared` once the backup exists.
    Create {
        secret: bool,
        backup: bool,
    },
    Wait(&'static str),
    /// The location, the mover's ConfigMap and their Secrets are needed to go on.
    ReadLocation,
    /// Phase, progress and message from the backup, written when they differ.
    Mirror {
        phase: DataMovePhase,
        progress: Option<DataMoveProgress>,
        message: Option<String>,
    },
    /// The data is in the repository.
    Complete {
        snapshot_id: String,
        result: BTreeMap<String, String>,
        progress: Option<DataMoveProgress>,
    },
    Fail(String),
    /// `Canceling`, and the backup deleted (its finalizer removes its working objects).
    Cancel,
    /// Delete what is left, one kind after another: the backup first (its mover may still
    /// read the snapshot), then the Secret and Velero's snapshot.
    CleanUp(Vec<Leftover>),
    /// Nothing left after a cancel.
    Canceled,
}

fn leftovers(observed: &Observed, finished: Option<DataMovePhase>) -> Vec<Leftover> {
    if observed.backup.is_some() {
        return vec![Leftover::Backup];
    }
    let mut left = Vec::new();
    if observed.secret {
        left.push(Leftover::Secret);
    }
    // Velero's snapshot goes once the request ends; only the one Velero made for this backup.
    let backup_of = |labels: Option<&BTreeMap<String, String>>| {
        labels.and_then(|l| l.get("velero.io/backup-name")).cloned()
    };
    if finished.is_some()
        && let Some(snapshot) = &observed.snapshot
        && backup_of(snapshot.metadata.labels.as_ref())
            == backup_of(observed.du.metadata.labels.as_ref())
        && snapshot.metadata.deletion_timestamp.is_none()
    {
        left.push(Leftover::Snapshot);
    }
    left
}

pub fn decide(observed: &Observed) -> Decision {
    let du = &observed.du;
    if !is_ours(du.spec.datamover.as_deref(), &observed.mover) {
        return Decision::Ignore;
    }
    let status = du.status.clone().unwrap_or_default();
    let cancel = du.spec.cancel == Some(true);
    let moving = match stage(status.phase.as_ref()) {
        Stage::Foreign => return Decision::Ignore,
        Stage::Finished(phase) => {
            let left = leftovers(observed, Some(phase));
            return if left.is_empty() {
                Decision::Ignore
            } else {
                Decision::CleanUp(left)
            };
        }
        Stage::Untaken if cancel => return Decision::CancelUntaken,
        Stage::Untaken => return Decision::Take,
        Stage::Canceling => {
            let left = leftovers(observed, Some(DataMovePhase::Canceled));
            return if left.is_empty() {
                Decision::Canceled
            } else {
                Decision::CleanUp(left)
            };
        }
        Stage::Moving(phase) => phase,
    };
    if cancel {
        return Decision::Cancel;
    }
    // As Velero's own mover: the limit is on preparing (`Accepted`), not on moving the data.
    if moving == DataMovePhase::Accepted
        && let Some(message) = timed_out(
            du.spec.operation_timeout.as_deref(),
            status.accepted_timestamp.as_ref(),
            observed.now,
        )
    {
        return Decision::Fail(message);
    }
    if let Some(backup) = &observed.backup {
        return follow(backup, moving);
    }
    if let Err(message) = &observed.served {
        return Decision::Fail(message.clone());
    }
    if let Err(message) = required(du) {
        return Decision::Fail(message);
    }
    match &observed.keys {
        Some(Err(error)) => return Decision::Fail(error.to_string()),
        None => return Decision::ReadLocation,
        Some(Ok(())) => {}
    }
    if observed.source_block {
        return Decision::Fail(format!(
            "claim {}/{} (spec.sourcePVC) is volumeMode Block: the restic mover moves files, not raw blocks; leave block claims to Velero's built-in mover",
            du.spec.source_namespace.as_deref().unwrap_or_default(),
            du.spec.source_pvc.as_deref().unwrap_or_default()
        ));
    }
    let Some(snapshot) = &observed.snapshot else {
        return Decision::Fail(format!(
            "VolumeSnapshot {}/{} (spec.csiSnapshot.volumeSnapshot) not found",
            du.spec.source_namespace.as_deref().unwrap_or_default(),
            du.spec
                .csi_snapshot
                .as_ref()
                .and_then(|c| c.volume_snapshot.as_deref())
                .unwrap_or_default()
        ));
    };
    let ready = snapshot.status.as_ref().is_some_and(|s| {
        s.ready_to_use == Some(true) && s.bound_volume_snapshot_content_name.is_some()
    });
    if !ready {
        return Decision::Wait("Velero's snapshot to be ready");
    }
    Decision::Create {
        secret: !observed.secret,
        backup: true,
    }
}

/// The fields Velero's CRD requires and this mover needs, before anything is made.
fn required(du: &DataUpload) -> Result<(), String> {
    let spec = &du.spec;
    let kind = spec.snapshot_type.as_deref().unwrap_or_default();
    if kind != "CSI" {
        return Err(format!(
            "spec.snapshotType is {kind:?}: this mover moves CSI snapshots only (\"CSI\")"
        ));
    }
    let set = |value: Option<&str>| value.is_some_and(|v| !v.trim().is_empty());
    if !set(spec
        .csi_snapshot
        .as_ref()
        .and_then(|c| c.volume_snapshot.as_deref()))
    {
        return Err("spec.csiSnapshot.volumeSnapshot is not set".into());
    }
    if !set(spec.source_namespace.as_deref()) {
        return Err("spec.sourceNamespace is not set".into());
    }
    if !set(spec.backup_storage_location.as_deref()) {
        return Err("spec.backupStorageLocation is not set".into());
    }
    Ok(())
}

/// Velero's phase and progress from the backup's.
fn follow(backup: &VolumeSnapshotBackup, current: DataMovePhase) -> Decision {
    let status = backup.status.clone().unwrap_or_default();
    let mover = status.progress.clone();
    let progress = mover.as_ref().map(|p| DataMoveProgress {
        total_bytes: p.bytes_total.map(|b| b as i64),
        bytes_done: p.bytes_done.map(|b| b as i64),
    });
    let message =
        crate::reconcile::shared::first_message(Some(&status.conditions)).map(str::to_owned);
    match status.phase() {
        Some(BackupPhase::Failed | BackupPhase::PartiallyFailed) => {
            return Decision::Fail(message.unwrap_or_else(|| "the backup failed".into()));
        }
        Some(BackupPhase::Completed) => {
            let notes = backup.metadata.annotations.clone().unwrap_or_default();
            let as_of = notes
                .get(crate::restore::build::RESTORE_AS_OF)
                .and_then(|t| t.parse::<Timestamp>().ok());
            let Some(as_of) = as_of else {
                return Decision::Fail(
                    "the backup completed without its point in time; run the backup again".into(),
                );
            };
            let reference = SnapshotRef {
                restic_id: notes.get(RESTIC_SNAPSHOT_ID).cloned(),
                as_of,
            };
            let mut result: BTreeMap<String, String> = BTreeMap::new();
            result.insert("restoreAsOf".into(), as_of.to_string());
            if let Some(id) = &reference.restic_id {
                result.insert("resticSnapshotID".into(), id.clone());
            }
            if let Some(repository) = status.restic_repository {
                result.insert("repository".into(), repository);
            }
            if let Some(claim) = notes.get(lifeline_api::datamover::annotations::SOURCE_PVC_NAME) {
                result.insert("sourcePVC".into(), claim.clone());
            }
            return Decision::Complete {
                snapshot_id: reference.to_id(),
                result,
                progress,
            };
        }
        _ => {}
    }
    let started = status.batching() == Some(BatchingStatus::Processing);
    let moving = matches!(
        status.phase(),
        Some(BackupPhase::SnapshotBackupDone | BackupPhase::Cleanup)
    ) || mover
        .as_ref()
        .and_then(|p| p.phase.as_ref())
        .and_then(|p| p.known())
        .is_some_and(|p| p != MoverPhase::Preparing);
    let phase = match (started, moving) {
        (_, true) => DataMovePhase::InProgress,
        (true, false) => DataMovePhase::Prepared,
        (false, false) => DataMovePhase::Accepted,
    };
    // Never back: a phase Velero has seen stays.
    let order = |p: DataMovePhase| match p {
        DataMovePhase::Accepted => 1,
        DataMovePhase::Prepared => 2,
        DataMovePhase::InProgress => 3,
        _ => 0,
    };
    let phase = if order(phase) < order(current) {
        current
    } else {
        phase
    };
    let message = match status.batching() {
        Some(BatchingStatus::Queued) => {
            Some("waiting for a backup slot (--max-concurrent-backups)".to_owned())
        }
        _ => message,
    };
    Decision::Mirror {
        phase,
        progress,
        message,
    }
}

#[cfg(test)]
mod tests;
