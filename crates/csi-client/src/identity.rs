//! Typed answers of the identity service.

use std::collections::BTreeMap;

use crate::proto::identity::{
    self as pb,
    capability::{Type as CapabilityType, service, volume_replication},
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
                _ => {}
            }
        }
        caps.raw = r.capabilities;
        caps
    }
}
