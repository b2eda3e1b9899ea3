//! The CustomResourceDefinitions generated from these types.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::{datamover, foreign, replication};

/// The CRDs Lifeline owns and its chart installs.
pub fn lifeline() -> Vec<CustomResourceDefinition> {
    vec![
        replication::VolumeReplicationClass::crd(),
        replication::VolumeReplication::crd(),
        datamover::VolumeSnapshotBackup::crd(),
        datamover::VolumeSnapshotRestore::crd(),
    ]
}

/// Stand-ins for the CRDs of the kinds other projects own (VolSync, CSI snapshots), generated
/// from our typed views, for test clusters that do not have the real ones.
pub fn foreign() -> Vec<CustomResourceDefinition> {
    vec![
        foreign::volsync::ReplicationSource::crd(),
        foreign::volsync::ReplicationDestination::crd(),
        foreign::snapshot::VolumeSnapshot::crd(),
        foreign::snapshot::VolumeSnapshotContent::crd(),
        foreign::snapshot::VolumeSnapshotClass::crd(),
    ]
}
