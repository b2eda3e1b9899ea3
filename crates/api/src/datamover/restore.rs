use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{BatchingStatus, NameRef, RestorePhase, SourcePvcData};
use crate::open::{Open, known};

/// Restores the data of one VolumeSnapshotBackup into a new CSI snapshot.
// Several printcolumn(...) share `type_ = "string"`; clippy mistakes them for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "datamover.oadp.openshift.io",
    version = "v1alpha1",
    kind = "VolumeSnapshotRestore",
    // The derived root type only generates the CRD; [`VolumeSnapshotRestore`] (a spec-less object decodes)
    // is the one the controllers use.
    root = "VolumeSnapshotRestoreCrd",
    namespaced,
    status = "VolumeSnapshotRestoreStatus",
    shortname = "vsr",
    doc = "VolumeSnapshotRestore restores the data of one VolumeSnapshotBackup into a new CSI snapshot.",
    printcolumn(
        name = "PVC Name",
        type_ = "string",
        json_path = ".spec.volumeSnapshotMoverBackupRef.sourcePVCData.name"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "BatchingStatus",
        type_ = "string",
        json_path = ".status.batchingStatus"
    ),
    printcolumn(
        name = "SnapshotHandle",
        type_ = "string",
        priority = 1,
        json_path = ".status.snapshotHandle"
    ),
    printcolumn(
        name = "Progress",
        type_ = "string",
        json_path = ".status.progress.summary"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotRestoreSpec {
    /// The restic Secret (in the protected namespace) with `RESTIC_PASSWORD` and credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restic_secret_ref: Option<NameRef>,

    /// What to restore: the facts a VolumeSnapshotBackup recorded. Not required by the schema
    /// (upstream's requires nothing): what is missing is a condition naming the field.
    #[serde(default)]
    pub volume_snapshot_mover_backup_ref: VolumeSnapshotMoverBackupRef,

    /// The namespace in which the controller creates its working objects.
    #[serde(default)]
    pub protected_namespace: String,
}

/// The facts of a finished backup that a restore needs.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotMoverBackupRef {
    /// The claim that was backed up: its size and storage class shape the restored volume.
    #[serde(
        default,
        rename = "sourcePVCData",
        skip_serializing_if = "Option::is_none"
    )]
    pub source_pvc_data: Option<SourcePvcData>,

    /// The restic repository holding the backup.
    #[serde(
        default,
        rename = "resticrepository",
        skip_serializing_if = "Option::is_none"
    )]
    pub restic_repository: Option<String>,

    /// The VolumeSnapshotClass for the restored snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_class_name: Option<String>,
}

/// Progress and results of a restore.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotRestoreStatus {
    /// Where the restore stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Open<RestorePhase>>,

    /// Whether the restore waits for a concurrency slot, runs, or is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batching_status: Option<Open<BatchingStatus>>,

    /// `Reconciled`: True with reason `Complete`, or False with reason `Error` and what is wrong.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// When the controller started working on this restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<Time>,

    /// When the restore finished (successfully or not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_timestamp: Option<Time>,

    /// The `snapshotHandle` of the restored snapshot, for the backup tool to bind a claim to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_handle: Option<String>,

    /// The VolumeSnapshotContent the restored snapshot is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_content_name: Option<String>,

    /// The VolSync ReplicationDestination that restored the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_destination_data: Option<ReplicationDestinationData>,

    /// Lifeline's: what the mover reports while it runs, and its totals at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<super::MoverProgress>,
}

impl VolumeSnapshotRestoreStatus {
    /// `phase`, when it is one Lifeline writes.
    pub fn phase(&self) -> Option<RestorePhase> {
        known(&self.phase)
    }

    /// `batchingStatus`, when it is one Lifeline writes.
    pub fn batching(&self) -> Option<BatchingStatus> {
        known(&self.batching_status)
    }
}

/// The VolSync ReplicationDestination of a restore and when it ran.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationDestinationData {
    /// The ReplicationDestination's name (in the protected namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When its sync started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<Time>,
    /// When its sync completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_timestamp: Option<Time>,
}

super::lenient_root!(
    VolumeSnapshotRestore,
    VolumeSnapshotRestoreCrd,
    VolumeSnapshotRestoreSpec,
    VolumeSnapshotRestoreStatus
);
