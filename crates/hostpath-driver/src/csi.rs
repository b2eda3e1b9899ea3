//! The CSI spec's Identity and Controller services (csi.v1), for the real CSI sidecars:
//! external-provisioner creates and deletes volumes (empty, from a snapshot, or cloned from a
//! volume, as VolSync's `copyMethod: Snapshot` and `Clone` ask), csi-snapshotter snapshots
//! them. A volume is `<root>/volumes/<id>/` as for replication; a snapshot is a frozen copy
//! under `<root>/csi-snapshots/<id>/`. Names become ids as they are (external-provisioner's
//! `pvc-<uid>`, csi-snapshotter's `snapshot-<uid>`), so a retry with the same name finds what
//! the first call made. Errors carry the CSI spec's codes.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use lifeline_csi_client::proto::csi::v1 as csi;
use lifeline_csi_client::server::{CsiController, CsiIdentity};
use tonic::{Request, Response, Status};

use crate::site::{Site, valid_id};

pub struct CsiService {
    pub site: Arc<Site>,
    pub driver_name: String,
}

/// The volume context key naming the volume's directory on this machine.
pub const VOLUME_PATH: &str = "hostpath.lifeline.dev/path";

/// Who made a snapshot, stored beside its copy: a second CreateSnapshot with the same name
/// but another source is ALREADY_EXISTS, as the spec says.
const SOURCE_FILE: &str = ".lifeline-source";

fn id_of(what: &str, id: &str) -> Result<(), Status> {
    if id.is_empty() {
        return Err(Status::invalid_argument(format!("{what} is required")));
    }
    valid_id(id).map_err(|e| Status::invalid_argument(format!("{what}: {e}")))
}

/// Copies a tree (regular files and directories, with their modes), off the async runtime.
async fn copy_tree(from: &Path, to: &Path) -> Result<u64, Status> {
    let (from, to) = (from.to_owned(), to.to_owned());
    tokio::task::spawn_blocking(move || copy_dir(&from, &to))
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(|e| Status::internal(format!("copying the data: {e}")))
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<u64> {
    std::fs::create_dir_all(to)?;
    let mut bytes = 0;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            bytes += copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            bytes += std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(bytes)
}

#[tonic::async_trait]
impl CsiIdentity for CsiService {
    async fn get_plugin_info(
        &self,
        _: Request<csi::GetPluginInfoRequest>,
    ) -> Result<Response<csi::GetPluginInfoResponse>, Status> {
        Ok(Response::new(csi::GetPluginInfoResponse {
            name: self.driver_name.clone(),
            vendor_version: env!("CARGO_PKG_VERSION").into(),
            manifest: Default::default(),
        }))
    }

    async fn get_plugin_capabilities(
        &self,
        _: Request<csi::GetPluginCapabilitiesRequest>,
    ) -> Result<Response<csi::GetPluginCapabilitiesResponse>, Status> {
        use csi::plugin_capability::{Service, Type, service};
        Ok(Response::new(csi::GetPluginCapabilitiesResponse {
            capabilities: vec![csi::PluginCapability {
                r#type: Some(Type::Service(Service {
                    r#type: service::Type::ControllerService as i32,
                })),
            }],
        }))
    }

    async fn probe(
        &self,
        _: Request<csi::ProbeRequest>,
    ) -> Result<Response<csi::ProbeResponse>, Status> {
        Ok(Response::new(csi::ProbeResponse { ready: Some(true) }))
    }
}

