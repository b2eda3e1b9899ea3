//! The CustomResourceDefinitions generated from these types: only Lifeline's own kinds. The
//! foreign kinds' CRDs are their owners' (test clusters get the upstream files from
//! `shared/upstream-crds/`), never generated from our typed views.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::{datamover, replication};

/// The CRDs Lifeline owns and its chart installs.
pub fn lifeline() -> Vec<CustomResourceDefinition> {
    vec![
        replication::VolumeReplicationClass::crd(),
        replication::VolumeReplication::crd(),
        datamover::VolumeSnapshotBackup::crd(),
        datamover::VolumeSnapshotRestore::crd(),
    ]
}
