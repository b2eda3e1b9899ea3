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

/// The on-disk layout of one site.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn open(root: &Path) -> io::Result<Self> {
        for dir in ["volumes", "state", "staging"] {
            fs::create_dir_all(root.join(dir))?;
        }
        // A staging directory left by a crash mid-transfer is garbage: the volume is intact.
        for entry in fs::read_dir(root.join("staging"))? {
            let _ = fs::remove_dir_all(entry?.path());
        }
        Ok(Self {
            root: root.to_owned(),
        })
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

    pub fn exists(&self, volume: &str) -> bool {
        self.volume_dir(volume).is_dir() || self.state_file(volume).is_file()
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
