//! Moving a volume's content over a peer connection: the sending and receiving halves of a push.

use std::io;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::TcpStream;

use crate::faults::Faults;
use crate::peer::{self, Msg};
use crate::store::{LastSync, Role, Store};
use crate::tree;

pub(crate) fn unexpected(msg: &Msg) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected message from peer: {msg:?}"),
    )
}

/// Sender side of a push: manifest, then the content the receiver asks for.
pub(crate) async fn push(
    store: &Store,
    faults: &Faults,
    volume: &str,
    stream: &mut TcpStream,
) -> io::Result<u64> {
    let dir = store.volume_dir(volume);
    let taken_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok());
    let entries = tree::manifest(&dir)?;
    peer::send(
        stream,
        &Msg::Push {
            volume: volume.to_owned(),
            entries,
            taken_ms,
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
pub(crate) async fn receive(
    store: &Store,
    volume: &str,
    entries: Vec<tree::Entry>,
    taken_ms: Option<u64>,
    stream: &mut TcpStream,
) -> io::Result<u64> {
    let started = Instant::now();
    let taken = taken_ms
        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
        .unwrap_or_else(SystemTime::now);
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
    // What GetVolumeReplicationInfo reports here (Lifeline's extension on a secondary): the
    // data is from when the primary took it, however late it arrived.
    state.last_sync = Some(LastSync {
        time: taken,
        duration: started.elapsed(),
        bytes,
    });
    state.last_error = None;
    store.save(volume, &state)?;
    peer::send(stream, &Msg::Committed { bytes }).await?;
    Ok(bytes)
}
