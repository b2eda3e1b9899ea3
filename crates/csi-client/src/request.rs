//! What a replication call acts on and carries, and how that becomes the wire request.
//!
//! The builders are public so that what goes on the wire can be checked field by field.

use std::collections::BTreeMap;
use std::fmt;

use crate::Secrets;
use crate::proto::replication::{self as pb, replication_source as source};

/// What a call acts on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// One volume, by the driver's volume id (the PV's `volumeHandle`).
    Volume(String),
    /// One volume group, by the driver's group id.
    VolumeGroup(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Volume(id) => write!(f, "volume {id}"),
            Target::VolumeGroup(id) => write!(f, "volume group {id}"),
        }
    }
}

impl Target {
    fn source(&self) -> pb::ReplicationSource {
        let r#type = match self {
            Target::Volume(id) => source::Type::Volume(source::VolumeSource {
                volume_id: id.clone(),
            }),
            Target::VolumeGroup(id) => source::Type::Volumegroup(source::VolumeGroupSource {
                volume_group_id: id.clone(),
            }),
        };
        pb::ReplicationSource {
            r#type: Some(r#type),
        }
    }

    /// The deprecated `volume_id` field: deployed drivers (ceph-csi) still read it for single
    /// volumes, so it is sent alongside `replication_source`; empty for groups.
    fn legacy_volume_id(&self) -> String {
        match self {
            Target::Volume(id) => id.clone(),
            Target::VolumeGroup(_) => String::new(),
        }
    }
}

/// Everything a replication call carries besides `force`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationRequest {
    pub target: Target,
    /// Driver parameters (the class's parameters minus the reserved keys).
    pub parameters: BTreeMap<String, String>,
    pub secrets: Secrets,
    /// An existing replication id (`spec.replicationHandle`).
    pub replication_id: Option<String>,
}

impl ReplicationRequest {
    pub fn new(target: Target) -> Self {
        Self {
            target,
            parameters: BTreeMap::new(),
            secrets: Secrets::default(),
            replication_id: None,
        }
    }

    pub fn with_parameters(mut self, parameters: BTreeMap<String, String>) -> Self {
        self.parameters = parameters;
        self
    }

    pub fn with_secrets(mut self, secrets: Secrets) -> Self {
        self.secrets = secrets;
        self
    }

    pub fn with_replication_id(mut self, id: impl Into<String>) -> Self {
        self.replication_id = Some(id.into());
        self
    }

    fn replication_id(&self) -> String {
        self.replication_id.clone().unwrap_or_default()
    }

    fn secrets(&self) -> BTreeMap<String, String> {
        self.secrets.expose().clone()
    }

    pub fn enable(&self) -> pb::EnableVolumeReplicationRequest {
        pb::EnableVolumeReplicationRequest {
            volume_id: self.target.legacy_volume_id(),
            parameters: self.parameters.clone(),
            secrets: self.secrets(),
            replication_id: self.replication_id(),
            replication_source: Some(self.target.source()),
        }
    }

    pub fn disable(&self) -> pb::DisableVolumeReplicationRequest {
        pb::DisableVolumeReplicationRequest {
            volume_id: self.target.legacy_volume_id(),
            parameters: self.parameters.clone(),
            secrets: self.secrets(),
            replication_id: self.replication_id(),
            replication_source: Some(self.target.source()),
        }
    }

    pub fn promote(&self, force: bool) -> pb::PromoteVolumeRequest {
        pb::PromoteVolumeRequest {
            volume_id: self.target.legacy_volume_id(),
            force,
            parameters: self.parameters.clone(),
            secrets: self.secrets(),
            replication_id: self.replication_id(),
            replication_source: Some(self.target.source()),
        }
    }

    pub fn demote(&self, force: bool) -> pb::DemoteVolumeRequest {
        pb::DemoteVolumeRequest {
            volume_id: self.target.legacy_volume_id(),
            force,
            parameters: self.parameters.clone(),
            secrets: self.secrets(),
            replication_id: self.replication_id(),
            replication_source: Some(self.target.source()),
        }
    }

    pub fn resync(&self, force: bool) -> pb::ResyncVolumeRequest {
        pb::ResyncVolumeRequest {
            volume_id: self.target.legacy_volume_id(),
            force,
            parameters: self.parameters.clone(),
            secrets: self.secrets(),
            replication_id: self.replication_id(),
            replication_source: Some(self.target.source()),
        }
    }

    /// GetVolumeReplicationInfo carries no parameters.
    pub fn info(&self) -> pb::GetVolumeReplicationInfoRequest {
        pb::GetVolumeReplicationInfoRequest {
            volume_id: self.target.legacy_volume_id(),
            secrets: self.secrets(),
            replication_id: self.replication_id(),
            replication_source: Some(self.target.source()),
        }
    }

    /// GetReplicationDestinationInfo carries only secrets and the source.
    pub fn destination_info(&self) -> pb::GetReplicationDestinationInfoRequest {
        pb::GetReplicationDestinationInfoRequest {
            secrets: self.secrets(),
            replication_source: Some(self.target.source()),
        }
    }
}
