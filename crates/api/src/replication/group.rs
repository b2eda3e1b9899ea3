//! The volume-group kinds of csi-addons (v0.9.0+): a VolumeGroupReplication replicates the
//! claims its selector picks as one crash-consistent unit, through a VolumeReplication whose
//! `dataSource` is the group; a VolumeGroupReplicationClass names the driver's group parameters;
//! a VolumeGroupReplicationContent (cluster-scoped) records the driver's group and its member
//! volume handles. Field for field as upstream's CRDs, CEL immutability rules included.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ReplicationState, VolumeReplicationStatus};

/// Describes how groups of one CSI driver's volumes are grouped and replicated.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[kube(
    group = "replication.storage.openshift.io",
    version = "v1alpha1",
    kind = "VolumeGroupReplicationClass",
    shortname = "vgrc",
    status = "VolumeGroupReplicationClassStatus",
    doc = "VolumeGroupReplicationClass describes how groups of one CSI driver's volumes are replicated.",
    printcolumn(
        name = "provisioner",
        type_ = "string",
        json_path = ".spec.provisioner"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("has(self.parameters) == has(oldSelf.parameters)").message("parameters are immutable"))]
#[serde(rename_all = "camelCase")]
pub struct VolumeGroupReplicationClassSpec {
    /// The CSI driver that groups and replicates the volumes.
    #[x_kube(validation = Rule::new("self == oldSelf").message("provisioner is immutable"))]
    pub provisioner: String,

    /// Opaque parameters for the driver's group calls, except keys under
    /// `replication.storage.openshift.io/` (`group-replication-secret-name`/`-namespace`: the
    /// Secret to send).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("parameters are immutable"))]
    pub parameters: Option<BTreeMap<String, String>>,
}

impl VolumeGroupReplicationClassSpec {
    /// The parameters, empty when none are set.
    pub fn parameters(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.parameters.as_ref().unwrap_or(&EMPTY)
    }
}

/// Upstream declares an (empty) status with a status subresource; so do we.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct VolumeGroupReplicationClassStatus {}

/// Replicates the claims `source.selector` picks as one unit, in the role `replicationState`
/// asks for.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "replication.storage.openshift.io",
    version = "v1alpha1",
    kind = "VolumeGroupReplication",
    namespaced,
    status = "VolumeGroupReplicationStatus",
    shortname = "vgr",
    doc = "VolumeGroupReplication replicates the claims its selector picks as one crash-consistent unit.",
    printcolumn(
        name = "VolumeGroupReplicationClass",
        type_ = "string",
        json_path = ".spec.volumeGroupReplicationClassName"
    ),
    printcolumn(
        name = "VolumeGroupReplicationContent",
        type_ = "string",
        json_path = ".spec.volumeGroupReplicationContentName"
    ),
    printcolumn(
        name = "desiredState",
        type_ = "string",
        json_path = ".spec.replicationState"
    ),
    printcolumn(name = "currentState", type_ = "string", json_path = ".status.state"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct VolumeGroupReplicationSpec {
    /// The VolumeGroupReplicationClass (cluster-scoped) naming the driver's group parameters.
    #[x_kube(validation = Rule::new("self == oldSelf").message("volumeGroupReplicationClassName is immutable"))]
    pub volume_group_replication_class_name: String,

    /// The VolumeReplicationClass of the group's VolumeReplication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("volumeReplicationClassName is immutable"))]
    pub volume_replication_class_name: Option<String>,

    /// The name of the group's VolumeReplication; generated when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("volumeReplicationName is immutable"))]
    pub volume_replication_name: Option<String>,

    /// The VolumeGroupReplicationContent that records the driver's group; generated when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("volumeGroupReplicationContentName is immutable"))]
    pub volume_group_replication_content_name: Option<String>,

    /// Which claims are in the group.
    #[x_kube(validation = Rule::new("self == oldSelf").message("source is immutable"))]
    pub source: VolumeGroupReplicationSource,

    /// The role this site's copies should have, as for a VolumeReplication.
    pub replication_state: ReplicationState,

    /// When secondary, resync whenever the driver reports the copies out of sync.
    #[serde(default)]
    #[schemars(extend("default" = false))]
    pub auto_resync: bool,

    /// The group is managed outside this controller (another operator creates the driver's
    /// group and content).
    #[serde(default)]
    #[schemars(extend("default" = false))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("external is immutable"))]
    pub external: bool,
}

/// Which claims are in a group.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
pub struct VolumeGroupReplicationSource {
    /// The claims in the VolumeGroupReplication's namespace with these labels.
    #[x_kube(validation = Rule::new("self == oldSelf").message("selector is immutable"))]
    #[schemars(extend("x-kubernetes-map-type" = "atomic"))]
    pub selector: LabelSelector,
}

/// A VolumeReplication's status, plus the claims in the group.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeGroupReplicationStatus {
    #[serde(flatten)]
    pub replication: VolumeReplicationStatus,

    /// The claims in the group, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub persistent_volume_claims_ref_list: Vec<NameRef>,
}

/// A reference by name (`corev1.LocalObjectReference`).
#[derive(
    Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[schemars(extend("x-kubernetes-map-type" = "atomic"))]
pub struct NameRef {
    #[serde(default)]
    #[schemars(extend("default" = ""))]
    pub name: String,
}

