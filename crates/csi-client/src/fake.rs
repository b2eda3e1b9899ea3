//! An in-process csi-addons driver on a Unix socket that records what it receives and answers
//! as a test tells it to. Behind the `fake` feature: for tests of this crate and of the
//! controllers that use it, never for production code.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::proto::identity as id;
use crate::proto::replication as rep;
use crate::proto::volumegroup as vg;
use crate::server::{
    Controller, ControllerServer, CsiIdentityServer, Identity, IdentityServer,
    VolumeGroupController, VolumeGroupServer,
};

mod csi_identity;
use tokio::net::UnixListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Code, Request, Response, Status};

/// A request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    Enable(rep::EnableVolumeReplicationRequest),
    Disable(rep::DisableVolumeReplicationRequest),
    Promote(rep::PromoteVolumeRequest),
    Demote(rep::DemoteVolumeRequest),
    Resync(rep::ResyncVolumeRequest),
    Info(rep::GetVolumeReplicationInfoRequest),
    DestInfo(rep::GetReplicationDestinationInfoRequest),
    CreateGroup(vg::CreateVolumeGroupRequest),
    ModifyGroup(vg::ModifyVolumeGroupMembershipRequest),
    DeleteGroup(vg::DeleteVolumeGroupRequest),
    ListGroups(vg::ListVolumeGroupsRequest),
    GetGroup(vg::ControllerGetVolumeGroupRequest),
}

impl Received {
    /// The RPC, as named on the wire.
    pub fn method(&self) -> crate::Method {
        use crate::Method as M;
        match self {
            Received::Enable(_) => M::EnableVolumeReplication,
            Received::Disable(_) => M::DisableVolumeReplication,
            Received::Promote(_) => M::PromoteVolume,
            Received::Demote(_) => M::DemoteVolume,
            Received::Resync(_) => M::ResyncVolume,
            Received::Info(_) => M::GetVolumeReplicationInfo,
            Received::DestInfo(_) => M::GetReplicationDestinationInfo,
            Received::CreateGroup(_) => M::CreateVolumeGroup,
            Received::ModifyGroup(_) => M::ModifyVolumeGroupMembership,
            Received::DeleteGroup(_) => M::DeleteVolumeGroup,
            Received::ListGroups(_) => M::ListVolumeGroups,
            Received::GetGroup(_) => M::ControllerGetVolumeGroup,
        }
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// Method name → the status calls of it fail with, and how many more times
    /// (`None`: every time).
    fail: HashMap<&'static str, (Code, String, Option<usize>)>,
    /// Calls never answer (to test deadlines).
    stall: bool,
    info: Option<rep::GetVolumeReplicationInfoResponse>,
    /// Answer GetVolumeReplicationInfo as a healthy volume synced every this often would:
    /// the last sync at the latest multiple of the period.
    syncing_every: Option<std::time::Duration>,
    destination: Option<rep::GetReplicationDestinationInfoResponse>,
    resync_ready: bool,
    /// Advertise VOLUME_REPLICATION (default true via `new`).
    replication_capability: bool,
    /// Advertise GET_REPLICATION_DESTINATION_INFO.
    destination_capability: bool,
    /// Advertise the volume group capabilities (VOLUME_GROUP, MODIFY, GET, LIST).
    group_capability: bool,
    /// Groups by id: (name, member volume ids). Ids are `group-<name>`.
    groups: std::collections::BTreeMap<String, (String, Vec<String>)>,
}

#[derive(Clone, Default)]
pub struct FakeDriver {
    state: Arc<Mutex<State>>,
    pub name: String,
}

impl FakeDriver {
    pub fn new(name: &str) -> Self {
        let driver = Self {
            state: Arc::default(),
            name: name.to_owned(),
        };
        driver.state.lock().unwrap().replication_capability = true;
        driver
    }

    /// Every later call of `method` (a csi-addons RPC name) fails with `code`.
    pub fn fail(&self, method: &'static str, code: Code, message: &str) {
        self.state
            .lock()
            .unwrap()
            .fail
            .insert(method, (code, message.to_owned(), None));
    }

    /// The next `times` calls of `method` fail with `code`; later ones succeed.
    pub fn fail_times(&self, method: &'static str, code: Code, message: &str, times: usize) {
        self.state
            .lock()
            .unwrap()
            .fail
            .insert(method, (code, message.to_owned(), Some(times)));
    }

    /// Stops failing every method.
    pub fn clear_failures(&self) {
        self.state.lock().unwrap().fail.clear();
    }

