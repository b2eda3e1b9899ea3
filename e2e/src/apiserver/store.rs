//! The object store: every object of every kind in one map, a monotonic resourceVersion, and
//! a bounded history of changes that watches replay from.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

use super::fields::Owners;
use super::types::Registry;

/// (type key "group/plural", namespace or "", name)
pub type Key = (String, String, String);

#[derive(Clone, Debug)]
pub struct Entry {
    pub object: Value,
    pub owners: Owners,
}

/// One change, as a watch sends it.
#[derive(Clone, Debug)]
pub struct Change {
    pub version: u64,
    pub type_key: String,
    pub namespace: String,
    pub kind: &'static str,
    pub object: Value,
}

/// The resourceVersion a fresh store starts at.
pub const FIRST_VERSION: u64 = 1000;

pub struct Store {
    pub registry: Registry,
    pub objects: BTreeMap<Key, Entry>,
    pub version: u64,
    pub history: VecDeque<Arc<Change>>,
    pub history_limit: usize,
    pub changes: broadcast::Sender<Arc<Change>>,
    uids: u64,
}

impl Store {
    pub fn new(history_limit: usize) -> Self {
        Self {
            registry: Registry::with_builtins(),
            objects: BTreeMap::new(),
            // Like etcd after some life: versions before the start were compacted away, so a
            // watch from an old version gets 410 Gone here as it would on a real cluster.
            version: FIRST_VERSION,
            history: VecDeque::new(),
            history_limit,
            changes: broadcast::channel(4096).0,
            uids: 0,
        }
    }

    pub fn next_version(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    pub fn next_uid(&mut self) -> String {
        self.uids += 1;
        // The shape of a UUID, unique per server.
        format!("00000000-0000-4000-8000-{:012x}", self.uids)
    }

    /// The oldest version a watch may start from; older ones get 410 Gone.
    pub fn oldest_watchable(&self) -> u64 {
        self.history
            .front()
            .map(|c| c.version - 1)
            .unwrap_or(self.version)
    }

    /// Records a change for watches; the object must already carry its new resourceVersion.
    /// An Event is one object with two views, as on a real API server: a change to it through
    /// `events.k8s.io/v1` or core `v1` is made to the other view too.
    pub fn publish(&mut self, kind: &'static str, key: &Key, object: Value, version: u64) {
        if let Some((other, converted)) = super::events::other_view(&key.0, &object) {
            let mirrored = (other, key.1.clone(), key.2.clone());
            if kind == "DELETED" {
                self.objects.remove(&mirrored);
            } else {
                let owners = self
                    .objects
                    .get(&mirrored)
                    .map(|e| e.owners.clone())
                    .unwrap_or_default();
                self.objects.insert(
                    mirrored.clone(),
                    Entry {
                        object: converted.clone(),
                        owners,
                    },
                );
            }
            self.record(kind, &mirrored, converted, version);
        }
        self.record(kind, key, object, version);
    }

    fn record(&mut self, kind: &'static str, key: &Key, object: Value, version: u64) {
        let change = Arc::new(Change {
            version,
            type_key: key.0.clone(),
            namespace: key.1.clone(),
            kind,
            object,
        });
        self.history.push_back(Arc::clone(&change));
        while self.history.len() > self.history_limit {
            self.history.pop_front();
        }
        let _ = self.changes.send(change);
    }
}
