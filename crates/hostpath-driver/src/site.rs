//! One site: its volumes, their roles, shipping to and receiving from the peer site.
//!
//! This is the storage system the csi-addons RPCs drive; `service.rs` only translates.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use lifeline_api::replication::{SCHEDULING_INTERVAL, SCHEDULING_START_TIME, SchedulingInterval};
use tokio::net::TcpStream;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::faults::Faults;
use crate::peer::{self, Msg};
use crate::store::{LastSync, Role, Store, VolumeState};
use crate::tree;

/// Driver parameter for sub-minute sync intervals (tests, demos).
pub const SYNC_INTERVAL_SECONDS: &str = "lifeline.dev/sync-interval-seconds";

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
    Unavailable(String),
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
}

type Result<T> = std::result::Result<T, SiteError>;

#[derive(Debug, Clone)]
enum ResyncStatus {
    Running,
    Done(std::result::Result<(), String>),
}

pub struct Site {
    pub store: Store,
    pub faults: Arc<Faults>,
    peer: Option<String>,
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
        default_interval: Duration,
    ) -> Self {
        Self {
            store,
            faults,
            peer,
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
        if !self.store.volume_dir(volume).is_dir() {
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

    pub async fn promote(&self, volume: &str, force: bool) -> Result<()> {
        let _guard = self.try_lock(volume)?;
        let mut state = self.replicated(volume)?;
        if state.role == Role::Primary {
            return Ok(());
        }
        if !force {
            match self.peer_role(volume).await {
                Err(e) => {
                    return Err(SiteError::FailedPrecondition(format!(
                        "cannot promote volume {volume} without force: the peer site is unreachable ({e})"
                    )));
                }
                Ok((true, Some(Role::Primary))) => {
                    return Err(SiteError::FailedPrecondition(format!(
                        "cannot promote volume {volume} without force: the peer site still holds it as primary"
                    )));
                }
                Ok(_) => {}
            }
        }
        state.role = Role::Primary;
        state.last_error = None;
        self.store.save(volume, &state)?;
        self.last_attempt.lock().unwrap().remove(volume);
        Ok(())
    }

    /// Demotes; a primary first ships its final state so the peer can take over with nothing
    /// lost (planned migration). If the peer is unreachable the demotion still happens.
    pub async fn demote(&self, volume: &str) -> Result<()> {
        let _guard = self.try_lock(volume)?;
        let mut state = self.replicated(volume)?;
        if state.role == Role::Primary {
            if let Err(e) = self.ship(volume).await {
                tracing::warn!(volume, error = %e, "final sync before demotion failed");
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
        match resyncs.get(volume).cloned() {
            Some(ResyncStatus::Running) => Ok(false),
            Some(ResyncStatus::Done(Ok(()))) => {
                resyncs.remove(volume);
                Ok(true)
            }
            Some(ResyncStatus::Done(Err(e))) => {
                resyncs.remove(volume);
                Err(SiteError::Unavailable(format!(
                    "resync of volume {volume} failed: {e}"
                )))
            }
            None => {
                resyncs.insert(volume.to_owned(), ResyncStatus::Running);
                let site = Arc::clone(self);
                let volume = volume.to_owned();
                tokio::spawn(async move {
                    let lock = site.lock_handle(&volume);
                    let _guard = lock.lock().await;
                    let result = site
                        .pull(&volume)
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string());
                    site.resyncs
                        .lock()
                        .unwrap()
                        .insert(volume, ResyncStatus::Done(result));
                });
                Ok(false)
            }
        }
    }

    /// What GetVolumeReplicationInfo reports: the last sync and whether the link is healthy.
    pub async fn info(&self, volume: &str) -> Result<(LastSync, Option<String>)> {
        let state = self.replicated(volume)?;
        if state.role != Role::Primary {
            return Err(SiteError::FailedPrecondition(format!(
                "volume {volume} is not primary at this site"
            )));
        }
        let Some(last) = state.last_sync else {
            return Err(SiteError::NotFound(format!(
                "no sync of volume {volume} has completed yet"
            )));
        };
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

    /// Ships every due primary volume; called periodically.
    pub async fn sync_due(&self) {
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
            if due && let Err(e) = self.sync_now(&volume).await {
                tracing::debug!(volume, error = %e, "sync skipped");
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
            push(&self.store, &self.faults, volume, &mut stream).await
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
            Msg::Push { volume: v, entries } if v == volume => {
                receive(&self.store, volume, entries, &mut stream).await
            }
            Msg::Refused { reason } => Err(io::Error::other(reason)),
            other => Err(unexpected(&other)),
        }
    }

    async fn dial(&self) -> io::Result<TcpStream> {
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
        peer::connect(peer).await
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
    pub async fn serve_peer(&self, mut stream: TcpStream) -> io::Result<()> {
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
            Msg::Push { volume, entries } => {
                let Ok(_guard) = self.try_lock(&volume) else {
                    let reason = format!("volume {volume} is busy at the peer site");
                    return peer::send(&mut stream, &Msg::Refused { reason }).await;
                };
                receive(&self.store, &volume, entries, &mut stream)
                    .await
                    .map(drop)
            }
            Msg::Pull { volume } => {
                let Ok(_guard) = self.try_lock(&volume) else {
                    let reason = format!("volume {volume} is busy at the peer site");
                    return peer::send(&mut stream, &Msg::Refused { reason }).await;
                };
                match self.store.load(&volume)? {
                    Some(s) if s.replicated && s.role == Role::Primary => {
                        push(&self.store, &self.faults, &volume, &mut stream)
                            .await
                            .map(drop)
                    }
                    _ => {
                        let reason = format!("volume {volume} is not primary at the peer site");
                        peer::send(&mut stream, &Msg::Refused { reason }).await
                    }
                }
            }
            other => Err(unexpected(&other)),
        }
    }
}

fn unexpected(msg: &Msg) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected message from peer: {msg:?}"),
    )
}

/// Sender side of a push: manifest, then the content the receiver asks for.
async fn push(
    store: &Store,
    faults: &Faults,
    volume: &str,
    stream: &mut TcpStream,
) -> io::Result<u64> {
    let dir = store.volume_dir(volume);
    let entries = tree::manifest(&dir)?;
    peer::send(
        stream,
        &Msg::Push {
            volume: volume.to_owned(),
            entries,
        },
    )
    .await?;
    let paths = match peer::recv(stream).await? {
        Msg::Need { paths } => paths,
        Msg::Refused { reason } => return Err(io::Error::other(reason)),
        other => return Err(unexpected(&other)),
    };
    let mut budget = faults.take_interrupt();
    let mut sent = 0;
    for path in paths {
        sent +=
            peer::send_file(stream, &dir.join(tree::safe_relative(&path)?), &mut budget).await?;
    }
    match peer::recv(stream).await? {
        Msg::Committed { .. } => Ok(sent),
        Msg::Refused { reason } => Err(io::Error::other(reason)),
        other => Err(unexpected(&other)),
    }
}

/// Receiver side of a push: stage the new copy, swap it in atomically, reply.
async fn receive(
    store: &Store,
    volume: &str,
    entries: Vec<tree::Entry>,
    stream: &mut TcpStream,
) -> io::Result<u64> {
    let state = store.load(volume)?;
    let refusal = match &state {
        Some(s) if s.replicated && s.role == Role::Primary => Some(format!(
            "volume {volume} is primary at the peer site; demote it there first"
        )),
        Some(s) if !s.replicated => Some(format!(
            "replication of volume {volume} is disabled at the peer site"
        )),
        _ => None,
    };
    if let Some(reason) = refusal {
        peer::send(stream, &Msg::Refused { reason }).await?;
        return Err(io::Error::other("refused a push"));
    }
    let current = store.volume_dir(volume);
    let staging = store.staging_dir(volume);
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    std::fs::create_dir_all(&staging)?;
    let needed: Vec<tree::Entry> = entries
        .iter()
        .filter(|e| tree::needs_content(&current, e))
        .cloned()
        .collect();
    tree::link_unchanged(&current, &staging, &entries)?;
    let paths = needed.iter().map(|e| e.path.clone()).collect();
    peer::send(stream, &Msg::Need { paths }).await?;
    let mut bytes = 0;
    for entry in &needed {
        let target = staging.join(tree::safe_relative(&entry.path)?);
        bytes += peer::recv_file(stream, &target).await?;
        tree::stamp(&target, entry)?;
    }
    tree::swap_in(&staging, &current)?;
    let mut state = state.unwrap_or_default();
    state.replicated = true;
    state.role = Role::Secondary;
    store.save(volume, &state)?;
    peer::send(stream, &Msg::Committed { bytes }).await?;
    Ok(bytes)
}

/// The interval at which a primary ships, from its parameters.
pub fn sync_interval(parameters: &BTreeMap<String, String>) -> Option<Duration> {
    if let Some(seconds) = parameters
        .get(SYNC_INTERVAL_SECONDS)
        .and_then(|s| s.parse().ok())
    {
        return Some(Duration::from_secs(seconds));
    }
    parameters
        .get(SCHEDULING_INTERVAL)
        .and_then(|s| s.parse::<SchedulingInterval>().ok())
        .map(SchedulingInterval::as_duration)
}

/// Rejects parameters a real driver would reject, naming the parameter.
pub fn validate_parameters(parameters: &BTreeMap<String, String>) -> Result<()> {
    let interval = parameters.get(SCHEDULING_INTERVAL);
    if let Some(value) = interval {
        value.parse::<SchedulingInterval>().map_err(|e| {
            SiteError::InvalidArgument(format!("parameter {SCHEDULING_INTERVAL}: {e}"))
        })?;
    }
    if let Some(start) = parameters.get(SCHEDULING_START_TIME) {
        if interval.is_none() {
            return Err(SiteError::InvalidArgument(format!(
                "parameter {SCHEDULING_START_TIME} is only valid together with {SCHEDULING_INTERVAL}"
            )));
        }
        if !is_time_of_day(start) {
            return Err(SiteError::InvalidArgument(format!(
                "parameter {SCHEDULING_START_TIME}: {start:?} is not an ISO 8601 time (HH:MM or HH:MM:SS)"
            )));
        }
    }
    if let Some(seconds) = parameters.get(SYNC_INTERVAL_SECONDS)
        && !seconds.parse::<u64>().is_ok_and(|s| s > 0)
    {
        return Err(SiteError::InvalidArgument(format!(
            "parameter {SYNC_INTERVAL_SECONDS}: {seconds:?} is not a positive whole number of seconds"
        )));
    }
    Ok(())
}

fn is_time_of_day(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    let limits = [24, 60, 60];
    (2..=3).contains(&parts.len())
        && parts.iter().zip(limits).all(|(p, limit)| {
            p.len() == 2
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u32>().is_ok_and(|v| v < limit)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parameters_are_validated_by_name() {
        assert!(
            validate_parameters(&params(&[
                ("schedulingInterval", "1d"),
                ("schedulingStartTime", "02:15:00")
            ]))
            .is_ok()
        );
        for (bad, named) in [
            (
                params(&[("schedulingInterval", "5s")]),
                "schedulingInterval",
            ),
            (
                params(&[("schedulingStartTime", "02:15")]),
                "schedulingStartTime",
            ),
            (
                params(&[
                    ("schedulingInterval", "1h"),
                    ("schedulingStartTime", "25:00"),
                ]),
                "schedulingStartTime",
            ),
            (
                params(&[(SYNC_INTERVAL_SECONDS, "0")]),
                SYNC_INTERVAL_SECONDS,
            ),
        ] {
            let err = validate_parameters(&bad).unwrap_err();
            assert!(matches!(err, SiteError::InvalidArgument(_)), "{err}");
            assert!(err.to_string().contains(named), "{err}");
        }
    }

    #[test]
    fn interval_comes_from_the_override_then_the_schedule() {
        assert_eq!(
            sync_interval(&params(&[
                (SYNC_INTERVAL_SECONDS, "2"),
                ("schedulingInterval", "1h")
            ])),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            sync_interval(&params(&[("schedulingInterval", "1d")])),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(sync_interval(&params(&[])), None);
    }
}
