use std::fmt;

/// The RPCs this client makes, named as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    GetIdentity,
    GetCapabilities,
    Probe,
    EnableVolumeReplication,
    DisableVolumeReplication,
    PromoteVolume,
    DemoteVolume,
    ResyncVolume,
    GetVolumeReplicationInfo,
    GetReplicationDestinationInfo,
    CreateVolumeGroup,
    ModifyVolumeGroupMembership,
    DeleteVolumeGroup,
    ListVolumeGroups,
    ControllerGetVolumeGroup,
}

impl Method {
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::GetIdentity => "GetIdentity",
            Method::GetCapabilities => "GetCapabilities",
            Method::Probe => "Probe",
            Method::EnableVolumeReplication => "EnableVolumeReplication",
            Method::DisableVolumeReplication => "DisableVolumeReplication",
            Method::PromoteVolume => "PromoteVolume",
            Method::DemoteVolume => "DemoteVolume",
            Method::ResyncVolume => "ResyncVolume",
            Method::GetVolumeReplicationInfo => "GetVolumeReplicationInfo",
            Method::GetReplicationDestinationInfo => "GetReplicationDestinationInfo",
            Method::CreateVolumeGroup => "CreateVolumeGroup",
            Method::ModifyVolumeGroupMembership => "ModifyVolumeGroupMembership",
            Method::DeleteVolumeGroup => "DeleteVolumeGroup",
            Method::ListVolumeGroups => "ListVolumeGroups",
            Method::ControllerGetVolumeGroup => "ControllerGetVolumeGroup",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
