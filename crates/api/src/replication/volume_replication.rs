use k8s_openapi::api::core::v1::TypedLocalObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Subject;
use crate::open::{Open, known};
use crate::wire_enum::wire_enum;

wire_enum! {
    /// The state a VolumeReplication asks for (`spec.replicationState`).
    pub enum ReplicationState {
        Primary = "primary",
        Secondary = "secondary",
        Resync = "resync",
    }
}

wire_enum! {
    /// The state the controller last reached (`status.state`).
    pub enum CurrentState {
        Primary = "Primary",
        Secondary = "Secondary",
        Unknown = "Unknown",
    }
}

/// Replicates one PersistentVolumeClaim (or a volume group) through the CSI driver named by
/// its VolumeReplicationClass, in the role `replicationState` asks for.
// Several printcolumn(...) share `type_ = "string"`; clippy mistakes them for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "replication.storage.openshift.io",
    version = "v1alpha1",
    kind = "VolumeReplication",
    namespaced,
    status = "VolumeReplicationStatus",
    shortname = "vr",
    doc = "VolumeReplication replicates one volume or volume group in the role replicationState asks for.",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "VolumeReplicationClass",
        type_ = "string",
        json_path = ".spec.volumeReplicationClass"
    ),
    printcolumn(
        name = "PVCName",
        type_ = "string",
        json_path = ".spec.dataSource.name"
    ),
    printcolumn(
        name = "DesiredState",
        type_ = "string",
        json_path = ".spec.replicationState"
    ),
    printcolumn(name = "CurrentState", type_ = "string", json_path = ".status.state")
)]
#[serde(rename_all = "camelCase")]
pub struct VolumeReplicationSpec {
    /// The VolumeReplicationClass (cluster-scoped) naming the driver and its parameters.
    #[x_kube(validation = Rule::new("self == oldSelf").message("volumeReplicationClass is immutable"))]
    pub volume_replication_class: String,

    /// The role this site's copy should have: `primary` (writable, replicating to the peer),
    /// `secondary` (receiving from the peer) or `resync` (discard local changes and pull the
    /// primary's data).
    pub replication_state: ReplicationState,

    /// What to replicate: a `PersistentVolumeClaim` (core group) in this namespace, or a
    /// `VolumeGroupReplication` (group replication.storage.openshift.io).
    #[x_kube(validation = Rule::new("self == oldSelf").message("dataSource is immutable"))]
    pub data_source: TypedLocalObjectReference,

    /// When secondary, force a resync whenever the driver reports the copy is not in sync
    /// (for example after a disaster failover left this site divergent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub auto_resync: Option<bool>,

    /// An existing replication id known to the driver, sent as `replication_id` in every call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_handle: Option<String>,
}

impl VolumeReplicationSpec {
    /// `autoResync`, with the schema default applied.
    pub fn auto_resync(&self) -> bool {
        self.auto_resync.unwrap_or(false)
    }

    /// What `dataSource` points at, or `None` for a kind Lifeline does not replicate.
    pub fn data_source_kind(&self) -> Option<DataSourceKind> {
        DataSourceKind::of(&self.data_source)
    }
}

/// The kinds a VolumeReplication may replicate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataSourceKind {
    /// A core `PersistentVolumeClaim` in the VolumeReplication's namespace.
    PersistentVolumeClaim,
    /// A `VolumeGroupReplication` (replication.storage.openshift.io).
    VolumeGroupReplication,
}

impl DataSourceKind {
    /// Classifies a `dataSource`; the group must match the kind.
    pub fn of(reference: &TypedLocalObjectReference) -> Option<Self> {
        let group = reference.api_group.as_deref().unwrap_or("");
        match (reference.kind.as_str(), group) {
            ("PersistentVolumeClaim", "") => Some(Self::PersistentVolumeClaim),
            ("VolumeGroupReplication", super::GROUP) => Some(Self::VolumeGroupReplication),
            _ => None,
        }
    }

    /// How messages name what is replicated.
    pub fn subject(self) -> Subject {
        match self {
            Self::PersistentVolumeClaim => Subject::Volume,
            Self::VolumeGroupReplication => Subject::VolumeGroup,
        }
    }
}

impl VolumeReplicationStatus {
    /// `state`, when it is one of the upstream values.
    pub fn state(&self) -> Option<CurrentState> {
        known(&self.state)
    }
}

/// What the controller last observed and did.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeReplicationStatus {
    /// The role this copy has now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Open<CurrentState>>,

    /// A one-line summary, e.g. "volume is marked primary".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,

    /// Completed, Degraded, Resyncing, Validated, Replicating and DestinationInfoAvailable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// When the last operation (promote, demote, resync) started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_start_time: Option<Time>,

    /// When the last operation finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_completion_time: Option<Time>,

    /// When the driver last completed a sync to the peer (primary only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,

    /// How long the last sync took, as a Go duration string (e.g. "1m30s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_duration: Option<String>,

    /// Bytes the last sync transferred; set only when the driver reports a non-zero value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_bytes: Option<i64>,

    /// The peer's id for this volume, from GetReplicationDestinationInfo.
    #[serde(
        default,
        rename = "destinationVolumeID",
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_volume_id: Option<String>,
}
