//! One site: its volumes, their roles, shipping to and receiving from the peer site.
//!
//! This is the storage system the csi-addons RPCs drive; `service.rs` only translates.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::faults::Faults;
use crate::parameters::{sync_interval, validate_parameters};
use crate::peer::{self, Msg, Stream};
use crate::peer_link::PeerLink;
use crate::store::{GroupDef, LastSync, Role, Store, VolumeState};
use crate::transfer::{push, push_group, receive, receive_group, unexpected};

/// Why an operation failed; `service.rs` maps each to its gRPC code.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("an operation on volume {0} is already in progress")]
    Busy(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
}

type Result<T> = std::result::Result<T, SiteError>;

/// A volume id from the wire: a single path component.
pub fn valid_id(id: &str) -> Result<()> {
    if id.is_empty() || id.contains('/') || id.starts_with('.') || id.len() > 253 {
        return Err(SiteError::InvalidArgument(format!(
            "invalid volume id {id:?}"
        )));
    }
    Ok(())
}

/// A group's id, from CreateVolumeGroup's name: the same name gives the same id at both sites,
/// which is how the peer knows the group.
pub fn group_id(name: &str) -> Result<String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if !ok {
        return Err(SiteError::InvalidArgument(format!(
            "invalid volume group name {name:?}: letters, digits, '-', '_' or '.', at most 128"
        )));
    }
    Ok(format!("vg-{name}"))
}

#[derive(Debug, Clone)]
enum ResyncStatus {
    /// A pull is under way; `previous` is why the one before it failed, if it did.
    Running {
        previous: Option<String>,
    },
    Done(std::result::Result<(), String>),
}

/// How long a peer's resync (pull) waits for an operation on the volume to finish.
pub const PULL_WAITS_FOR_LOCK: Duration = Duration::from_secs(10);

/// How the peer refuses a pull of a volume it does not hold as primary.
pub const NOT_PRIMARY_AT_PEER: &str = "is not primary at the peer site";

/// Why a resync has not happened. A peer that is not primary (yet) is a precondition, not a
/// failure: in a planned migration the old primary is demoted before the new one is promoted,
/// so its resync waits for that promotion (FAILED_PRECONDITION, which the controller retries
/// and reports as an expected wait). Anything else failed (UNAVAILABLE).
fn resync_failed(volume: &str, reason: &str) -> SiteError {
    if reason.contains(NOT_PRIMARY_AT_PEER) {
        SiteError::FailedPrecondition(format!(
            "resync of volume {volume} waits for a primary: {reason}"
        ))
    } else {
        SiteError::Unavailable(format!("resync of volume {volume} failed: {reason}"))
    }
}

pub struct Site {
    pub store: Store,
    pub faults: Arc<Faults>,
    peer: Option<String>,
    link: PeerLink,
    default_interval: Duration,
    locks: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
    resyncs: Mutex<HashMap<String, ResyncStatus>>,
    last_attempt: Mutex<HashMap<String, Instant>>,
}

impl Site {
    pub fn new(
        store: Store,
        faults: Arc<Faults>,
        peer: Option<String>,
        link: PeerLink,
        default_interval: Duration,
    ) -> Self {
        Self {
            store,
            faults,
            peer,
            link,
            default_interval,
            locks: Mutex::default(),
            resyncs: Mutex::default(),
            last_attempt: Mutex::default(),
        }
    }

    /// The volume's lock, or ABORTED when another operation holds it.
    fn try_lock(&self, volume: &str) -> Result<OwnedMutexGuard<()>> {
        self.lock_handle(volume)
            .try_lock_owned()
            .map_err(|_| SiteError::Busy(volume.to_owned()))
    }

    /// Holds the volume as an in-flight operation would, until the guard drops: for tests of
    /// the ABORTED path.
    pub fn hold(&self, volume: &str) -> Result<OwnedMutexGuard<()>> {
        self.try_lock(volume)
    }

    fn lock_handle(&self, volume: &str) -> Arc<AsyncMutex<()>> {
        self.locks
            .lock()
            .unwrap()
            .entry(volume.to_owned())
            .or_default()
            .clone()
    }

    fn state(&self, volume: &str) -> Result<VolumeState> {
        if !self.store.exists(volume) {
            return Err(SiteError::NotFound(format!(
                "volume {volume} does not exist"
            )));
        }
        Ok(self.store.load(volume)?.unwrap_or_default())
    }

