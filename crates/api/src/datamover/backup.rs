use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{BackupPhase, BatchingStatus, MoverProgress, NameRef, SourcePvcData};
use crate::open::{Open, known};

/// Moves the data of one CSI snapshot into a restic repository.
// Several printcolumn(...) share `type_ = "string"`; clippy mistakes them for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "datamover.oadp.openshift.io",
    version = "v1alpha1",
    kind = "VolumeSnapshotBackup",
    // The derived root type only generates the CRD; [`VolumeSnapshotBackup`] (a spec-less object decodes)
    // is the one the controllers use.
    root = "VolumeSnapshotBackupCrd",
    namespaced,
    status = "VolumeSnapshotBackupStatus",
    shortname = "vsb",
    doc = "VolumeSnapshotBackup moves the data of one CSI snapshot into a restic repository.",
    printcolumn(
        name = "PVC Name",
        type_ = "string",
        json_path = ".status.sourcePVCData.name"
    ),
    printcolumn(
        name = "VolumeSnapshotContent",
        type_ = "string",
        json_path = ".spec.volumeSnapshotContent.name"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "BatchingStatus",
        type_ = "string",
        json_path = ".status.batchingStatus"
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
pub struct VolumeSnapshotBackupSpec {
    /// The VolumeSnapshotContent to back up; only `name` is read. Not required by the schema
    /// (upstream's requires nothing): a missing one is a condition naming the field.
    #[serde(default)]
    pub volume_snapshot_content: ObjectReference,

    /// The namespace in which the controller creates its working objects (cloned snapshot,
    /// PVC, per-request Secret, ReplicationSource). The restic Secret lives here too.
    #[serde(default)]
    pub protected_namespace: String,

    /// The restic Secret (in the protected namespace): `RESTIC_PASSWORD`, the repository base
    /// in `RESTIC_REPOSITORY`, and the credentials its storage needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restic_secret_ref: Option<NameRef>,
}

/// Progress and results of a backup.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotBackupStatus {
    /// Where the backup stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Open<BackupPhase>>,

    /// Whether the backup waits for a concurrency slot, runs, or is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batching_status: Option<Open<BatchingStatus>>,

    /// `Reconciled`: True with reason `Complete`, or False with reason `Error` and what is wrong.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The claim the snapshot was taken of.
    #[serde(
        default,
        rename = "sourcePVCData",
        skip_serializing_if = "Option::is_none"
    )]
    pub source_pvc_data: Option<SourcePvcData>,

    /// The restic repository the data was written to.
    #[serde(
        default,
        rename = "resticrepository",
        skip_serializing_if = "Option::is_none"
    )]
    pub restic_repository: Option<String>,

    /// The VolumeSnapshotClass of the source snapshot, needed to restore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_class_name: Option<String>,

    /// When the controller started working on this backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<Time>,

    /// When the backup finished (successfully or not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_timestamp: Option<Time>,

    /// The VolSync ReplicationSource that moved the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_source_data: Option<ReplicationSourceData>,

    /// Lifeline's: what the mover reports while it runs, and its totals at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<MoverProgress>,

    /// Upstream's: whether the backup finished. Lifeline reads `phase`; kept so a value another
    /// writer set is not pruned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<bool>,
}

impl VolumeSnapshotBackupStatus {
    /// `phase`, when it is one Lifeline writes.
    pub fn phase(&self) -> Option<BackupPhase> {
        known(&self.phase)
    }

    /// `batchingStatus`, when it is one Lifeline writes.
    pub fn batching(&self) -> Option<BatchingStatus> {
        known(&self.batching_status)
    }
}

/// The VolSync ReplicationSource of a backup and when it ran.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationSourceData {
    /// The ReplicationSource's name (in the protected namespace).
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
    VolumeSnapshotBackup,
    VolumeSnapshotBackupCrd,
    VolumeSnapshotBackupSpec,
    VolumeSnapshotBackupStatus
);
