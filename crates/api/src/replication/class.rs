use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Describes how volumes of one CSI driver are replicated; referenced by VolumeReplications.
// Several printcolumn(...) share `type_ = "string"`; clippy mistakes them for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[kube(
    group = "replication.storage.openshift.io",
    version = "v1alpha1",
    kind = "VolumeReplicationClass",
    shortname = "vrc",
    status = "VolumeReplicationClassStatus",
    doc = "VolumeReplicationClass describes how the volumes of one CSI driver are replicated.",
    printcolumn(
        name = "Provisioner",
        type_ = "string",
        json_path = ".spec.provisioner"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
// Adding or removing `parameters` altogether is a change too; `self == oldSelf` on the field
// only sees updates where the field exists on both sides.
#[x_kube(validation = Rule::new("has(self.parameters) == has(oldSelf.parameters)").message("parameters are immutable"))]
#[serde(rename_all = "camelCase")]
pub struct VolumeReplicationClassSpec {
    /// The name of the CSI driver that replicates volumes of this class; must equal the
    /// `driver` of the PersistentVolumes it is used with.
    #[x_kube(validation = Rule::new("self == oldSelf").message("provisioner is immutable"))]
    pub provisioner: String,

    /// Opaque parameters passed to the driver in every replication call, except keys under
    /// `replication.storage.openshift.io/`, which the controller consumes (the Secret to send).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("parameters are immutable"))]
    pub parameters: Option<BTreeMap<String, String>>,
}

/// Upstream declares an (empty) status with a status subresource; so do we, so that the same
/// objects and requests work against either CRD.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub struct VolumeReplicationClassStatus {}

impl VolumeReplicationClassSpec {
    /// The parameters, empty when none are set.
    pub fn parameters(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.parameters.as_ref().unwrap_or(&EMPTY)
    }
}
