//! A volume's file tree on disk: its manifest, and replacing it atomically with a new copy.
//!
//! The receiving site builds the new copy in a staging directory (unchanged files hard-linked
//! from the current copy, changed ones written from the wire), then swaps it with the volume
//! directory in one `renameat2(RENAME_EXCHANGE)`. A transfer that dies half-way leaves only a
//! staging directory behind; the volume always holds a complete synced state.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One file or directory of a volume, relative to its root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub path: String,
    pub dir: bool,
    pub size: u64,
    pub mtime_ns: i128,
    pub mode: u32,
}

/// The entries of a tree, parents before children. Symlinks and special files are skipped:
/// a reference driver replicates regular files and directories.
pub fn manifest(root: &Path) -> io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<Entry>) -> io::Result<()> {
    let mut children: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    children.sort_by_key(|e| e.file_name());
    for child in children {
        let meta = child.metadata()?;
        if !(meta.is_dir() || meta.is_file()) {
            continue;
        }
        let path = child.path();
        let relative = path
            .strip_prefix(root)
            .expect("walked below root")
            .to_string_lossy()
            .into_owned();
        out.push(Entry {
            path: relative,
            dir: meta.is_dir(),
            size: if meta.is_file() { meta.len() } else { 0 },
            mtime_ns: mtime_ns(&meta),
            mode: meta.permissions().mode() & 0o7777,
        });
        if meta.is_dir() {
            walk(root, &path, out)?;
        }
    }
    Ok(())
}

/// A file's modification time in nanoseconds since the epoch, as manifests record it.
fn mtime_ns(meta: &fs::Metadata) -> i128 {
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

/// Whether `entry` differs from what `current` holds (size, mtime or mode), so its content
/// must be sent.
pub fn needs_content(current: &Path, entry: &Entry) -> bool {
    if entry.dir {
        return false;
    }
    match fs::symlink_metadata(current.join(&entry.path)) {
        Ok(meta) => {
            !meta.is_file()
                || meta.len() != entry.size
                || mtime_ns(&meta) != entry.mtime_ns
                || meta.permissions().mode() & 0o7777 != entry.mode
        }
        Err(_) => true,
    }
}

/// A relative path from the wire, checked so a peer cannot write outside the staging tree.
pub fn safe_relative(path: &str) -> io::Result<PathBuf> {
    let p = Path::new(path);
    if path.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unsafe path from peer: {path:?}"),
        ));
    }
    Ok(p.to_owned())
}

/// Sets a file's mode and mtime as the manifest says, so the next comparison sees it unchanged.
pub fn stamp(path: &Path, entry: &Entry) -> io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(entry.mode))?;
    let time = system_time(entry.mtime_ns).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "mtime {} ns of {:?} is out of range",
                entry.mtime_ns, entry.path
            ),
        )
    })?;
    fs::File::options()
        .write(true)
        .open(path)?
        .set_modified(time)
}

/// Nanoseconds either side of the epoch as a time, if the platform can hold it.
fn system_time(mtime_ns: i128) -> Option<std::time::SystemTime> {
    let secs = u64::try_from(mtime_ns.div_euclid(1_000_000_000).unsigned_abs()).ok()?;
    let nanos = u32::try_from(mtime_ns.rem_euclid(1_000_000_000)).ok()?;
    if mtime_ns >= 0 {
        std::time::UNIX_EPOCH.checked_add(std::time::Duration::new(secs, nanos))
    } else {
        std::time::UNIX_EPOCH
            .checked_sub(std::time::Duration::from_secs(secs))?
            .checked_add(std::time::Duration::from_nanos(u64::from(nanos)))
    }
}

/// Fills `staging` with the unchanged files of `current` (hard links) and the directories of
/// the manifest; changed files are written by the caller.
pub fn link_unchanged(current: &Path, staging: &Path, entries: &[Entry]) -> io::Result<()> {
    for entry in entries {
        let relative = safe_relative(&entry.path)?;
        let target = staging.join(&relative);
        if entry.dir {
            fs::create_dir_all(&target)?;
            fs::set_permissions(&target, fs::Permissions::from_mode(entry.mode))?;
        } else if !needs_content(current, entry) {
            fs::hard_link(current.join(&relative), &target)?;
        }
    }
    Ok(())
}

/// Atomically exchanges `staging` and `volume` (creating an empty `volume` first if needed),
/// then deletes what was the volume.
pub fn swap_in(staging: &Path, volume: &Path) -> io::Result<()> {
    fs::create_dir_all(volume)?;
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        staging,
        rustix::fs::CWD,
        volume,
        rustix::fs::RenameFlags::EXCHANGE,
    )?;
    fs::remove_dir_all(staging)
}

/// Bytes of file content in a tree.
pub fn size(entries: &[Entry]) -> u64 {
    entries.iter().map(|e| e.size).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_mtime_is_a_time_or_none_never_a_panic() {
        for ns in [i128::MAX, i128::MIN, 0, -1, 1, -1_500_000_000, 1 << 100] {
            let _ = system_time(ns);
        }
        let before = system_time(-1_500_000_000).unwrap();
        assert_eq!(
            std::time::UNIX_EPOCH.duration_since(before).unwrap(),
            std::time::Duration::from_millis(1500)
        );
        assert!(system_time(i128::MAX).is_none());
    }
}