    fn replicated(&self, volume: &str) -> Result<VolumeState> {
        let state = self.state(volume)?;
        if !state.replicated {
            return Err(SiteError::FailedPrecondition(format!(
                "replication is not enabled for volume {volume}"
            )));
        }
        Ok(state)
    }

    pub fn enable(
        &self,
        volume: &str,
        parameters: BTreeMap<String, String>,
        replication_id: String,
    ) -> Result<()> {
        validate_parameters(&parameters)?;
        let _guard = self.try_lock(volume)?;
        if !self.store.volume_dir(volume).is_dir() && !self.store.is_group(volume) {
            return Err(SiteError::NotFound(format!(
                "volume {volume} does not exist"
            )));
        }
        let mut state = self.store.load(volume)?.unwrap_or_default();
        state.replicated = true;
        state.parameters = parameters;
        state.replication_id = replication_id;
        self.store.save(volume, &state)?;
        Ok(())
    }

    pub fn disable(&self, volume: &str) -> Result<()> {
        let _guard = self.try_lock(volume)?;
        let mut state = self.state(volume)?;
        state.replicated = false;
        self.store.save(volume, &state)?;
        Ok(())
    }

    /// Promotes. Without force the peer must answer and not be primary (a planned migration).
    /// With force (the disaster path) an unreachable peer is accepted, but a peer that answers
    /// as primary never is: that would make two primaries. This is the driver's split-brain
    /// guard, and why the controller may retry every refused promotion with force.
    pub async fn promote(&self, volume: &str, force: bool) -> Result<()> {
        // Already primary: nothing to decide, and no ABORTED because a sync holds the lock.
        if self.replicated(volume)?.role == Role::Primary {
            return Ok(());
        }
        let _guard = self.try_lock(volume)?;
        let mut state = self.replicated(volume)?;
        if state.role == Role::Primary {
            return Ok(());
        }
        match (self.peer_role(volume).await, force) {
            (Ok((true, Some(Role::Primary))), _) => {
                return Err(SiteError::FailedPrecondition(format!(
                    "cannot promote volume {volume}: the peer site still holds it as primary; \
                     demote it there first, or, if that site is lost, cut it off (stop its \
                     driver or its link) and promote again"
                )));
            }
            (Err(e), false) => {
                return Err(SiteError::FailedPrecondition(format!(
                    "cannot promote volume {volume} without force: the peer site is unreachable ({e})"
                )));
            }
            (Err(e), true) => {
                tracing::warn!(volume, error = %e, "promoting with force: the peer site is unreachable");
            }
            (Ok(_), _) => {}
        }
        state.role = Role::Primary;
        state.last_error = None;
        // The sync it received says how old its data is, not when the peer last got it.
        state.last_sync = None;
        self.store.save(volume, &state)?;
        self.last_attempt.lock().unwrap().remove(volume);
        Ok(())
    }

    /// Demotes; a primary first ships its final state so the peer can take over with nothing
    /// lost (planned migration). If that final sync fails the volume stays primary and the
    /// call fails (UNAVAILABLE, retryable): demoting anyway would drop the writes since the
    /// last sync without anyone knowing. `force` demotes anyway. A peer that is already
    /// primary (it took over in a failover) gets no final sync: this copy's changes since are
    /// the divergence a resync replaces; a site with no peer configured has nowhere to ship.
    pub async fn demote(&self, volume: &str, force: bool) -> Result<()> {
        let _guard = self.try_lock(volume)?;
        let mut state = self.replicated(volume)?;
        if state.role == Role::Primary && self.peer.is_some() {
            if let Ok((true, Some(Role::Primary))) = self.peer_role(volume).await {
                tracing::warn!(
                    volume,
                    "the peer site is already primary; demoting without a final sync"
                );
            } else if let Err(e) = self.ship(volume).await {
                if !force {
                    return Err(SiteError::Unavailable(format!(
                        "volume {volume} is still primary: its final sync to the peer site \
                         failed, and demoting now would lose the writes since the last sync \
                         ({e}); retry once the peer is reachable, or demote with force to give \
                         those writes up"
                    )));
                }
                tracing::warn!(volume, error = %e, "final sync failed; demoting with force");
            }
            state = self.replicated(volume)?;
        }
        state.role = Role::Secondary;
        state.last_error = None;
        self.store.save(volume, &state)?;
        Ok(())
    }