    /// Which replication capabilities `GetCapabilities` advertises.
    pub fn set_capabilities(&self, volume_replication: bool, destination_info: bool) {
        let mut state = self.state.lock().unwrap();
        state.replication_capability = volume_replication;
        state.destination_capability = destination_info;
    }

    /// Whether `GetCapabilities` advertises the volume group service.
    pub fn set_group_capability(&self, advertised: bool) {
        self.state.lock().unwrap().group_capability = advertised;
    }

    /// The groups it holds: id → member volume ids.
    pub fn groups(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        self.state
            .lock()
            .unwrap()
            .groups
            .iter()
            .map(|(id, (_, members))| (id.clone(), members.clone()))
            .collect()
    }

    fn group_answer(&self, id: &str) -> Result<vg::VolumeGroup, Status> {
        let state = self.state.lock().unwrap();
        let (_, members) = state
            .groups
            .get(id)
            .ok_or_else(|| Status::not_found(format!("no volume group {id}")))?;
        Ok(vg::VolumeGroup {
            volume_group_id: id.to_owned(),
            volume_group_context: Default::default(),
            volumes: members
                .iter()
                .map(|v| crate::proto::csi::v1::Volume {
                    volume_id: v.clone(),
                    ..Default::default()
                })
                .collect(),
        })
    }

    /// Forgets what was received so far.
    pub fn clear_received(&self) {
        self.state.lock().unwrap().received.clear();
    }

    pub fn stall(&self) {
        self.state.lock().unwrap().stall = true;
    }

    pub fn set_info(&self, info: rep::GetVolumeReplicationInfoResponse) {
        self.state.lock().unwrap().info = Some(info);
    }

    /// Makes GetVolumeReplicationInfo report a healthy volume that syncs every `period`.
    pub fn set_syncing_every(&self, period: std::time::Duration) {
        self.state.lock().unwrap().syncing_every = Some(period);
    }

    pub fn set_destination(&self, d: rep::GetReplicationDestinationInfoResponse) {
        self.state.lock().unwrap().destination = Some(d);
    }

    pub fn set_resync_ready(&self, ready: bool) {
        self.state.lock().unwrap().resync_ready = ready;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Records the request, then stalls or fails if told to.
    async fn enter(&self, method: &'static str, received: Received) -> Result<(), Status> {
        let (stall, fail) = {
            let mut state = self.state.lock().unwrap();
            state.received.push(received);
            let fail = match state.fail.get_mut(method) {
                Some((code, message, None)) => Some((*code, message.clone())),
                Some((code, message, Some(left))) if *left > 0 => {
                    *left -= 1;
                    Some((*code, message.clone()))
                }
                _ => None,
            };
            (state.stall, fail)
        };
        if stall {
            std::future::pending::<()>().await;
        }
        match fail {
            Some((code, message)) => Err(Status::new(code, message)),
            None => Ok(()),
        }
    }
}

#[tonic::async_trait]
impl Controller for FakeDriver {
    async fn enable_volume_replication(
        &self,
        r: Request<rep::EnableVolumeReplicationRequest>,
    ) -> Result<Response<rep::EnableVolumeReplicationResponse>, Status> {
        self.enter("EnableVolumeReplication", Received::Enable(r.into_inner()))
            .await?;
        Ok(Response::new(rep::EnableVolumeReplicationResponse {}))
    }

    async fn disable_volume_replication(
        &self,
        r: Request<rep::DisableVolumeReplicationRequest>,
    ) -> Result<Response<rep::DisableVolumeReplicationResponse>, Status> {
        self.enter(
            "DisableVolumeReplication",
            Received::Disable(r.into_inner()),
        )
        .await?;
        Ok(Response::new(rep::DisableVolumeReplicationResponse {}))
    }

    async fn promote_volume(
        &self,
        r: Request<rep::PromoteVolumeRequest>,
    ) -> Result<Response<rep::PromoteVolumeResponse>, Status> {
        self.enter("PromoteVolume", Received::Promote(r.into_inner()))
            .await?;
        Ok(Response::new(rep::PromoteVolumeResponse {}))
    }

    async fn demote_volume(
        &self,
        r: Request<rep::DemoteVolumeRequest>,
    ) -> Result<Response<rep::DemoteVolumeResponse>, Status> {
        self.enter("DemoteVolume", Received::Demote(r.into_inner()))
            .await?;
        Ok(Response::new(rep::DemoteVolumeResponse {}))
    }

    async fn resync_volume(
        &self,
        r: Request<rep::ResyncVolumeRequest>,
    ) -> Result<Response<rep::ResyncVolumeResponse>, Status> {
        self.enter("ResyncVolume", Received::Resync(r.into_inner()))
            .await?;
        let ready = self.state.lock().unwrap().resync_ready;
        Ok(Response::new(rep::ResyncVolumeResponse { ready }))
    }

