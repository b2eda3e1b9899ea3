//! `replication.storage.openshift.io/v1alpha1`: VolumeReplication and VolumeReplicationClass,
//! and the volume-group kinds (VolumeGroupReplication, its class and content), wire-compatible
//! with the csi-addons operators.

mod class;
mod conditions;
mod group;
mod interval;
mod parameters;
mod volume_replication;

pub use class::{VolumeReplicationClass, VolumeReplicationClassSpec, VolumeReplicationClassStatus};
pub use conditions::{ConditionType, Reason, StatusMessage, Subject, Text};
pub use group::{
    NameRef, VolumeGroupReplication, VolumeGroupReplicationClass, VolumeGroupReplicationClassSpec,
    VolumeGroupReplicationClassStatus, VolumeGroupReplicationContent,
    VolumeGroupReplicationContentSource, VolumeGroupReplicationContentSpec,
    VolumeGroupReplicationContentStatus, VolumeGroupReplicationSource, VolumeGroupReplicationSpec,
    VolumeGroupReplicationStatus, VolumeMapping,
};
pub use interval::{IntervalError, SchedulingInterval};
pub use parameters::{
    ClassParameters, ParameterError, RESERVED_PREFIX, ReservedKey, SCHEDULING_INTERVAL,
    SCHEDULING_START_TIME, SecretRef,
};
pub use volume_replication::{
    CurrentState, DataSourceKind, ReplicationState, VolumeReplication, VolumeReplicationSpec,
    VolumeReplicationStatus,
};

/// The API group of both kinds.
pub const GROUP: &str = "replication.storage.openshift.io";
/// The served and stored version.
pub const VERSION: &str = "v1alpha1";
/// Finalizer the controller keeps on a VolumeReplication until replication is disabled.
pub const VR_FINALIZER: &str = "replication.storage.openshift.io";
/// Finalizer on the PVC a VolumeReplication protects: a replicated PVC may not be deleted.
pub const PVC_FINALIZER: &str = "replication.storage.openshift.io/pvc-protection";
/// Annotation on the PVC naming the one VolumeReplication that owns its replication.
pub const PVC_OWNER_ANNOTATION: &str = "replication.storage.openshift.io/volume-replication-name";
/// Finalizer on each member claim of a replicated VolumeGroupReplication: a member may not be
/// deleted while its group replicates it (removing its label takes it out of the group first).
pub const VGR_PVC_FINALIZER: &str = "replication.storage.openshift.io/vgr-protection";
/// Annotation on a member claim naming the VolumeGroupReplication it belongs to.
pub const VGR_OWNER_ANNOTATION: &str =
    "replication.storage.openshift.io/volume-group-replication-name";
