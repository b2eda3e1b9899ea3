//! Moving a volume's content over a peer connection: the sending and receiving halves of a push.

use std::io;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::TcpStream;

use crate::faults::Faults;
use crate::peer::{self, GroupMember, Msg};
use crate::store::{GroupDef, LastSync, Role, STAGED_MARK, Store};
use crate::tree;

pub(crate) fn unexpected(msg: &Msg) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected message from peer: {msg:?}"),
    )
}

/// Why this site refuses a push of `what` (its state here): it is primary here, or its
/// replication is disabled here.
fn refusal(state: Option<&crate::store::VolumeState>, what: &str) -> Option<String> {
    match state {
        Some(s) if s.replicated && s.role == Role::Primary => Some(format!(
            "{what} is primary at the peer site; demote it there first"
        )),
        Some(s) if !s.replicated => Some(format!(
            "replication of {what} is disabled at the peer site"
        )),
        _ => None,
    }
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
    if let Some(reason) = refusal(state.as_ref(), &format!("volume {volume}")) {
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

/// Hard-links every member's files into the group's capture directory, back to back: the
/// group's point in time, which the push then reads while the volumes move on. (A hostpath
/// volume has no block layer to freeze: a file rewritten in place during these microseconds
/// is not frozen; one replaced by a rename — how most applications write — is.)
fn capture(store: &Store, group: &str, members: &[String]) -> io::Result<Vec<GroupMember>> {
    let snapshot = store.snapshot_dir(group);
    if snapshot.exists() {
        std::fs::remove_dir_all(&snapshot)?;
    }
    let mut out = Vec::new();
    for volume in members {
        let dir = store.volume_dir(volume);
        std::fs::create_dir_all(&dir)?;
        let entries = tree::manifest(&dir)?;
        let copy = snapshot.join(volume);
        std::fs::create_dir_all(&copy)?;
        tree::link_unchanged(&dir, &copy, &entries)?;
        out.push(GroupMember {
            volume: volume.clone(),
            entries,
        });
    }
    Ok(out)
}

/// Sender side of a group push: every member captured at one instant and shipped as one sync.
pub(crate) async fn push_group(
    store: &Store,
    faults: &Faults,
    group: &str,
    members: &[String],
    stream: &mut TcpStream,
) -> io::Result<u64> {
    let taken_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok());
    let captured = capture(store, group, members)?;
    let snapshot = store.snapshot_dir(group);
    let result = async {
        peer::send(
            stream,
            &Msg::PushGroup {
                group: group.to_owned(),
                members: captured.clone(),
                taken_ms,
            },
        )
        .await?;
        let needs = match peer::recv(stream).await? {
            Msg::NeedGroup { paths } if paths.len() == captured.len() => paths,
            Msg::Refused { reason } => return Err(io::Error::other(reason)),
            other => return Err(unexpected(&other)),
        };
        let mut budget = faults.take_interrupt();
        let mut sent = 0;
        for (member, paths) in captured.iter().zip(needs) {
            let dir = snapshot.join(&member.volume);
            for path in paths {
                sent +=
                    peer::send_file(stream, &dir.join(tree::safe_relative(&path)?), &mut budget)
                        .await?;
            }
        }
        match peer::recv(stream).await? {
            Msg::Committed { .. } => Ok(sent),
            Msg::Refused { reason } => Err(io::Error::other(reason)),
            other => Err(unexpected(&other)),
        }
    }
    .await;
    let _ = std::fs::remove_dir_all(&snapshot);
    result
}

/// Receiver side of a group push: every member staged, then all swapped in under a commit
/// journal, so a crash mid-commit is finished at the next start ([`Store::recover_commits`])
/// and the members never come from different syncs.
pub(crate) async fn receive_group(
    store: &Store,
    group: &str,
    members: Vec<GroupMember>,
    taken_ms: Option<u64>,
    stream: &mut TcpStream,
) -> io::Result<u64> {
    let started = Instant::now();
    let taken = taken_ms
        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
        .unwrap_or_else(SystemTime::now);
    let state = store.load(group)?;
    if let Some(reason) = refusal(state.as_ref(), &format!("volume group {group}")) {
        peer::send(stream, &Msg::Refused { reason }).await?;
        return Err(io::Error::other("refused a push"));
    }
    let mut needs = Vec::new();
    for member in &members {
        tree::safe_relative(&member.volume)?;
        let (current, staging) = (
            store.volume_dir(&member.volume),
            store.staging_dir(&member.volume),
        );
        if staging.exists() {
            std::fs::remove_dir_all(&staging)?;
        }
        std::fs::create_dir_all(&staging)?;
        tree::link_unchanged(&current, &staging, &member.entries)?;
        needs.push(
            member
                .entries
                .iter()
                .filter(|e| tree::needs_content(&current, e))
                .cloned()
                .collect::<Vec<_>>(),
        );
    }
    let paths = needs
        .iter()
        .map(|n| n.iter().map(|e| e.path.clone()).collect())
        .collect();
    peer::send(stream, &Msg::NeedGroup { paths }).await?;
    let mut bytes = 0;
    for (member, needed) in members.iter().zip(&needs) {
        let staging = store.staging_dir(&member.volume);
        for entry in needed {
            let target = staging.join(tree::safe_relative(&entry.path)?);
            bytes += peer::recv_file(stream, &target).await?;
            tree::stamp(&target, entry)?;
        }
    }
    // Everything arrived: commit every member, or (after a crash) finish doing so at start.
    let volumes: Vec<String> = members.iter().map(|m| m.volume.clone()).collect();
    for volume in &volumes {
        std::fs::write(store.staging_dir(volume).join(STAGED_MARK), b"")?;
    }
    let journal = store.commit_journal(group);
    let tmp = journal.with_extension("commit.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&volumes)?)?;
    std::fs::rename(&tmp, &journal)?;
    for volume in &volumes {
        let current = store.volume_dir(volume);
        tree::swap_in(&store.staging_dir(volume), &current)?;
        std::fs::remove_file(current.join(STAGED_MARK))?;
    }
    std::fs::remove_file(&journal)?;
    let mut def = store.load_group(group)?.unwrap_or_else(|| GroupDef {
        name: group.strip_prefix("vg-").unwrap_or(group).to_owned(),
        ..Default::default()
    });
    // The primary's membership is the group's: a member it added arrives with its data.
    def.members = volumes;
    store.save_group(group, &def)?;
    let mut state = state.unwrap_or_default();
    state.replicated = true;
    state.role = Role::Secondary;
    state.last_sync = Some(LastSync {
        time: taken,
        duration: started.elapsed(),
        bytes,
    });
    state.last_error = None;
    store.save(group, &state)?;
    peer::send(stream, &Msg::Committed { bytes }).await?;
    Ok(bytes)
}
