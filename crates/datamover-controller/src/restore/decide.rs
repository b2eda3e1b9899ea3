//! The restore state machine. Pure; the reconcile fetches, calls [`decide`], applies.

use std::collections::BTreeMap;

use kube::ResourceExt;
use lifeline_api::datamover::{BatchingStatus, RestorePhase, VolumeSnapshotRestore};
use lifeline_api::foreign::snapshot::{VolumeSnapshot, VolumeSnapshotContent};
use lifeline_api::foreign::volsync::{MoverResult, ReplicationDestination, SynchronizingReason};

use crate::problem::Problem;
use crate::repository::ResticSecret;

#[derive(Clone, Debug, Default)]
pub struct Working {
    pub secret: bool,
    pub destination: Option<ReplicationDestination>,
    /// The restored snapshot (`latestImage`) and its bound content, once there.
    pub restored: Option<VolumeSnapshot>,
    pub restored_content: Option<VolumeSnapshotContent>,
}

impl Working {
    pub fn any(&self) -> bool {
        self.secret || self.destination.is_some() || self.restored.is_some()
    }
}

#[derive(Clone, Debug)]
pub struct Observed {
    pub vsr: VolumeSnapshotRestore,
    pub protected_namespace_exists: bool,
    pub volsync_installed: bool,
    pub snapshot_class_exists: Option<bool>,
    pub user_secret: Option<BTreeMap<String, Vec<u8>>>,
    pub working: Working,
    pub admitted: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    Secret,
    ReplicationDestination,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Settled,
    Reject(Problem),
    Queue,
    Start,
    Create(Vec<Object>),
    Wait(&'static str),
    /// Restored: publish the snapshot handle and content name.
    Done {
        snapshot_handle: String,
        content: String,
    },
    Fail(String),
    CleanUp,
    Complete,
    Release,
}

pub fn decide(observed: &Observed) -> Decision {
    let vsr = &observed.vsr;
    let status = vsr.status.clone().unwrap_or_default();
    let working = &observed.working;
    if vsr.metadata.deletion_timestamp.is_some() {
        return if working.any() {
            Decision::CleanUp
        } else {
            Decision::Release
        };
    }
    match status.phase {
        Some(RestorePhase::Completed) | Some(RestorePhase::PartiallyFailed) => {
            return Decision::Settled;
        }
        Some(RestorePhase::Failed) => {
            return if working.any() {
                Decision::CleanUp
            } else {
                Decision::Settled
            };
        }
        Some(RestorePhase::SnapshotRestoreDone) | Some(RestorePhase::Cleanup) => {
            return if working.any() {
                Decision::CleanUp
            } else {
                Decision::Complete
            };
        }
        Some(RestorePhase::InProgress) | None => {}
    }
    if let Err(problem) = check_inputs(observed) {
        return Decision::Reject(problem);
    }
    if status.batching_status != Some(BatchingStatus::Processing) {
        return if observed.admitted {
            Decision::Start
        } else {
            Decision::Queue
        };
    }
    let missing: Vec<Object> = [
        (working.secret, Object::Secret),
        (
            working.destination.is_some(),
            Object::ReplicationDestination,
        ),
    ]
    .into_iter()
    .filter(|(exists, _)| !exists)
    .map(|(_, o)| o)
    .collect();
    if !missing.is_empty() {
        return Decision::Create(missing);
    }
    let destination = working.destination.as_ref().expect("present");
    let sync = destination
        .status
        .as_ref()
        .map(|s| s.sync.clone())
        .unwrap_or_default();
    if sync.last_manual_sync.as_deref() == Some(vsr.name_any().as_str()) {
        let handle = working
            .restored_content
            .as_ref()
            .and_then(|c| c.status.as_ref())
            .and_then(|s| s.snapshot_handle.clone());
        return match (handle, &working.restored_content) {
            (Some(snapshot_handle), Some(content)) => Decision::Done {
                snapshot_handle,
                content: content.name_any(),
            },
            _ => Decision::Wait("the restored snapshot is not bound yet"),
        };
    }
    let failed = sync
        .conditions
        .iter()
        .find(|c| c.reason == SynchronizingReason::Error.as_str())
        .map(|c| c.message.clone())
        .or_else(|| {
            sync.latest_mover_status
                .filter(|m| m.result == Some(MoverResult::Failed))
                .map(|m| m.logs.unwrap_or_else(|| "the restic mover failed".into()))
        });
    match failed {
        Some(message) => Decision::Fail(message),
        None => Decision::Wait("the restic mover is running"),
    }
}

fn check_inputs(observed: &Observed) -> Result<(), Problem> {
    let spec = &observed.vsr.spec;
    if !observed.volsync_installed {
        return Err(Problem::VolSyncMissing);
    }
    if !observed.protected_namespace_exists {
        return Err(Problem::ProtectedNamespaceMissing(
            spec.protected_namespace.clone(),
        ));
    }
    if spec
        .volume_snapshot_mover_backup_ref
        .restic_repository
        .as_deref()
        .is_none_or(str::is_empty)
    {
        return Err(Problem::NoRepositoryToRestore);
    }
    let name = spec
        .restic_secret_ref
        .as_ref()
        .map(|r| r.name.clone())
        .unwrap_or_default();
    let Some(data) = &observed.user_secret else {
        return Err(Problem::SecretMissing {
            namespace: spec.protected_namespace.clone(),
            name,
        });
    };
    ResticSecret::parse(data).map_err(|source| Problem::SecretInvalid { name, source })?;
    if observed.snapshot_class_exists == Some(false) {
        let class = spec
            .volume_snapshot_mover_backup_ref
            .volume_snapshot_class_name
            .clone()
            .unwrap_or_default();
        return Err(Problem::SnapshotClassMissing(class));
    }
    Ok(())
}
