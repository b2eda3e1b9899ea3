//! VolSync `volsync.backube/v1alpha1`: ReplicationSource and ReplicationDestination with the
//! restic mover, which the data mover creates for each backup and restore, and the rsync-TLS
//! mover, which `kubectl lifeline protect --method volsync` pairs across two sites.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, PodSecurityContext, ResourceRequirements, TypedLocalObjectReference,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::open::Open;
use crate::wire_enum::wire_enum;

/// The API group VolSync serves.
pub const GROUP: &str = "volsync.backube";

wire_enum! {
    /// How a mover gets a point-in-time copy of the volume.
    pub enum CopyMethod {
        Direct = "Direct",
        Clone = "Clone",
        Snapshot = "Snapshot",
        None = "None",
    }
}

wire_enum! {
    /// `latestMoverStatus.result`.
    pub enum MoverResult {
        Successful = "Successful",
        Failed = "Failed",
    }
}

wire_enum! {
    /// Reasons of VolSync's `Synchronizing` condition.
    pub enum SynchronizingReason {
        SyncInProgress = "SyncInProgress",
        WaitingForManual = "WaitingForManual",
        WaitingForSchedule = "WaitingForSchedule",
        CleaningUp = "CleaningUp",
        Error = "Error",
    }
}

/// VolSync's one condition type.
pub const CONDITION_SYNCHRONIZING: &str = "Synchronizing";

/// When a mover runs: on a cron schedule, or once per new `manual` value.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    /// A cron schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// A manual trigger: a sync runs whenever this changes; `status.lastManualSync` takes this
    /// value when it finishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<String>,
}

/// restic's `forget` policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResticRetainPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hourly: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yearly: Option<i32>,
    /// Keep every snapshot younger than this restic duration (e.g. "3d").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<String>,
    /// Keep the last N snapshots. A string in VolSync's schema (since v0.8.0), e.g. "5".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
}

/// A CA bundle for the repository's endpoint, from a Secret or a ConfigMap.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomCa {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Settings of the mover Pod, shared by source and destination.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MoverSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mover_service_account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mover_security_context: Option<PodSecurityContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mover_pod_labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mover_resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mover_affinity: Option<Affinity>,
}

/// Backs up a PVC with a mover.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "volsync.backube",
    version = "v1alpha1",
    kind = "ReplicationSource",
    namespaced,
    status = "ReplicationSourceStatus",
    doc = "VolSync ReplicationSource (typed view; the CRD is VolSync's)."
)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationSourceSpec {
    /// The PVC to back up.
    #[serde(default, rename = "sourcePVC", skip_serializing_if = "Option::is_none")]
    pub source_pvc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restic: Option<ReplicationSourceResticSpec>,
    #[serde(default, rename = "rsyncTLS", skip_serializing_if = "Option::is_none")]
    pub rsync_tls: Option<ReplicationSourceRsyncTlsSpec>,
}

/// The rsync-TLS mover of a ReplicationSource: pushes the volume to a destination's address.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationSourceRsyncTlsSpec {
    /// The Secret holding the pre-shared key (`psk.txt`), the same at both ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret: Option<String>,
    /// The destination's address (its `status.rsyncTLS.address`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_method: Option<CopyMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_modes: Option<Vec<String>>,
    #[serde(flatten)]
    pub mover: MoverSettings,
}

/// The restic mover of a ReplicationSource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationSourceResticSpec {
    /// The Secret holding `RESTIC_REPOSITORY`, `RESTIC_PASSWORD` and credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_interval_days: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain: Option<ResticRetainPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_method: Option<CopyMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_modes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_capacity: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_storage_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_access_modes: Option<Vec<String>>,
    #[serde(default, rename = "customCA", skip_serializing_if = "Option::is_none")]
    pub custom_ca: Option<CustomCa>,
    /// Any new value runs `restic unlock` before the next backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlock: Option<String>,
    #[serde(flatten)]
    pub mover: MoverSettings,
}

/// Restores a restic repository into a PVC (and a snapshot of it).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "volsync.backube",
    version = "v1alpha1",
    kind = "ReplicationDestination",
    namespaced,
    status = "ReplicationDestinationStatus",
    doc = "VolSync ReplicationDestination (typed view; the CRD is VolSync's)."
)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationDestinationSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restic: Option<ReplicationDestinationResticSpec>,
    #[serde(default, rename = "rsyncTLS", skip_serializing_if = "Option::is_none")]
    pub rsync_tls: Option<ReplicationDestinationRsyncTlsSpec>,
}

/// The rsync-TLS mover of a ReplicationDestination: listens behind a Service for a source.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationDestinationRsyncTlsSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret: Option<String>,
    /// `ClusterIP` (VolSync's default) or `LoadBalancer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_type: Option<String>,
    /// The claim written into (copyMethod `Direct`: the claim itself is the copy).
    #[serde(
        default,
        rename = "destinationPVC",
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_pvc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_method: Option<CopyMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_modes: Option<Vec<String>>,
    #[serde(flatten)]
    pub mover: MoverSettings,
}

/// Where a rsync-TLS destination listens, once its Service has an address.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RsyncTlsStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret: Option<String>,
}

/// The restic mover of a ReplicationDestination.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationDestinationResticSpec {
    /// The Secret holding `RESTIC_REPOSITORY`, `RESTIC_PASSWORD` and credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Restore into this existing PVC instead of a new one.
    #[serde(
        default,
        rename = "destinationPVC",
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_pvc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_modes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_method: Option<CopyMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_capacity: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_storage_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_access_modes: Option<Vec<String>>,
    #[serde(default, rename = "customCA", skip_serializing_if = "Option::is_none")]
    pub custom_ca: Option<CustomCa>,
    /// Restore the Nth-newest snapshot (0 = newest) among those not after `restoreAsOf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<i32>,
    /// Restore the newest snapshot taken at or before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_as_of: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_file_deletion: Option<bool>,
    #[serde(
        default,
        rename = "cleanupCachePVC",
        skip_serializing_if = "Option::is_none"
    )]
    pub cleanup_cache_pvc: Option<bool>,
    #[serde(flatten)]
    pub mover: MoverSettings,
}

/// The result of the last mover run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MoverStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// A free string upstream; VolSync writes `Successful` or `Failed`.
    pub result: Option<Open<MoverResult>>,
    /// The last lines of the mover's output (restic's summary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
}

/// Status fields both VolSync kinds share.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_start_time: Option<Time>,
    /// A Go duration string, e.g. "3m12s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_sync_time: Option<Time>,
    /// Equals `spec.trigger.manual` once that manual sync has finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_manual_sync: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_mover_status: Option<MoverStatus>,
    /// `Synchronizing`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Status of a ReplicationSource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationSourceStatus {
    #[serde(flatten)]
    pub sync: SyncStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restic: Option<ResticSourceStatus>,
    #[serde(default, rename = "rsyncTLS", skip_serializing_if = "Option::is_none")]
    pub rsync_tls: Option<RsyncTlsStatus>,
}

/// restic maintenance a ReplicationSource last ran.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResticSourceStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pruned: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_unlocked: Option<String>,
}

/// Status of a ReplicationDestination.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationDestinationStatus {
    #[serde(flatten)]
    pub sync: SyncStatus,
    /// The restored VolumeSnapshot (copyMethod Snapshot) or PVC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_image: Option<TypedLocalObjectReference>,
    #[serde(default, rename = "rsyncTLS", skip_serializing_if = "Option::is_none")]
    pub rsync_tls: Option<RsyncTlsStatus>,
}
