//! Typed answers of the identity service.

use std::collections::BTreeMap;

use crate::proto::identity::{
    self as pb,
    capability::{Type as CapabilityType, service, volume_group, volume_replication},
};

/// Who the driver says it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverIdentity {
    pub name: String,
    pub vendor_version: String,
    pub manifest: BTreeMap<String, String>,
}

impl From<pb::GetIdentityResponse> for DriverIdentity {
    fn from(r: pb::GetIdentityResponse) -> Self {
        Self {
            name: r.name,
            vendor_version: r.vendor_version,
            manifest: r.manifest,
        }
    }
}

/// The capabilities Lifeline acts on, plus the raw list for anything else.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Capabilities {
    pub controller_service: bool,
    /// The driver serves `replication.Controller`; without it no replication call may be made.
    pub volume_replication: bool,
    /// The driver answers GetReplicationDestinationInfo.
    pub get_replication_destination_info: bool,
    /// The driver serves `volumegroup.Controller` (create, delete); a VolumeGroupReplication
    /// needs it.
    pub volume_group: bool,
    /// A volume may be in one group only.
    pub limit_volume_to_one_volume_group: bool,
    /// DeleteVolumeGroup refuses a group that still has volumes.
    pub do_not_allow_vg_to_delete_volumes: bool,
    pub modify_volume_group: bool,
    pub get_volume_group: bool,
    pub list_volume_groups: bool,
    pub raw: Vec<pb::Capability>,
}

impl From<pb::GetCapabilitiesResponse> for Capabilities {
    fn from(r: pb::GetCapabilitiesResponse) -> Self {
        let mut caps = Capabilities::default();
        for capability in &r.capabilities {
            match &capability.r#type {
                Some(CapabilityType::Service(s))
                    if s.r#type() == service::Type::ControllerService =>
                {
                    caps.controller_service = true;
                }
                Some(CapabilityType::VolumeReplication(v)) => match v.r#type() {
                    volume_replication::Type::VolumeReplication => caps.volume_replication = true,
                    volume_replication::Type::GetReplicationDestinationInfo => {
                        caps.get_replication_destination_info = true;
                    }
                    volume_replication::Type::Unknown => {}
                },
                Some(CapabilityType::VolumeGroup(g)) => match g.r#type() {
                    volume_group::Type::VolumeGroup => caps.volume_group = true,
                    volume_group::Type::LimitVolumeToOneVolumeGroup => {
                        caps.limit_volume_to_one_volume_group = true;
                    }
                    volume_group::Type::DoNotAllowVgToDeleteVolumes => {
                        caps.do_not_allow_vg_to_delete_volumes = true;
                    }
                    volume_group::Type::ModifyVolumeGroup => caps.modify_volume_group = true,
                    volume_group::Type::GetVolumeGroup => caps.get_volume_group = true,
                    volume_group::Type::ListVolumeGroups => caps.list_volume_groups = true,
                    volume_group::Type::Unknown => {}
                },
                _ => {}
            }
        }
        caps.raw = r.capabilities;
        caps
    }
}