    async fn get_volume_replication_info(
        &self,
        r: Request<rep::GetVolumeReplicationInfoRequest>,
    ) -> Result<Response<rep::GetVolumeReplicationInfoResponse>, Status> {
        self.enter("GetVolumeReplicationInfo", Received::Info(r.into_inner()))
            .await?;
        let (info, every) = {
            let state = self.state.lock().unwrap();
            (state.info.clone().unwrap_or_default(), state.syncing_every)
        };
        Ok(Response::new(match every {
            Some(period) => syncing(period),
            None => info,
        }))
    }

    async fn get_replication_destination_info(
        &self,
        r: Request<rep::GetReplicationDestinationInfoRequest>,
    ) -> Result<Response<rep::GetReplicationDestinationInfoResponse>, Status> {
        self.enter(
            "GetReplicationDestinationInfo",
            Received::DestInfo(r.into_inner()),
        )
        .await?;
        let d = self
            .state
            .lock()
            .unwrap()
            .destination
            .clone()
            .unwrap_or_default();
        Ok(Response::new(d))
    }
}

#[tonic::async_trait]
impl VolumeGroupController for FakeDriver {
    async fn create_volume_group(
        &self,
        r: Request<vg::CreateVolumeGroupRequest>,
    ) -> Result<Response<vg::CreateVolumeGroupResponse>, Status> {
        let r = r.into_inner();
        self.enter("CreateVolumeGroup", Received::CreateGroup(r.clone()))
            .await?;
        if r.name.is_empty() {
            return Err(Status::invalid_argument("name is required"));
        }
        let id = format!("group-{}", r.name);
        {
            let mut state = self.state.lock().unwrap();
            match state.groups.get(&id) {
                // Idempotent on name: the same members again is the same group.
                Some((_, members)) if *members != r.volume_ids => {
                    return Err(Status::already_exists(format!(
                        "volume group {} exists with other volumes",
                        r.name
                    )));
                }
                Some(_) => {}
                None => {
                    state.groups.insert(id.clone(), (r.name, r.volume_ids));
                }
            }
        }
        Ok(Response::new(vg::CreateVolumeGroupResponse {
            volume_group: Some(self.group_answer(&id)?),
        }))
    }

    async fn modify_volume_group_membership(
        &self,
        r: Request<vg::ModifyVolumeGroupMembershipRequest>,
    ) -> Result<Response<vg::ModifyVolumeGroupMembershipResponse>, Status> {
        let r = r.into_inner();
        self.enter(
            "ModifyVolumeGroupMembership",
            Received::ModifyGroup(r.clone()),
        )
        .await?;
        {
            let mut state = self.state.lock().unwrap();
            let (_, members) = state.groups.get_mut(&r.volume_group_id).ok_or_else(|| {
                Status::not_found(format!("no volume group {}", r.volume_group_id))
            })?;
            *members = r.volume_ids;
        }
        Ok(Response::new(vg::ModifyVolumeGroupMembershipResponse {
            volume_group: Some(self.group_answer(&r.volume_group_id)?),
        }))
    }

    async fn delete_volume_group(
        &self,
        r: Request<vg::DeleteVolumeGroupRequest>,
    ) -> Result<Response<vg::DeleteVolumeGroupResponse>, Status> {
        let r = r.into_inner();
        self.enter("DeleteVolumeGroup", Received::DeleteGroup(r.clone()))
            .await?;
        // Idempotent: deleting a group that is gone succeeds.
        self.state.lock().unwrap().groups.remove(&r.volume_group_id);
        Ok(Response::new(vg::DeleteVolumeGroupResponse {}))
    }

    async fn list_volume_groups(
        &self,
        r: Request<vg::ListVolumeGroupsRequest>,
    ) -> Result<Response<vg::ListVolumeGroupsResponse>, Status> {
        let r = r.into_inner();
        self.enter("ListVolumeGroups", Received::ListGroups(r.clone()))
            .await?;
        let ids: Vec<String> = self.state.lock().unwrap().groups.keys().cloned().collect();
        // The token is the index of the first entry of the page.
        let start: usize = if r.starting_token.is_empty() {
            0
        } else {
            r.starting_token.parse().map_err(|_| {
                Status::aborted(format!("bad starting_token {:?}", r.starting_token))
            })?
        };
        let size = usize::try_from(r.max_entries)
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or(ids.len());
        let page: Vec<&String> = ids.iter().skip(start).take(size).collect();
        let next = start + page.len();
        let mut entries = Vec::new();
        for id in page {
            entries.push(vg::list_volume_groups_response::Entry {
                volume_group: Some(self.group_answer(id)?),
            });
        }
        Ok(Response::new(vg::ListVolumeGroupsResponse {
            entries,
            next_token: if next < ids.len() {
                next.to_string()
            } else {
                String::new()
            },
        }))
    }