    /// Starts (or reports on) pulling the primary's state from the peer: `Ok(true)` once a
    /// pull started by an earlier call has completed.
    pub fn resync(self: &Arc<Self>, volume: &str) -> Result<bool> {
        let state = self.replicated(volume)?;
        if state.role == Role::Primary {
            return Err(SiteError::FailedPrecondition(format!(
                "volume {volume} is primary; demote it before resyncing"
            )));
        }
        let mut resyncs = self.resyncs.lock().unwrap();
        // While resyncs keep failing (no primary at the peer, the link down), every call reports
        // the same failure and tries again in the background, instead of alternating between
        // "running" and "failed": the caller sees one stable state until a pull succeeds.
        let previous = match resyncs.get(volume).cloned() {
            Some(ResyncStatus::Running { previous: None }) => return Ok(false),
            Some(ResyncStatus::Running {
                previous: Some(reason),
            }) => return Err(resync_failed(volume, &reason)),
            Some(ResyncStatus::Done(Ok(()))) => {
                resyncs.remove(volume);
                return Ok(true);
            }
            Some(ResyncStatus::Done(Err(reason))) => Some(reason),
            None => None,
        };
        resyncs.insert(
            volume.to_owned(),
            ResyncStatus::Running {
                previous: previous.clone(),
            },
        );
        let site = Arc::clone(self);
        let pulled = volume.to_owned();
        tokio::spawn(async move {
            let lock = site.lock_handle(&pulled);
            let _guard = lock.lock().await;
            let result = site
                .pull(&pulled)
                .await
                .map(drop)
                .map_err(|e| e.to_string());
            site.resyncs
                .lock()
                .unwrap()
                .insert(pulled, ResyncStatus::Done(result));
        });
        match previous {
            Some(reason) => Err(resync_failed(volume, &reason)),
            None => Ok(false),
        }
    }

    /// What GetVolumeReplicationInfo reports: the last sync and whether the link is healthy.
    /// On a primary the last sync it shipped; on a secondary (Lifeline's extension) the last
    /// one it received, timed from when the primary took the data, so the age of the data a
    /// failover here would serve is known even when the primary site is gone.
    pub async fn info(&self, volume: &str) -> Result<(LastSync, Option<String>)> {
        let state = self.replicated(volume)?;
        let Some(last) = state.last_sync else {
            return Err(SiteError::NotFound(match state.role {
                Role::Primary => format!("no sync of volume {volume} has completed yet"),
                Role::Secondary => format!("no sync of volume {volume} has been received yet"),
            }));
        };
        if state.role == Role::Secondary {
            return Ok((last, None));
        }
        let problem = match (&state.last_error, self.peer_role(volume).await) {
            (Some(e), _) => Some(format!("last sync failed: {e}")),
            (None, Err(e)) => Some(format!("peer site unreachable: {e}")),
            (None, Ok(_)) => None,
        };
        Ok((last, problem))
    }

    pub fn destination(&self, volume: &str) -> Result<String> {
        self.replicated(volume)?;
        // Both sites name a replicated volume by the same id.
        Ok(volume.to_owned())
    }

    /// Creates the group `name` of `members` (idempotent on the name: the same members again is
    /// the same group); returns its id. Every member must be a volume of this site.
    pub fn create_group(
        &self,
        name: &str,
        members: Vec<String>,
        parameters: BTreeMap<String, String>,
    ) -> Result<(String, GroupDef)> {
        let id = group_id(name)?;
        let _guard = self.try_lock(&id)?;
        self.check_members(&members)?;
        if let Some(def) = self.store.load_group(&id)? {
            if def.members == members {
                return Ok((id, def));
            }
            return Err(SiteError::AlreadyExists(format!(
                "volume group {name} exists with other volumes ({})",
                def.members.join(", ")
            )));
        }
        let def = GroupDef {
            name: name.to_owned(),
            members,
            parameters,
        };
        self.store.save_group(&id, &def)?;
        Ok((id, def))
    }

