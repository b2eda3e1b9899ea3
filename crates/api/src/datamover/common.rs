use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::wire_enum::wire_enum;

wire_enum! {
    /// `status.phase` of a VolumeSnapshotBackup.
    pub enum BackupPhase {
        InProgress = "InProgress",
        SnapshotBackupDone = "SnapshotBackupDone",
        Cleanup = "Cleanup",
        Completed = "Completed",
        Failed = "Failed",
        PartiallyFailed = "PartiallyFailed",
    }
}

wire_enum! {
    /// `status.phase` of a VolumeSnapshotRestore.
    pub enum RestorePhase {
        InProgress = "InProgress",
        SnapshotRestoreDone = "SnapshotRestoreDone",
        Cleanup = "Cleanup",
        Completed = "Completed",
        Failed = "Failed",
        PartiallyFailed = "PartiallyFailed",
    }
}

wire_enum! {
    /// `status.batchingStatus`: where a request stands against the concurrency limit.
    pub enum BatchingStatus {
        Queued = "Queued",
        Processing = "Processing",
        Completed = "Completed",
    }
}

wire_enum! {
    /// `status.conditions[].type` of a VSB or VSR.
    pub enum ConditionType {
        Reconciled = "Reconciled",
    }
}

wire_enum! {
    /// `status.conditions[].reason` of a VSB or VSR.
    pub enum ConditionReason {
        Complete = "Complete",
        Error = "Error",
    }
}

/// The PersistentVolumeClaim a snapshot was taken of.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourcePvcData {
    /// The claim's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The claim's requested size, as a quantity (e.g. "10Gi").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// The claim's storage class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

/// A reference by name whose `name` the schema does not require (as upstream's
/// `resticSecretRef`); an empty name is a condition, not a rejected object.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct NameRef {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}
