//! The backup state machine: from what was observed, the one next thing to do. Pure; the
//! reconcile fetches, calls [`decide`], applies, and comes back on the next watch event.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use lifeline_api::datamover::{BackupPhase, BatchingStatus, VolumeSnapshotBackup};
use lifeline_api::foreign::snapshot::VolumeSnapshotContent;
use lifeline_api::foreign::volsync::ReplicationSource;
use lifeline_api::open::Open;

use crate::problem::{Problem, restic_secret_named};
use crate::repository::{Form, ResticSecret};

/// Which working objects exist, and the ReplicationSource as it is.
#[derive(Clone, Debug, Default)]
pub struct Working {
    pub content: bool,
    pub snapshot: bool,
    pub pvc: bool,
    pub secret: bool,
    pub source: Option<ReplicationSource>,
}

impl Working {
    pub fn any(&self) -> bool {
        self.content || self.snapshot || self.pvc || self.secret || self.source.is_some()
    }
}

/// Everything the decision needs, fetched by the reconcile.
#[derive(Clone, Debug)]
pub struct Observed {
    pub vsb: VolumeSnapshotBackup,
    pub protected_namespace_exists: bool,
    pub volsync_installed: bool,
    pub source_content: Option<VolumeSnapshotContent>,
    /// The claim the user's snapshot was taken of, found through the content's VolumeSnapshot.
    pub source_pvc: Option<PersistentVolumeClaim>,
    /// `None` when the content names no class.
    pub snapshot_class_exists: Option<bool>,
    /// The user's restic Secret's data, if it exists.
    pub user_secret: Option<crate::secret_data::SecretData>,
    /// OADP's ConfigMap for the source claim's storage class: (name, data), if it exists.
    pub storage_config: Option<(String, BTreeMap<String, String>)>,
    pub working: Working,
    /// Whether a concurrency slot is free for this backup (counted from the cluster).
    pub admitted: bool,
    /// When a queued backup looks again: sooner when it only waits for the previous backup of
    /// its volume to reach its point in time.
    pub queued_recheck: std::time::Duration,
}

/// What to create, in dependency order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    Content,
    Snapshot,
    Pvc,
    Secret,
    ReplicationSource,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Final and clean: nothing to do.
    Settled,
    /// Bad input: condition and Event; waits for a change.
    Reject(Problem),
    /// No concurrency slot: `batchingStatus: Queued`.
    Queue,
    /// A slot is free: `phase: InProgress`, `batchingStatus: Processing`, start time.
    Start,
    Create(Vec<Object>),
    /// Waiting is not failing: for the source snapshot, the mover, …
    Wait(&'static str),
    /// The mover is moving the data: report its progress.
    Running,
    /// The mover finished this backup's trigger.
    Done,
    /// The mover failed; the message is the mover's (secret values stripped).
    Fail(String),
    /// Delete every working object (phase `Cleanup`, or after a failure, or on deletion).
    CleanUp,
    /// All working objects gone after success: `Completed`.
    Complete,
    /// Deleting and clean: drop the finalizer.
    Release,
}

/// The mover's verdict on this backup's trigger, if it has one.
pub fn mover_result(source: &ReplicationSource, trigger: &str) -> Option<Result<(), String>> {
    let status = source.status.as_ref()?;
    if status.sync.last_manual_sync.as_deref() == Some(trigger) {
        return Some(Ok(()));
    }
    crate::mover_failure::final_failure(&status.sync).map(Err)
}

