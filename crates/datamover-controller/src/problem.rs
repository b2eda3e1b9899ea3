//! Bad inputs of a backup or restore: each ends in condition `Reconciled`=False reason `Error`
//! and a Warning Event with this message, and waits for a change instead of retrying hot.

use crate::repository::SecretError;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error(
        "VolSync is not installed: the ReplicationSource/ReplicationDestination CRDs (volsync.backube) are missing; install VolSync"
    )]
    VolSyncMissing,
    #[error("protected namespace {0:?} does not exist; create it or fix spec.protectedNamespace")]
    ProtectedNamespaceMissing(String),
    #[error(
        "spec.protectedNamespace {requested:?} is not served: this controller works only in {served:?} (--protected-namespace); use that namespace"
    )]
    ProtectedNamespaceNotServed { requested: String, served: String },
    #[error(
        "restic Secret {namespace}/{name} not found; create it in the protected namespace or fix spec.resticSecretRef"
    )]
    SecretMissing { namespace: String, name: String },
    #[error("restic Secret {name:?}: {source}")]
    SecretInvalid {
        name: String,
        #[source]
        source: SecretError,
    },
    #[error("VolumeSnapshotContent {0:?} not found; fix spec.volumeSnapshotContent.name")]
    ContentMissing(String),
    #[error("VolumeSnapshotClass {0:?} of the snapshot not found; create it")]
    SnapshotClassMissing(String),
    #[error(
        "cannot find the claim VolumeSnapshotContent {0:?} was taken of (its VolumeSnapshot is gone?); the backup needs it to pick the repository"
    )]
    SourceClaimUnknown(String),
    #[error(
        "spec.volumeSnapshotMoverBackupRef.resticrepository is empty; copy it from the VolumeSnapshotBackup"
    )]
    NoRepositoryToRestore,
}

impl Problem {
    /// A stable label for metrics and the Event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Problem::VolSyncMissing => "VolSyncMissing",
            Problem::ProtectedNamespaceMissing(_) => "ProtectedNamespaceMissing",
            Problem::ProtectedNamespaceNotServed { .. } => "ProtectedNamespaceNotServed",
            Problem::SecretMissing { .. } => "ResticSecretMissing",
            Problem::SecretInvalid { .. } => "ResticSecretInvalid",
            Problem::ContentMissing(_) => "SnapshotContentMissing",
            Problem::SnapshotClassMissing(_) => "SnapshotClassMissing",
            Problem::SourceClaimUnknown(_) => "SourceClaimUnknown",
            Problem::NoRepositoryToRestore => "RepositoryMissing",
        }
    }
}
