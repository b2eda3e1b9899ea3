//! Moving a volume's content over a peer connection: the sending and receiving halves of a push.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::faults::Faults;
use crate::peer::{self, GroupMember, Msg, Stream};
use crate::store::{GroupDef, LastSync, Role, STAGED_MARK, Store, VolumeState};
use crate::tree;

/// Runs blocking file-system work (walking, linking, renaming a tree) on the blocking pool,
/// so one large volume does not stall every other task of the driver.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| io::Error::other(format!("file-system task failed: {e}")))?
}

pub(crate) fn unexpected(msg: &Msg) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected message from peer: {msg:?}"),
    )
}

/// Why this site refuses a push of `what` (its state here): it is primary here, or its
/// replication is disabled here.
fn refusal(state: Option<&VolumeState>, what: &str) -> Option<String> {
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

/// Now, in ms since the Unix epoch: when a push's data is taken.
fn now_ms() -> Option<u64> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok())
}

/// The receiving side's first step: this site's state of the unit (a volume or a group), or
/// the peer told why it is refused.
async fn admit(
    store: &Store,
    unit: &str,
    what: &str,
    stream: &mut Stream,
) -> io::Result<Option<VolumeState>> {
    let state = store.load(unit)?;
    if let Some(reason) = refusal(state.as_ref(), what) {
        peer::send(stream, &Msg::Refused { reason }).await?;
        return Err(io::Error::other("refused a push"));
    }
    Ok(state)
}

/// A fresh staging copy of `volume` with its unchanged files linked in; returns the entries
/// whose content must come over the wire.
fn stage(store: &Store, volume: &str, entries: &[tree::Entry]) -> io::Result<Vec<tree::Entry>> {
    let (current, staging) = (store.volume_dir(volume), store.staging_dir(volume));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    std::fs::create_dir_all(&staging)?;
    let needed = entries
        .iter()
        .filter(|e| tree::needs_content(&current, e))
        .cloned()
        .collect();
    tree::link_unchanged(&current, &staging, entries)?;
    Ok(needed)
}

/// Receives the content of `needed` into `staging`, each file stamped as its entry says.
async fn receive_files(
    stream: &mut Stream,
    staging: &Path,
    needed: &[tree::Entry],
) -> io::Result<u64> {
    let mut bytes = 0;
    for entry in needed {
        let target = staging.join(tree::safe_relative(&entry.path)?);
        bytes += peer::recv_file(stream, &target, entry.size).await?;
        tree::stamp(&target, entry)?;
    }
    Ok(bytes)
}

/// Sends the content of `paths` (relative to `dir`), within the injected-fault `budget`.
async fn send_files(
    stream: &mut Stream,
    dir: &Path,
    paths: &[String],
    budget: &mut Option<u64>,
) -> io::Result<u64> {
    let mut sent = 0;
    for path in paths {
        sent += peer::send_file(stream, &dir.join(tree::safe_relative(path)?), budget).await?;
    }
    Ok(sent)
}

/// The sender's last step: the receiver's commit (or why not).
async fn committed(stream: &mut Stream, sent: u64) -> io::Result<u64> {
    match peer::recv(stream).await? {
        Msg::Committed { .. } => Ok(sent),
        Msg::Refused { reason } => Err(io::Error::other(reason)),
        other => Err(unexpected(&other)),
    }
}

/// The receiver's last step once the new copy is in: the unit is a secondary here whose last
/// sync is the one just received — timed from when the primary took the data (Lifeline's
/// extension of GetVolumeReplicationInfo on a secondary), however late it arrived — and the
/// sender is told it committed.
async fn record_received(
    store: &Store,
    unit: &str,
    state: Option<VolumeState>,
    taken_ms: Option<u64>,
    started: Instant,
    bytes: u64,
    stream: &mut Stream,
) -> io::Result<u64> {
    let mut state = state.unwrap_or_default();
    state.replicated = true;
    state.role = Role::Secondary;
    state.last_sync = Some(LastSync {
        time: taken_ms
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
            .unwrap_or_else(SystemTime::now),
        duration: started.elapsed(),
        bytes,
    });
    state.last_error = None;
    store.save(unit, &state)?;
    peer::send(stream, &Msg::Committed { bytes }).await?;
    Ok(bytes)
}

/// Sender side of a push: manifest, then the content the receiver asks for.
pub(crate) async fn push(
    store: &Store,
    faults: &Faults,
    volume: &str,
    stream: &mut Stream,
) -> io::Result<u64> {
    let dir = store.volume_dir(volume);
    let taken_ms = now_ms();
    let entries = blocking({
        let dir = dir.clone();
        move || tree::manifest(&dir)
    })
    .await?;
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
    let sent = send_files(stream, &dir, &paths, &mut budget).await?;
    committed(stream, sent).await
}

/// Receiver side of a push: stage the new copy, swap it in atomically, reply.
pub(crate) async fn receive(
    store: &Store,
    volume: &str,
    entries: Vec<tree::Entry>,
    taken_ms: Option<u64>,
    stream: &mut Stream,
) -> io::Result<u64> {
    let started = Instant::now();
    let state = admit(store, volume, &format!("volume {volume}"), stream).await?;
    let needed = blocking({
        let (store, volume) = (store.clone(), volume.to_owned());
        move || stage(&store, &volume, &entries)
    })
    .await?;
    let paths = needed.iter().map(|e| e.path.clone()).collect();
    peer::send(stream, &Msg::Need { paths }).await?;
    let bytes = receive_files(stream, &store.staging_dir(volume), &needed).await?;
    let (staging, current) = (store.staging_dir(volume), store.volume_dir(volume));
    blocking(move || tree::swap_in(&staging, &current)).await?;
    record_received(store, volume, state, taken_ms, started, bytes, stream).await
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
    stream: &mut Stream,
) -> io::Result<u64> {
    let taken_ms = now_ms();
    let captured = blocking({
        let (store, group, members) = (store.clone(), group.to_owned(), members.to_vec());
        move || capture(&store, &group, &members)
    })
    .await?;
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
            sent += send_files(stream, &snapshot.join(&member.volume), &paths, &mut budget).await?;
        }
        committed(stream, sent).await
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
    stream: &mut Stream,
) -> io::Result<u64> {
    let started = Instant::now();
    let state = admit(store, group, &format!("volume group {group}"), stream).await?;
    let needs = blocking({
        let (store, members) = (store.clone(), members.clone());
        move || {
            members
                .iter()
                .map(|m| stage(&store, &m.volume, &m.entries))
                .collect::<io::Result<Vec<_>>>()
        }
    })
    .await?;
    let paths = needs
        .iter()
        .map(|n| n.iter().map(|e| e.path.clone()).collect())
        .collect();
    peer::send(stream, &Msg::NeedGroup { paths }).await?;
    let mut bytes = 0;
    for (member, needed) in members.iter().zip(&needs) {
        bytes += receive_files(stream, &store.staging_dir(&member.volume), needed).await?;
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
    record_received(store, group, state, taken_ms, started, bytes, stream).await
}
