//! Velero v1.18: DataUpload and DataDownload (`velero.io/v2alpha1`), the requests Velero's CSI
//! action makes for a third-party data mover, and the BackupStorageLocation (`velero.io/v1`)
//! they name. Contract: `shared/spec/velero-datamover.md`. Neither kind has a status
//! subresource: status is written through the object itself.
//!
//! Every field is optional here (the CRDs require some): an object a person wrote by hand with
//! a field missing still decodes, and the controller says which field to fix.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::open::Open;
use crate::wire_enum::wire_enum;

/// The API group Velero serves.
pub const GROUP: &str = "velero.io";

/// The label on the PersistentVolume a DataDownload restores, with the value of the restored
/// claim's selector, so that claim (and only it) binds to it.
pub const DYNAMIC_PV_RESTORE: &str = "velero.io/dynamic-pv-restore";

wire_enum! {
    /// `status.phase` of a DataUpload or DataDownload.
    pub enum DataMovePhase {
        New = "New",
        Accepted = "Accepted",
        Prepared = "Prepared",
        InProgress = "InProgress",
        Canceling = "Canceling",
        Canceled = "Canceled",
        Completed = "Completed",
        Failed = "Failed",
    }
}

impl DataMovePhase {
    /// Completed, Failed and Canceled: nothing moves any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            DataMovePhase::Completed | DataMovePhase::Failed | DataMovePhase::Canceled
        )
    }
}

/// `status.progress`: Velero's own progress columns (Bytes Done, Total Bytes).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataMoveProgress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_done: Option<i64>,
}

/// The CSI snapshot a DataUpload moves (the VolumeSnapshot is in `spec.sourceNamespace`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CsiSnapshotSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
}

/// A request to move one claim's snapshot data to the backup storage.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "velero.io",
    version = "v2alpha1",
    kind = "DataUpload",
    namespaced,
    status = "DataUploadStatus",
    doc = "Velero DataUpload (typed view; the CRD is Velero's)."
)]
#[serde(rename_all = "camelCase")]
pub struct DataUploadSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csi_snapshot: Option<CsiSnapshotSpec>,
    #[serde(default, rename = "sourcePVC", skip_serializing_if = "Option::is_none")]
    pub source_pvc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datamover: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_storage_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_mover_config: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel: Option<bool>,
    /// A Go duration ("10m0s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_timeout: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataUploadStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Open<DataMovePhase>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(
        default,
        rename = "snapshotID",
        skip_serializing_if = "Option::is_none"
    )]
    pub snapshot_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_mover_result: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_timestamp: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<DataMoveProgress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental_bytes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_timestamp: Option<Time>,
}

/// Where a DataDownload restores to: the claim Velero restored (`pv` when Velero names one).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetVolumeSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A request to bring one backed-up claim's data back into a new volume.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "velero.io",
    version = "v2alpha1",
    kind = "DataDownload",
    namespaced,
    status = "DataDownloadStatus",
    doc = "Velero DataDownload (typed view; the CRD is Velero's)."
)]
#[serde(rename_all = "camelCase")]
pub struct DataDownloadSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_volume: Option<TargetVolumeSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_storage_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datamover: Option<String>,
    #[serde(
        default,
        rename = "snapshotID",
        skip_serializing_if = "Option::is_none"
    )]
    pub snapshot_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_mover_config: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_size: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataDownloadStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Open<DataMovePhase>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_timestamp: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<DataMoveProgress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_timestamp: Option<Time>,
}

/// A key of a Secret in the BackupStorageLocation's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStorageLocation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// PEM, base64 on the wire (`format: byte`), as Velero writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub ca_cert: Option<k8s_openapi::ByteString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert_ref: Option<SecretKeyRef>,
}

/// Where Velero keeps backups; a data mover derives its repository from it.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "velero.io",
    version = "v1",
    kind = "BackupStorageLocation",
    namespaced,
    status = "BackupStorageLocationStatus",
    shortname = "bsl",
    doc = "Velero BackupStorageLocation (typed view; the CRD is Velero's)."
)]
#[serde(rename_all = "camelCase")]
pub struct BackupStorageLocationSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_storage: Option<ObjectStorageLocation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<SecretKeyRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_mode: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupStorageLocationStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn velero_objects_decode_and_keep_their_wire_names() {
        let du: DataUpload = serde_json::from_value(serde_json::json!({
            "apiVersion": "velero.io/v2alpha1", "kind": "DataUpload",
            "metadata": {"name": "b-x", "namespace": "velero"},
            "spec": {"snapshotType": "CSI", "sourcePVC": "data", "datamover": "lifeline",
                     "csiSnapshot": {"volumeSnapshot": "snap", "storageClass": "sc"},
                     "operationTimeout": "10m0s"},
            "status": {"phase": "Someday", "snapshotID": "x", "progress": {"bytesDone": 5}}
        }))
        .unwrap();
        let status = du.status.clone().unwrap();
        assert_eq!(status.phase.unwrap().as_str(), "Someday");
        let back = serde_json::to_value(&du).unwrap();
        assert_eq!(back["spec"]["sourcePVC"], "data");
        assert_eq!(back["status"]["snapshotID"], "x");
        let bsl: BackupStorageLocation = serde_json::from_value(serde_json::json!({
            "apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
            "metadata": {"name": "default", "namespace": "velero"},
            "spec": {"provider": "aws", "objectStorage": {"bucket": "b", "caCert": "cGVt"}}
        }))
        .unwrap();
        assert_eq!(
            bsl.spec.object_storage.unwrap().ca_cert.unwrap().0,
            b"pem".to_vec()
        );
        assert!(DataMovePhase::Canceled.is_terminal() && !DataMovePhase::Canceling.is_terminal());
    }
}