    async fn controller_get_volume_group(
        &self,
        r: Request<vg::ControllerGetVolumeGroupRequest>,
    ) -> Result<Response<vg::ControllerGetVolumeGroupResponse>, Status> {
        let r = r.into_inner();
        self.enter("ControllerGetVolumeGroup", Received::GetGroup(r.clone()))
            .await?;
        Ok(Response::new(vg::ControllerGetVolumeGroupResponse {
            volume_group: Some(self.group_answer(&r.volume_group_id)?),
        }))
    }
}

#[tonic::async_trait]
impl Identity for FakeDriver {
    async fn get_identity(
        &self,
        _: Request<id::GetIdentityRequest>,
    ) -> Result<Response<id::GetIdentityResponse>, Status> {
        Ok(Response::new(id::GetIdentityResponse {
            name: self.name.clone(),
            vendor_version: "1.2.3".into(),
            manifest: [("commit".to_owned(), "abc".to_owned())].into(),
        }))
    }

    async fn get_capabilities(
        &self,
        _: Request<id::GetCapabilitiesRequest>,
    ) -> Result<Response<id::GetCapabilitiesResponse>, Status> {
        use id::capability::{
            Service, Type, VolumeGroup, VolumeReplication, service, volume_group,
            volume_replication,
        };
        let (replication, destination, groups) = {
            let state = self.state.lock().unwrap();
            (
                state.replication_capability,
                state.destination_capability,
                state.group_capability,
            )
        };
        let mut capabilities = vec![id::Capability {
            r#type: Some(Type::Service(Service {
                r#type: service::Type::ControllerService as i32,
            })),
        }];
        let replication_types = [
            (replication, volume_replication::Type::VolumeReplication),
            (
                destination,
                volume_replication::Type::GetReplicationDestinationInfo,
            ),
        ];
        for (advertised, kind) in replication_types {
            if advertised {
                capabilities.push(id::Capability {
                    r#type: Some(Type::VolumeReplication(VolumeReplication {
                        r#type: kind as i32,
                    })),
                });
            }
        }
        if groups {
            for kind in [
                volume_group::Type::VolumeGroup,
                volume_group::Type::ModifyVolumeGroup,
                volume_group::Type::GetVolumeGroup,
                volume_group::Type::ListVolumeGroups,
            ] {
                capabilities.push(id::Capability {
                    r#type: Some(Type::VolumeGroup(VolumeGroup {
                        r#type: kind as i32,
                    })),
                });
            }
        }
        Ok(Response::new(id::GetCapabilitiesResponse { capabilities }))
    }

    async fn probe(
        &self,
        _: Request<id::ProbeRequest>,
    ) -> Result<Response<id::ProbeResponse>, Status> {
        Ok(Response::new(id::ProbeResponse { ready: Some(true) }))
    }
}

/// A fake driver serving on a Unix socket until stopped.
pub struct Served {
    pub path: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Served {
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// Stops serving and removes the socket, as a driver that exits does.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Serves `driver` on a new Unix socket at `path` (replacing a stale one).
pub fn serve(driver: FakeDriver, path: &Path) -> Served {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).expect("bind socket");
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(ControllerServer::new(driver.clone()))
            .add_service(VolumeGroupServer::new(driver.clone()))
            .add_service(IdentityServer::new(driver.clone()))
            .add_service(CsiIdentityServer::new(driver))
            .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
    });
    Served {
        path: path.to_owned(),
        shutdown: Some(tx),
        task: Some(task),
    }
}

/// The answer of a healthy volume synced every `period` (the last sync at the latest multiple
/// of it, taking a tenth of it).
fn syncing(period: std::time::Duration) -> rep::GetVolumeReplicationInfoResponse {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let step = period.as_millis().max(1);
    let last_ms = now.as_millis() / step * step;
    rep::GetVolumeReplicationInfoResponse {
        last_sync_time: Some(prost_types::Timestamp {
            seconds: i64::try_from(last_ms / 1000).unwrap_or(i64::MAX),
            nanos: i32::try_from(last_ms % 1000 * 1_000_000).unwrap_or(0),
        }),
        last_sync_duration: prost_types::Duration::try_from(period / 10).ok(),
        last_sync_bytes: 4096,
        status: rep::get_volume_replication_info_response::Status::Healthy as i32,
        status_message: String::new(),
    }
}