    /// Makes `members` the group's complete member list.
    pub fn modify_group(&self, id: &str, members: Vec<String>) -> Result<GroupDef> {
        let _guard = self.try_lock(id)?;
        let mut def = self.group(id)?;
        self.check_members(&members)?;
        def.members = members;
        self.store.save_group(id, &def)?;
        Ok(def)
    }

    /// Deletes the group, not its volumes; idempotent. Refused while it is replicated.
    pub fn delete_group(&self, id: &str) -> Result<()> {
        let _guard = self.try_lock(id)?;
        if self.store.load(id)?.is_some_and(|s| s.replicated) {
            return Err(SiteError::FailedPrecondition(format!(
                "volume group {id} is replicated; disable its replication first"
            )));
        }
        self.store.delete_group(id)?;
        Ok(())
    }

    pub fn group(&self, id: &str) -> Result<GroupDef> {
        self.store
            .load_group(id)?
            .ok_or_else(|| SiteError::NotFound(format!("volume group {id} does not exist")))
    }

    pub fn groups(&self) -> Result<Vec<(String, GroupDef)>> {
        Ok(self.store.groups()?)
    }

    fn check_members(&self, members: &[String]) -> Result<()> {
        for (i, volume) in members.iter().enumerate() {
            valid_id(volume)?;
            if !self.store.volume_dir(volume).is_dir() {
                return Err(SiteError::NotFound(format!(
                    "volume {volume} does not exist"
                )));
            }
            if members[..i].contains(volume) {
                return Err(SiteError::InvalidArgument(format!(
                    "volume {volume} is listed twice"
                )));
            }
        }
        Ok(())
    }

    /// Starts a sync of every due primary volume; called periodically. Each runs as a task of
    /// its own, so one volume stuck on a slow or hung peer never delays the others (a volume
    /// whose sync is still running is skipped: its lock is held).
    pub fn sync_due(self: &Arc<Self>) {
        let Ok(volumes) = self.store.volumes() else {
            return;
        };
        for volume in volumes {
            let Ok(Some(state)) = self.store.load(&volume) else {
                continue;
            };
            if !(state.replicated && state.role == Role::Primary) {
                continue;
            }
            let interval = sync_interval(&state.parameters).unwrap_or(self.default_interval);
            let due = self
                .last_attempt
                .lock()
                .unwrap()
                .get(&volume)
                .is_none_or(|t| t.elapsed() >= interval);
            if due {
                let site = Arc::clone(self);
                tokio::spawn(async move {
                    if let Err(e) = site.sync_now(&volume).await {
                        tracing::debug!(volume, error = %e, "sync skipped");
                    }
                });
            }
        }
    }

    /// Ships `volume` now (it must be a replicated primary), recording the outcome.
    pub async fn sync_now(&self, volume: &str) -> Result<u64> {
        let _guard = self.try_lock(volume)?;
        let state = self.replicated(volume)?;
        if state.role != Role::Primary {
            return Err(SiteError::FailedPrecondition(format!(
                "volume {volume} is not primary at this site"
            )));
        }
        self.ship(volume).await
    }

    /// Ships the volume to the peer and records the outcome; the caller holds the lock.
    async fn ship(&self, volume: &str) -> Result<u64> {
        self.last_attempt
            .lock()
            .unwrap()
            .insert(volume.to_owned(), Instant::now());
        let started = Instant::now();
        let time = SystemTime::now();
        let result = async {
            let mut stream = self.dial().await?;
            match self.store.load_group(volume)? {
                Some(group) => {
                    push_group(
                        &self.store,
                        &self.faults,
                        volume,
                        &group.members,
                        &mut stream,
                    )
                    .await
                }
                None => push(&self.store, &self.faults, volume, &mut stream).await,
            }
        }
        .await;
        let mut state = self.store.load(volume)?.unwrap_or_default();
        match &result {
            Ok(bytes) => {
                state.last_sync = Some(LastSync {
                    time,
                    duration: started.elapsed(),
                    bytes: *bytes,
                });
                state.last_error = None;
                tracing::info!(volume, bytes, "synced to peer");
            }
            Err(e) => {
                state.last_error = Some(e.to_string());
                tracing::warn!(volume, error = %e, "sync to peer failed");
            }
        }
        self.store.save(volume, &state)?;
        result.map_err(|e| SiteError::Unavailable(format!("sync to the peer site failed: {e}")))
    }

