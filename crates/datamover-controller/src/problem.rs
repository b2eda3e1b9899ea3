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
    #[error("{0}; fix it there (OADP's per-StorageClass settings)")]
    StorageConfigInvalid(crate::storage_config::ConfigError),
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
    #[error(
        "spec.volumeSnapshotMoverBackupRef.resticrepository {repository:?} is not a backup of namespace {namespace:?}: a restore may read only {allowed} (the repositories of its own namespace's claims)"
    )]
    RepositoryNotOwned {
        repository: String,
        namespace: String,
        allowed: String,
    },
    #[error("{field} is not set; {fix}")]
    FieldMissing {
        field: &'static str,
        fix: &'static str,
    },
    #[error(
        "{what} is a local path: the restic mover has a read-only root and writes only to its volume, cache and /tmp, so the data would be lost; use a remote repository (s3:, azure:, gs:, rest:, b2:, swift:)"
    )]
    LocalRepository { what: &'static str },
    #[error(
        "annotation {annotation} is {value:?}, not an RFC 3339 time (e.g. 2026-12-01T10:00:00Z); copy it from the VolumeSnapshotBackup or remove it to restore the latest backup"
    )]
    RestoreAsOfInvalid {
        annotation: &'static str,
        value: String,
    },
}

/// `spec.resticSecretRef.name` must name a Secret (the schema, as upstream's, requires nothing).
pub fn restic_secret_named(
    reference: Option<&lifeline_api::datamover::NameRef>,
) -> Result<(), Problem> {
    if reference.is_none_or(|r| r.name.trim().is_empty()) {
        return Err(Problem::FieldMissing {
            field: "spec.resticSecretRef.name",
            fix: "name the restic Secret in the protected namespace",
        });
    }
    Ok(())
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
            Problem::RepositoryNotOwned { .. } => "RepositoryNotOwned",
            Problem::FieldMissing { .. } => "FieldMissing",
            Problem::LocalRepository { .. } => "LocalRepository",
            Problem::RestoreAsOfInvalid { .. } => "RestoreAsOfInvalid",
            Problem::StorageConfigInvalid(_) => "StorageConfigInvalid",
        }
    }
}
