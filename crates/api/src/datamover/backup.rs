use k8s_openapi::api::core::v1::{LocalObjectReference, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{BackupPhase, BatchingStatus, SourcePvcData};

/// Moves the data of one CSI snapshot into a restic repository.
// Several printcolumn(...) share `type_ = "string"`; clippy mistakes them for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "datamover.oadp.openshift.io",
    version = "v1alpha1",
    kind = "VolumeSnapshotBackup",
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
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotBackupSpec {
    /// The VolumeSnapshotContent to back up; only `name` is read.
    pub volume_snapshot_content: ObjectReference,

    /// The namespace in which the controller creates its working objects (cloned snapshot,
    /// PVC, per-request Secret, ReplicationSource). The restic Secret lives here too.
    pub protected_namespace: String,

    /// The restic Secret (in the protected namespace): `RESTIC_PASSWORD`, the repository base
    /// in `RESTIC_REPOSITORY`, and the credentials its storage needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restic_secret_ref: Option<LocalObjectReference>,
}

/// Progress and results of a backup.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotBackupStatus {
    /// Where the backup stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<BackupPhase>,

    /// Whether the backup waits for a concurrency slot, runs, or is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batching_status: Option<BatchingStatus>,

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