#[tonic::async_trait]
impl CsiController for CsiService {
    async fn create_volume(
        &self,
        r: Request<csi::CreateVolumeRequest>,
    ) -> Result<Response<csi::CreateVolumeResponse>, Status> {
        use csi::volume_capability::AccessType;
        use csi::volume_content_source::Type as Source;
        let r = r.into_inner();
        id_of("name", &r.name)?;
        if r.volume_capabilities.is_empty() {
            return Err(Status::invalid_argument("volume_capabilities is required"));
        }
        if r.volume_capabilities
            .iter()
            .any(|c| matches!(c.access_type, Some(AccessType::Block(_))))
        {
            return Err(Status::invalid_argument(
                "block volumes are not supported: a hostpath volume is a directory",
            ));
        }
        let capacity = r
            .capacity_range
            .as_ref()
            .map_or(0, |c| c.required_bytes.max(c.limit_bytes));
        if capacity < 0 {
            return Err(Status::invalid_argument(
                "capacity_range must not be negative",
            ));
        }
        let store = &self.site.store;
        let dir = store.volume_dir(&r.name);
        let source = r.volume_content_source.and_then(|s| s.r#type);
        if !dir.is_dir() {
            let staging = store.staging_dir(&format!("{}.csi", r.name));
            let _ = std::fs::remove_dir_all(&staging);
            match &source {
                None => std::fs::create_dir_all(&staging)
                    .map_err(|e| Status::internal(e.to_string()))?,
                Some(Source::Snapshot(s)) => {
                    id_of("volume_content_source.snapshot.snapshot_id", &s.snapshot_id)?;
                    let from = store.csi_snapshot_dir(&s.snapshot_id);
                    if !from.is_dir() {
                        return Err(Status::not_found(format!(
                            "snapshot {} does not exist",
                            s.snapshot_id
                        )));
                    }
                    copy_tree(&from, &staging).await?;
                    let _ = std::fs::remove_file(staging.join(SOURCE_FILE));
                }
                Some(Source::Volume(v)) => {
                    id_of("volume_content_source.volume.volume_id", &v.volume_id)?;
                    let from = store.volume_dir(&v.volume_id);
                    if !from.is_dir() {
                        return Err(Status::not_found(format!(
                            "volume {} does not exist",
                            v.volume_id
                        )));
                    }
                    copy_tree(&from, &staging).await?;
                }
            }
            // Whole or not at all: a crash mid-copy leaves only staging, which start cleans.
            std::fs::rename(&staging, &dir).map_err(|e| Status::internal(e.to_string()))?;
            tracing::info!(volume = r.name, "CSI volume created");
        }
        // Where the node side finds the volume (as NodePublishVolume's volume_context would
        // carry it): the PersistentVolume's `volumeAttributes`.
        let volume_context = [(VOLUME_PATH.to_owned(), dir.display().to_string())].into();
        Ok(Response::new(csi::CreateVolumeResponse {
            volume: Some(csi::Volume {
                capacity_bytes: capacity,
                volume_id: r.name,
                volume_context,
                content_source: source.map(|t| csi::VolumeContentSource { r#type: Some(t) }),
                ..Default::default()
            }),
        }))
    }

    async fn delete_volume(
        &self,
        r: Request<csi::DeleteVolumeRequest>,
    ) -> Result<Response<csi::DeleteVolumeResponse>, Status> {
        let r = r.into_inner();
        if r.volume_id.is_empty() {
            return Err(Status::invalid_argument("volume_id is required"));
        }
        // An id this driver could never have made names nothing: deleted already (the spec).
        if valid_id(&r.volume_id).is_err() {
            return Ok(Response::new(csi::DeleteVolumeResponse {}));
        }
        let store = &self.site.store;
        if store
            .load(&r.volume_id)
            .ok()
            .flatten()
            .is_some_and(|s| s.replicated)
        {
            return Err(Status::failed_precondition(format!(
                "volume {} is replicated; disable its replication first",
                r.volume_id
            )));
        }
        match std::fs::remove_dir_all(store.volume_dir(&r.volume_id)) {
            Ok(()) => tracing::info!(volume = r.volume_id, "CSI volume deleted"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Status::internal(e.to_string())),
        }
        Ok(Response::new(csi::DeleteVolumeResponse {}))
    }

    async fn controller_get_capabilities(
        &self,
        _: Request<csi::ControllerGetCapabilitiesRequest>,
    ) -> Result<Response<csi::ControllerGetCapabilitiesResponse>, Status> {
        use csi::controller_service_capability::{Rpc, Type, rpc};
        let capability = |t: rpc::Type| csi::ControllerServiceCapability {
            r#type: Some(Type::Rpc(Rpc { r#type: t as i32 })),
        };
        Ok(Response::new(csi::ControllerGetCapabilitiesResponse {
            capabilities: vec![
                capability(rpc::Type::CreateDeleteVolume),
                capability(rpc::Type::CreateDeleteSnapshot),
                capability(rpc::Type::CloneVolume),
            ],
        }))
    }

    async fn create_snapshot(
        &self,
        r: Request<csi::CreateSnapshotRequest>,
    ) -> Result<Response<csi::CreateSnapshotResponse>, Status> {
        let r = r.into_inner();
        id_of("name", &r.name)?;
        id_of("source_volume_id", &r.source_volume_id)?;
        let store = &self.site.store;
        let dir = store.csi_snapshot_dir(&r.name);
        if dir.is_dir() {
            let source = std::fs::read_to_string(dir.join(SOURCE_FILE)).unwrap_or_default();
            if source != r.source_volume_id {
                return Err(Status::already_exists(format!(
                    "snapshot {} exists, of volume {source}",
                    r.name
                )));
            }
        } else {
            let from = store.volume_dir(&r.source_volume_id);
            if !from.is_dir() {
                return Err(Status::not_found(format!(
                    "volume {} does not exist",
                    r.source_volume_id
                )));
            }
            let staging = store.staging_dir(&format!("{}.snapshot", r.name));
            let _ = std::fs::remove_dir_all(&staging);
            copy_tree(&from, &staging).await?;
            std::fs::write(staging.join(SOURCE_FILE), &r.source_volume_id)
                .and_then(|()| std::fs::rename(&staging, &dir))
                .map_err(|e| Status::internal(e.to_string()))?;
            tracing::info!(
                snapshot = r.name,
                volume = r.source_volume_id,
                "CSI snapshot taken"
            );
        }
        let taken = std::fs::metadata(dir.join(SOURCE_FILE))
            .and_then(|m| m.modified())
            .unwrap_or_else(|_| SystemTime::now());
        let size = crate::tree::size(&crate::tree::manifest(&dir).unwrap_or_default());
        Ok(Response::new(csi::CreateSnapshotResponse {
            snapshot: Some(csi::Snapshot {
                size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
                snapshot_id: r.name,
                source_volume_id: r.source_volume_id,
                creation_time: Some(taken.into()),
                ready_to_use: true,
                group_snapshot_id: String::new(),
            }),
        }))
    }

    async fn delete_snapshot(
        &self,
        r: Request<csi::DeleteSnapshotRequest>,
    ) -> Result<Response<csi::DeleteSnapshotResponse>, Status> {
        let r = r.into_inner();
        if r.snapshot_id.is_empty() {
            return Err(Status::invalid_argument("snapshot_id is required"));
        }
        if valid_id(&r.snapshot_id).is_ok() {
            match std::fs::remove_dir_all(self.site.store.csi_snapshot_dir(&r.snapshot_id)) {
                Ok(()) => tracing::info!(snapshot = r.snapshot_id, "CSI snapshot deleted"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Status::internal(e.to_string())),
            }
        }
        Ok(Response::new(csi::DeleteSnapshotResponse {}))
    }
}