pub fn decide(observed: &Observed) -> Decision {
    let vsb = &observed.vsb;
    let status = vsb.status.clone().unwrap_or_default();
    let working = &observed.working;
    if vsb.metadata.deletion_timestamp.is_some() {
        return if working.any() {
            Decision::CleanUp
        } else {
            Decision::Release
        };
    }
    if matches!(status.phase, Some(Open::Unknown(_))) {
        // A phase Lifeline never writes: another controller owns this request.
        return Decision::Settled;
    }
    match status.phase() {
        Some(BackupPhase::Completed) | Some(BackupPhase::PartiallyFailed) => {
            return Decision::Settled;
        }
        Some(BackupPhase::Failed) => {
            return if working.any() {
                Decision::CleanUp
            } else {
                Decision::Settled
            };
        }
        Some(BackupPhase::SnapshotBackupDone) | Some(BackupPhase::Cleanup) => {
            if working.any() {
                return Decision::CleanUp;
            }
            // The next backup of this volume waits until this one's point in time has passed
            // (admission), so this one completes at once.
            return Decision::Complete;
        }
        Some(BackupPhase::InProgress) | None => {}
    }
    if let Err(problem) = check_inputs(observed) {
        return Decision::Reject(problem);
    }
    let Some(content) = &observed.source_content else {
        unreachable!("checked above")
    };
    let ready = content
        .status
        .as_ref()
        .is_some_and(|s| s.ready_to_use == Some(true) && s.snapshot_handle.is_some());
    if !ready {
        return Decision::Wait("the source snapshot is not ready yet");
    }
    if status.batching() != Some(BatchingStatus::Processing) {
        return if observed.admitted {
            Decision::Start
        } else {
            Decision::Queue
        };
    }
    let missing: Vec<Object> = [
        (working.content, Object::Content),
        (working.snapshot, Object::Snapshot),
        (working.pvc, Object::Pvc),
        (working.secret, Object::Secret),
        (working.source.is_some(), Object::ReplicationSource),
    ]
    .into_iter()
    .filter(|(exists, _)| !exists)
    .map(|(_, object)| object)
    .collect();
    if !missing.is_empty() {
        return Decision::Create(missing);
    }
    let source = working.source.as_ref().expect("present");
    match mover_result(source, &vsb.name_any()) {
        Some(Ok(())) => Decision::Done,
        // Scrubbed here: decisions are logged, and the mover's text may quote the Secret.
        Some(Err(message)) => Decision::Fail(crate::secret_data::scrubbed(
            message,
            observed.user_secret.as_ref(),
        )),
        None => Decision::Running,
    }
}

/// Fields the schema does not require (as upstream's) but a backup cannot do without, checked
/// before anything is fetched.
pub fn required_fields(vsb: &VolumeSnapshotBackup) -> Result<(), Problem> {
    let content = vsb.spec.volume_snapshot_content.name.as_deref();
    if content.is_none_or(|n| n.trim().is_empty()) {
        return Err(Problem::FieldMissing {
            field: "spec.volumeSnapshotContent.name",
            fix: "name the VolumeSnapshotContent to back up",
        });
    }
    restic_secret_named(vsb.spec.restic_secret_ref.as_ref())
}

/// Bad inputs, in the order a user would fix them.
fn check_inputs(observed: &Observed) -> Result<(), Problem> {
    let spec = &observed.vsb.spec;
    if !observed.volsync_installed {
        return Err(Problem::VolSyncMissing);
    }
    if !observed.protected_namespace_exists {
        return Err(Problem::ProtectedNamespaceMissing(
            spec.protected_namespace.clone(),
        ));
    }
    let secret_name = spec
        .restic_secret_ref
        .as_ref()
        .map(|r| r.name.clone())
        .unwrap_or_default();
    let Some(data) = &observed.user_secret else {
        return Err(Problem::SecretMissing {
            namespace: spec.protected_namespace.clone(),
            name: secret_name,
        });
    };
    let secret = ResticSecret::parse(data).map_err(|source| Problem::SecretInvalid {
        name: secret_name,
        source,
    })?;
    if secret.form == Form::Local {
        return Err(Problem::LocalRepository {
            what: "RESTIC_REPOSITORY of the restic Secret",
        });
    }
    let content_name = spec
        .volume_snapshot_content
        .name
        .clone()
        .unwrap_or_default();
    let Some(content) = &observed.source_content else {
        return Err(Problem::ContentMissing(content_name));
    };
    if observed.snapshot_class_exists == Some(false) {
        return Err(Problem::SnapshotClassMissing(
            content
                .spec
                .volume_snapshot_class_name
                .clone()
                .unwrap_or_default(),
        ));
    }
    if observed.source_pvc.is_none() {
        return Err(Problem::SourceClaimUnknown(content_name));
    }
    if let Some((name, data)) = &observed.storage_config {
        crate::storage_config::parse(name, data).map_err(Problem::StorageConfigInvalid)?;
    }
    Ok(())
}

/// This backup's point in time: the second after the mover's `lastSyncTime` (which the API
/// truncates to the second), so it is never before the restic snapshot it took.
pub fn restore_as_of(source: &ReplicationSource) -> Option<Timestamp> {
    let synced = source.status.as_ref()?.sync.last_sync_time.as_ref()?.0;
    synced
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(1))
        .ok()
}
