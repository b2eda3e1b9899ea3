//! The csi-addons gRPC services: translate requests to [`Site`] operations and errors to codes.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use lifeline_csi_client::proto::identity as id;
use lifeline_csi_client::proto::replication::{self as rep, replication_source};
use lifeline_csi_client::server::{Controller, Identity};
use tonic::{Request, Response, Status};

use crate::site::{Site, SiteError};

pub struct Service {
    pub site: Arc<Site>,
    pub driver_name: String,
    /// When set, every request's secrets must hold this key with this value.
    pub required_secret: Option<(String, String)>,
}

impl From<SiteError> for Status {
    fn from(e: SiteError) -> Self {
        let message = e.to_string();
        match e {
            SiteError::NotFound(_) => Status::not_found(message),
            SiteError::FailedPrecondition(_) => Status::failed_precondition(message),
            SiteError::InvalidArgument(_) => Status::invalid_argument(message),
            SiteError::Busy(_) => Status::aborted(message),
            SiteError::AlreadyExists(_) => Status::already_exists(message),
            SiteError::Unavailable(_) => Status::unavailable(message),
            SiteError::Io(_) => Status::internal(message),
        }
    }
}

/// What a request replicates: `replication_source.volume` or `.volumegroup` (a group is
/// replicated as one unit under its id), else the deprecated `volume_id`.
fn volume_of(source: Option<&rep::ReplicationSource>, legacy: &str) -> Result<String, Status> {
    let id = match source.and_then(|s| s.r#type.as_ref()) {
        Some(replication_source::Type::Volume(v)) => v.volume_id.clone(),
        Some(replication_source::Type::Volumegroup(g)) => g.volume_group_id.clone(),
        None => legacy.to_owned(),
    };
    crate::site::valid_id(&id)?;
    Ok(id)
}

/// Compares two secrets in time that depends on their lengths only, not on where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

