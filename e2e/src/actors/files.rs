//! Directory copies for snapshots and restores.

use std::io;
use std::path::Path;

/// Copies the tree at `from` into `to` (created if missing), replacing files of the same name.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(entry.path())?;
            let _ = std::fs::remove_file(&target);
            std::os::unix::fs::symlink(link, &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Copies `from` to `to` atomically: into a sibling temp dir, then renamed into place, so a
/// reader never sees half a copy. Does nothing if `to` exists.
pub fn snapshot_tree(from: &Path, to: &Path) -> io::Result<()> {
    if to.exists() {
        return Ok(());
    }
    let parent = to.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let staging = parent.join(format!(
        ".staging-{}",
        to.file_name().and_then(|n| n.to_str()).unwrap_or("copy")
    ));
    let _ = std::fs::remove_dir_all(&staging);
    copy_tree(from, &staging)?;
    std::fs::rename(&staging, to)
}

/// Total bytes of regular files under `dir`.
pub fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// `len` bytes no compressor can shrink and no other `seed` repeats (xorshift), for data that
/// must really travel (a restic upload, a benchmark volume).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}