    async fn pull(&self, volume: &str) -> io::Result<u64> {
        let mut stream = self.dial().await?;
        peer::send(
            &mut stream,
            &Msg::Pull {
                volume: volume.to_owned(),
            },
        )
        .await?;
        match peer::recv(&mut stream).await? {
            Msg::Push {
                volume: v,
                entries,
                taken_ms,
            } if v == volume => receive(&self.store, volume, entries, taken_ms, &mut stream).await,
            Msg::PushGroup {
                group,
                members,
                taken_ms,
            } if group == volume => {
                receive_group(&self.store, volume, members, taken_ms, &mut stream).await
            }
            Msg::Refused { reason } => Err(io::Error::other(reason)),
            other => Err(unexpected(&other)),
        }
    }

    async fn dial(&self) -> io::Result<Stream> {
        if self.faults.link_severed() {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the link to the peer site is severed",
            ));
        }
        let Some(peer) = &self.peer else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "no peer site configured",
            ));
        };
        self.link.connect(peer).await
    }

    async fn peer_role(&self, volume: &str) -> io::Result<(bool, Option<Role>)> {
        let mut stream = self.dial().await?;
        peer::send(
            &mut stream,
            &Msg::RoleQuery {
                volume: volume.to_owned(),
            },
        )
        .await?;
        match peer::recv(&mut stream).await? {
            Msg::RoleReply { replicated, role } => Ok((replicated, role)),
            other => Err(unexpected(&other)),
        }
    }

    /// Serves one connection from the peer site.
    pub async fn serve_peer(&self, mut stream: Stream) -> io::Result<()> {
        if self.faults.link_severed() {
            return Ok(()); // dropping the connection is what a cut link looks like
        }
        match peer::recv(&mut stream).await? {
            Msg::RoleQuery { volume } => {
                let state = self.store.load(&volume)?;
                let reply = Msg::RoleReply {
                    replicated: state.as_ref().is_some_and(|s| s.replicated),
                    role: state.map(|s| s.role),
                };
                peer::send(&mut stream, &reply).await
            }
            Msg::Push {
                volume,
                entries,
                taken_ms,
            } => {
                let Ok(_guard) = self.try_lock(&volume) else {
                    let reason = format!("volume {volume} is busy at the peer site");
                    return peer::send(&mut stream, &Msg::Refused { reason }).await;
                };
                receive(&self.store, &volume, entries, taken_ms, &mut stream)
                    .await
                    .map(drop)
            }
            Msg::PushGroup {
                group,
                members,
                taken_ms,
            } => {
                let Ok(_guard) = self.try_lock(&group) else {
                    let reason = format!("volume group {group} is busy at the peer site");
                    return peer::send(&mut stream, &Msg::Refused { reason }).await;
                };
                receive_group(&self.store, &group, members, taken_ms, &mut stream)
                    .await
                    .map(drop)
            }
            Msg::Pull { volume } => {
                // A resync waits out a sync in flight (they take milliseconds) instead of failing
                // on it: with syncs every second, refusing would fail most resyncs and send the
                // controller into ever longer backoff. A push the other way is refused rather
                // than waited for, so two sites cannot wait on each other.
                let lock = self.lock_handle(&volume).lock_owned();
                let Ok(_guard) = tokio::time::timeout(PULL_WAITS_FOR_LOCK, lock).await else {
                    let reason = format!("volume {volume} is busy at the peer site");
                    return peer::send(&mut stream, &Msg::Refused { reason }).await;
                };
                match (self.store.load(&volume)?, self.store.load_group(&volume)?) {
                    (Some(s), Some(group)) if s.replicated && s.role == Role::Primary => {
                        push_group(
                            &self.store,
                            &self.faults,
                            &volume,
                            &group.members,
                            &mut stream,
                        )
                        .await
                        .map(drop)
                    }
                    (Some(s), None) if s.replicated && s.role == Role::Primary => {
                        push(&self.store, &self.faults, &volume, &mut stream)
                            .await
                            .map(drop)
                    }
                    _ => {
                        let reason = format!("volume {volume} {NOT_PRIMARY_AT_PEER}");
                        peer::send(&mut stream, &Msg::Refused { reason }).await
                    }
                }
            }
            other => Err(unexpected(&other)),
        }
    }
}
