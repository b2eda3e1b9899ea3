//! Per-volume replication state, persisted under `<root>/state/` so roles and last-sync facts
//! survive a restart.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// A volume's role at this site.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Primary,
    Secondary,
}

/// The outcome of the last sync this site attempted as primary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastSync {
    pub time: SystemTime,
    pub duration: Duration,
    pub bytes: u64,
}

/// Everything the driver remembers about one volume.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeState {
    pub replicated: bool,
    pub role: Role,
    pub parameters: BTreeMap<String, String>,
    pub replication_id: String,
    pub last_sync: Option<LastSync>,
    /// Why the last sync attempt failed; cleared by a successful one.
    pub last_error: Option<String>,
}

impl Default for VolumeState {
    fn default() -> Self {
        Self {
            replicated: false,
            role: Role::Secondary,
            parameters: BTreeMap::new(),
            replication_id: String::new(),
            last_sync: None,
            last_error: None,
        }
    }
}

/// A volume group: its name (CreateVolumeGroup's), its members, the parameters it was made
/// with. Its replication state is a [`VolumeState`] under the group's id, like a volume's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDef {
    pub name: String,
    pub members: Vec<String>,
    pub parameters: BTreeMap<String, String>,
}

/// The file inside a staged copy that says it is the new one (see [`Store::recover_commits`]).
pub const STAGED_MARK: &str = ".lifeline-staged";

/// The on-disk layout of one site.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn open(root: &Path) -> io::Result<Self> {
        for dir in [
            "volumes",
            "state",
            "staging",
            "groups",
            "snapshots",
            "csi-snapshots",
        ] {
            fs::create_dir_all(root.join(dir))?;
        }
        let store = Self {
            root: root.to_owned(),
        };
        // A group sync that was committing when the driver died is finished first...
        store.recover_commits()?;
        // ...then any other staging directory (a crash mid-transfer) is garbage: the volumes
        // are intact. So are capture snapshots.
        for dir in ["staging", "snapshots"] {
            for entry in fs::read_dir(root.join(dir))? {
                let path = entry?.path();
                let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
            }
        }
        Ok(store)
    }

    /// The journal of a group sync being committed: its members.
    pub fn commit_journal(&self, group: &str) -> PathBuf {
        self.root.join("staging").join(format!("{group}.commit"))
    }

    /// Finishes every group commit a crash interrupted, so all members end at the new sync:
    /// a member whose volume holds the staged mark was swapped (the mark is removed, the old
    /// copy in staging deleted); one whose staging copy holds it is swapped now.
    pub fn recover_commits(&self) -> io::Result<()> {
        for entry in fs::read_dir(self.root.join("staging"))? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "commit") {
                continue;
            }
            let members: Vec<String> = serde_json::from_slice(&fs::read(&path)?)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            for member in members {
                let (volume, staged) = (self.volume_dir(&member), self.staging_dir(&member));
                if volume.join(STAGED_MARK).exists() {
                    fs::remove_file(volume.join(STAGED_MARK))?;
                    if staged.exists() {
                        fs::remove_dir_all(&staged)?;
                    }
                } else if staged.join(STAGED_MARK).exists() {
                    crate::tree::swap_in(&staged, &volume)?;
                    fs::remove_file(volume.join(STAGED_MARK))?;
                }
            }
            fs::remove_file(&path)?;
        }
        Ok(())
    }

    /// A CSI snapshot's frozen copy of its volume (CreateSnapshot).
    pub fn csi_snapshot_dir(&self, snapshot: &str) -> PathBuf {
        self.root.join("csi-snapshots").join(snapshot)
    }

    pub fn snapshot_dir(&self, group: &str) -> PathBuf {
        self.root.join("snapshots").join(group)
    }

    fn group_file(&self, group: &str) -> PathBuf {
        self.root.join("groups").join(format!("{group}.json"))
    }

    pub fn load_group(&self, group: &str) -> io::Result<Option<GroupDef>> {
        match fs::read(self.group_file(group)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn save_group(&self, group: &str, def: &GroupDef) -> io::Result<()> {
        let path = self.group_file(group);
        let tmp = path.with_extension("json.tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(def)?)?;
        fs::rename(tmp, path)
    }

    /// Forgets the group and its replication state (its volumes stay).
    pub fn delete_group(&self, group: &str) -> io::Result<()> {
        for path in [self.group_file(group), self.state_file(group)] {
            match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Every group, by id.
    pub fn groups(&self) -> io::Result<Vec<(String, GroupDef)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.root.join("groups"))? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".json")
                && let Some(def) = self.load_group(id)?
            {
                out.push((id.to_owned(), def));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    pub fn is_group(&self, id: &str) -> bool {
        self.group_file(id).is_file()
    }

    pub fn volume_dir(&self, volume: &str) -> PathBuf {
        self.root.join("volumes").join(volume)
    }

    pub fn staging_dir(&self, volume: &str) -> PathBuf {
        self.root.join("staging").join(volume)
    }

    fn state_file(&self, volume: &str) -> PathBuf {
        self.root.join("state").join(format!("{volume}.json"))
    }

    /// A volume (its directory or state) or a group of that id exists.
    pub fn exists(&self, volume: &str) -> bool {
        self.volume_dir(volume).is_dir()
            || self.state_file(volume).is_file()
            || self.is_group(volume)
    }

    pub fn load(&self, volume: &str) -> io::Result<Option<VolumeState>> {
        match fs::read(self.state_file(volume)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the state atomically (temp file + rename), so a crash never leaves half a file.
    pub fn save(&self, volume: &str, state: &VolumeState) -> io::Result<()> {
        let path = self.state_file(volume);
        let tmp = path.with_extension("json.tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(state)?)?;
        fs::rename(tmp, path)
    }

    /// Every volume that has state.
    pub fn volumes(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.root.join("state"))? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(volume) = name.strip_suffix(".json") {
                out.push(volume.to_owned());
            }
        }
        out.sort();
        Ok(out)
    }
}
