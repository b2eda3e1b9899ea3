//! `datamover.oadp.openshift.io/v1alpha1`: VolumeSnapshotBackup and VolumeSnapshotRestore,
//! wire-compatible with OADP's data mover.

mod backup;
mod common;
mod lenient;
mod progress;
mod restore;

use lenient::lenient_root;

pub use backup::{
    ReplicationSourceData, VolumeSnapshotBackup, VolumeSnapshotBackupCrd, VolumeSnapshotBackupSpec,
    VolumeSnapshotBackupStatus,
};
pub use common::{
    BackupPhase, BatchingStatus, ConditionReason, ConditionType, NameRef, RestorePhase,
    SourcePvcData,
};
pub use progress::{MoverPhase, MoverProgress};
pub use restore::{
    ReplicationDestinationData, VolumeSnapshotMoverBackupRef, VolumeSnapshotRestore,
    VolumeSnapshotRestoreCrd, VolumeSnapshotRestoreSpec, VolumeSnapshotRestoreStatus,
};

/// The API group of both kinds.
pub const GROUP: &str = "datamover.oadp.openshift.io";
/// The served and stored version.
pub const VERSION: &str = "v1alpha1";
/// Finalizer the controller keeps on a VSB/VSR until its working objects are cleaned up.
pub const FINALIZER: &str = "oadp.openshift.io/oadp-datamover";

/// Annotations copied onto a VolumeSnapshotBackup so a backup tool that strips `status` can
/// still build a restore from it.
pub mod annotations {
    pub const RESTIC_REPOSITORY: &str = "datamover.io/restic-repository";
    pub const SOURCE_PVC_NAME: &str = "datamover.io/source-pvc-name";
    pub const SOURCE_PVC_SIZE: &str = "datamover.io/source-pvc-size";
    pub const SOURCE_PVC_STORAGECLASS: &str = "datamover.io/source-pvc-storageclass";
    pub const SOURCE_PVC_VOLUMESNAPSHOTCLASS: &str = "datamover.io/source-pvc-volumesnapshotclass";
}

/// Label a backup tool such as Velero puts on the VolumeSnapshotBackups of one backup.
pub const VELERO_BACKUP_LABEL: &str = "velero.io/backup-name";