/// The driver's group of volumes, as the controller created it (cluster-scoped, like a
/// PersistentVolume for a claim).
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "replication.storage.openshift.io",
    version = "v1alpha1",
    kind = "VolumeGroupReplicationContent",
    status = "VolumeGroupReplicationContentStatus",
    shortname = "vgrcontent",
    doc = "VolumeGroupReplicationContent records a CSI driver's volume group and its members.",
    printcolumn(
        name = "VolumeGroupReplicationClass",
        type_ = "string",
        json_path = ".spec.volumeGroupReplicationClassName"
    ),
    printcolumn(
        name = "VolumeGroupReplication",
        type_ = "string",
        json_path = ".spec.volumeGroupReplicationRef.name"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct VolumeGroupReplicationContentSpec {
    /// The VolumeGroupReplication this content belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-map-type" = "atomic"))]
    #[x_kube(validation = Rule::new("self != null ? has(self.name) && has(self.__namespace__) && has(self.uid) : true").message("volumeGroupReplicationRef.name, volumeGroupReplicationRef.namespace and volumeGroupReplicationRef.uid must be set if volumeGroupReplicationRef is defined"))]
    pub volume_group_replication_ref: Option<ObjectReference>,

    /// The driver's id of the group (CreateVolumeGroup's answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_group_replication_handle: Option<String>,

    /// The CSI driver.
    pub provisioner: String,

    /// The VolumeGroupReplicationClass it was made with.
    pub volume_group_replication_class_name: String,

    /// The member volumes.
    pub source: VolumeGroupReplicationContentSource,

    /// What the driver returned about the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("field is immutable"))]
    pub volume_group_attributes: Option<BTreeMap<String, String>>,
}

/// The member volumes of a group, by CSI volume handle.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeGroupReplicationContentSource {
    pub volume_handles: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeGroupReplicationContentStatus {
    /// The peer's id of the group.
    #[serde(
        default,
        rename = "destinationVolumeGroupID",
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_volume_group_id: Option<String>,

    /// The member PersistentVolumes, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub persistent_volume_ref_list: Vec<NameRef>,

    /// Each member's handle here and at the peer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub persistent_volume_mapping_list: Vec<VolumeMapping>,
}

/// One member volume's handles.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMapping {
    /// The PersistentVolume's name.
    pub name: String,
    pub volume_handle: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_volume_handle: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(file: &str) -> serde_json::Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/upstream-crds/samples")
            .join(file);
        serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// Upstream's objects read into our types and written back unchanged.
    #[test]
    fn upstream_samples_round_trip() {
        let vgr = sample("kca-sample-volumegroupreplication.yaml");
        let typed: VolumeGroupReplication = serde_json::from_value(vgr.clone()).unwrap();
        assert_eq!(typed.spec.replication_state, ReplicationState::Primary);
        assert!(!typed.spec.auto_resync && !typed.spec.external);
        assert_eq!(
            typed.spec.source.selector.match_labels.as_ref().unwrap()["group"],
            "replication"
        );
        let mut back = serde_json::to_value(&typed).unwrap();
        // The defaults upstream's API server would have filled in too.
        back["spec"].as_object_mut().unwrap().remove("autoResync");
        back["spec"].as_object_mut().unwrap().remove("external");
        assert_eq!(back, vgr);

        let class = sample("kca-sample-volumegroupreplicationclass.yaml");
        let typed: VolumeGroupReplicationClass = serde_json::from_value(class.clone()).unwrap();
        assert_eq!(typed.spec.parameters().len(), 2);
        assert_eq!(serde_json::to_value(&typed).unwrap(), class);
    }

    #[test]
    fn a_content_and_a_status_with_every_field_round_trip() {
        let content = serde_json::json!({
            "apiVersion": "replication.storage.openshift.io/v1alpha1",
            "kind": "VolumeGroupReplicationContent",
            "metadata": {"name": "c"},
            "spec": {"provisioner": "p", "volumeGroupReplicationClassName": "g",
                "volumeGroupReplicationHandle": "h", "source": {"volumeHandles": ["v1", "v2"]},
                "volumeGroupAttributes": {"k": "v"},
                "volumeGroupReplicationRef": {"name": "vm", "namespace": "ns", "uid": "u"}},
            "status": {"destinationVolumeGroupID": "peer",
                "persistentVolumeRefList": [{"name": "pv1"}],
                "persistentVolumeMappingList": [{"name": "pv1", "volumeHandle": "v1", "destinationVolumeHandle": "d1"}]},
        });
        let typed: VolumeGroupReplicationContent = serde_json::from_value(content.clone()).unwrap();
        assert_eq!(serde_json::to_value(&typed).unwrap(), content);

        let status = serde_json::json!({"state": "Primary", "observedGeneration": 2,
            "lastSyncTime": "2026-12-01T00:00:00Z", "lastSyncDuration": "1s",
            "destinationVolumeID": "g", "persistentVolumeClaimsRefList": [{"name": "boot"}, {"name": "data"}]});
        let typed: VolumeGroupReplicationStatus = serde_json::from_value(status.clone()).unwrap();
        assert_eq!(typed.persistent_volume_claims_ref_list.len(), 2);
        assert_eq!(typed.replication.observed_generation, Some(2));
        assert_eq!(serde_json::to_value(&typed).unwrap(), status);
    }
}
