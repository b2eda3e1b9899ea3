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
        spec_optional(replication::VolumeGroupReplicationClass::crd()),
        spec_optional(replication::VolumeGroupReplication::crd()),
        spec_optional(replication::VolumeGroupReplicationContent::crd()),
        datamover::VolumeSnapshotBackup::crd(),
        datamover::VolumeSnapshotRestore::crd(),
    ]
}

/// The group kinds' upstream CRDs do not require `spec` (kube's derive always does): an object
/// without one applies to upstream's, so it must apply to ours. (Lifeline's controllers read
/// such an object as one they cannot parse, and say so.)
fn spec_optional(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
            && let Some(required) = schema.required.as_mut()
        {
            required.retain(|field| field != "spec");
            if required.is_empty() {
                schema.required = None;
            }
        }
    }
    crd
}