impl Service {
    /// Faults first, then the secret check: what every RPC does before its own work.
    pub(crate) async fn admit(
        &self,
        method: &str,
        secrets: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), Status> {
        self.site.faults.before(method).await?;
        if let Some((key, value)) = &self.required_secret {
            match secrets.get(key) {
                None => {
                    return Err(Status::unauthenticated(format!(
                        "the request's secrets lack the required key {key:?}"
                    )));
                }
                Some(given) if !same_secret(given.as_bytes(), value.as_bytes()) => {
                    return Err(Status::unauthenticated(format!(
                        "the request's secret {key:?} does not hold the expected value"
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl Controller for Service {
    async fn enable_volume_replication(
        &self,
        r: Request<rep::EnableVolumeReplicationRequest>,
    ) -> Result<Response<rep::EnableVolumeReplicationResponse>, Status> {
        let r = r.into_inner();
        self.admit("EnableVolumeReplication", &r.secrets).await?;
        let volume = volume_of(r.replication_source.as_ref(), &r.volume_id)?;
        self.site.enable(&volume, r.parameters, r.replication_id)?;
        tracing::info!(volume, "replication enabled");
        Ok(Response::new(rep::EnableVolumeReplicationResponse {}))
    }

    async fn disable_volume_replication(
        &self,
        r: Request<rep::DisableVolumeReplicationRequest>,
    ) -> Result<Response<rep::DisableVolumeReplicationResponse>, Status> {
        let r = r.into_inner();
        self.admit("DisableVolumeReplication", &r.secrets).await?;
        let volume = volume_of(r.replication_source.as_ref(), &r.volume_id)?;
        self.site.disable(&volume)?;
        tracing::info!(volume, "replication disabled");
        Ok(Response::new(rep::DisableVolumeReplicationResponse {}))
    }

    async fn promote_volume(
        &self,
        r: Request<rep::PromoteVolumeRequest>,
    ) -> Result<Response<rep::PromoteVolumeResponse>, Status> {
        let r = r.into_inner();
        self.admit("PromoteVolume", &r.secrets).await?;
        let volume = volume_of(r.replication_source.as_ref(), &r.volume_id)?;
        self.site.promote(&volume, r.force).await?;
        tracing::info!(volume, force = r.force, "promoted");
        Ok(Response::new(rep::PromoteVolumeResponse {}))
    }

    async fn demote_volume(
        &self,
        r: Request<rep::DemoteVolumeRequest>,
    ) -> Result<Response<rep::DemoteVolumeResponse>, Status> {
        let r = r.into_inner();
        self.admit("DemoteVolume", &r.secrets).await?;
        let volume = volume_of(r.replication_source.as_ref(), &r.volume_id)?;
        self.site.demote(&volume, r.force).await?;
        tracing::info!(volume, force = r.force, "demoted");
        Ok(Response::new(rep::DemoteVolumeResponse {}))
    }

    async fn resync_volume(
        &self,
        r: Request<rep::ResyncVolumeRequest>,
    ) -> Result<Response<rep::ResyncVolumeResponse>, Status> {
        let r = r.into_inner();
        self.admit("ResyncVolume", &r.secrets).await?;
        let volume = volume_of(r.replication_source.as_ref(), &r.volume_id)?;
        let ready = self.site.resync(&volume)?;
        tracing::info!(volume, ready, "resync");
        Ok(Response::new(rep::ResyncVolumeResponse { ready }))
    }

    async fn get_volume_replication_info(
        &self,
        r: Request<rep::GetVolumeReplicationInfoRequest>,
    ) -> Result<Response<rep::GetVolumeReplicationInfoResponse>, Status> {
        use rep::get_volume_replication_info_response::Status as Health;
        let r = r.into_inner();
        self.admit("GetVolumeReplicationInfo", &r.secrets).await?;
        let volume = volume_of(r.replication_source.as_ref(), &r.volume_id)?;
        let (last, problem) = self.site.info(&volume).await?;
        let since_epoch = last.time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let health = if problem.is_some() {
            Health::Degraded
        } else {
            Health::Healthy
        };
        Ok(Response::new(rep::GetVolumeReplicationInfoResponse {
            last_sync_time: Some(prost_types::Timestamp {
                seconds: since_epoch.as_secs() as i64,
                nanos: since_epoch.subsec_nanos() as i32,
            }),
            last_sync_duration: prost_types::Duration::try_from(last.duration).ok(),
            last_sync_bytes: i64::try_from(last.bytes).unwrap_or(i64::MAX),
            status: health as i32,
            status_message: problem.unwrap_or_default(),
        }))
    }

    async fn get_replication_destination_info(
        &self,
        r: Request<rep::GetReplicationDestinationInfoRequest>,
    ) -> Result<Response<rep::GetReplicationDestinationInfoResponse>, Status> {
        use rep::replication_destination::{Type, VolumeDestination, VolumeGroupDestination};
        let r = r.into_inner();
        self.admit("GetReplicationDestinationInfo", &r.secrets)
            .await?;
        let volume = volume_of(r.replication_source.as_ref(), "")?;
        let peer_id = self.site.destination(&volume)?;
        let destination = match self
            .site
            .store
            .load_group(&volume)
            .map_err(SiteError::from)?
        {
            // Both sites name a group and its members by the same ids.
            Some(group) => Type::Volumegroup(VolumeGroupDestination {
                volume_group_id: peer_id,
                volume_ids: group
                    .members
                    .iter()
                    .map(|m| (m.clone(), m.clone()))
                    .collect(),
            }),
            None => Type::Volume(VolumeDestination { volume_id: peer_id }),
        };
        Ok(Response::new(rep::GetReplicationDestinationInfoResponse {
            replication_destination: Some(rep::ReplicationDestination {
                r#type: Some(destination),
            }),
        }))
    }
}

#[tonic::async_trait]
impl Identity for Service {
    async fn get_identity(
        &self,
        _: Request<id::GetIdentityRequest>,
    ) -> Result<Response<id::GetIdentityResponse>, Status> {
        Ok(Response::new(id::GetIdentityResponse {
            name: self.driver_name.clone(),
            vendor_version: env!("CARGO_PKG_VERSION").to_owned(),
            manifest: Default::default(),
        }))
    }

    async fn get_capabilities(
        &self,
        _: Request<id::GetCapabilitiesRequest>,
    ) -> Result<Response<id::GetCapabilitiesResponse>, Status> {
        use id::capability::{
            Service as Svc, Type, VolumeGroup, VolumeReplication, service, volume_group,
            volume_replication,
        };
        let group = |t: volume_group::Type| id::Capability {
            r#type: Some(Type::VolumeGroup(VolumeGroup { r#type: t as i32 })),
        };
        let replication = |t: volume_replication::Type| id::Capability {
            r#type: Some(Type::VolumeReplication(VolumeReplication {
                r#type: t as i32,
            })),
        };
        Ok(Response::new(id::GetCapabilitiesResponse {
            capabilities: vec![
                id::Capability {
                    r#type: Some(Type::Service(Svc {
                        r#type: service::Type::ControllerService as i32,
                    })),
                },
                replication(volume_replication::Type::VolumeReplication),
                replication(volume_replication::Type::GetReplicationDestinationInfo),
                group(volume_group::Type::VolumeGroup),
                group(volume_group::Type::ModifyVolumeGroup),
                group(volume_group::Type::GetVolumeGroup),
                group(volume_group::Type::ListVolumeGroups),
            ],
        }))
    }

    async fn probe(
        &self,
        _: Request<id::ProbeRequest>,
    ) -> Result<Response<id::ProbeResponse>, Status> {
        Ok(Response::new(id::ProbeResponse { ready: Some(true) }))
    }
}
