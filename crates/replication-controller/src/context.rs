//! What every reconcile shares: the API client, the drivers, metrics, the Event recorder and
//! the little memory the controller keeps between reconciles.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use kube::Client;
use lifeline_runtime::events::Publisher;
use tokio::time::Instant;

use crate::drivers::Drivers;
use crate::metrics::Metrics;

/// Tunables that are not about reaching drivers.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How often a secondary or resync that is not ready yet is asked again.
    pub resync_poll_interval: Duration,
    /// The ceiling on the replication info refresh interval (`--info-refresh`).
    pub info_refresh: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            resync_poll_interval: Duration::from_secs(10),
            info_refresh: Duration::from_secs(60),
        }
    }
}

pub struct Context {
    pub client: Client,
    pub drivers: Drivers,
    pub metrics: Metrics,
    pub recorder: Publisher,
    pub settings: Settings,
    /// VolumeReplication uid → when its next info refresh is due.
    info_due: Mutex<HashMap<String, Instant>>,
    /// Provisioners that answered GetVolumeReplicationInfo with UNIMPLEMENTED: never asked again.
    info_unimplemented: Mutex<HashSet<String>>,
    /// VolumeReplication uid → consecutive retryable failures, for backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// Watch caches of classes, claims and volumes, set when the controller starts its
    /// watches; without them (reconcile tests) every read is a GET.
    caches: std::sync::OnceLock<crate::caches::Caches>,
    /// The driver credentials classes name, reused for a few seconds.
    pub secrets: crate::secret_cache::SecretCache,
}

impl Context {
    pub fn new(client: Client, drivers: Drivers, metrics: Metrics, settings: Settings) -> Self {
        Self {
            recorder: Publisher::new(client.clone(), crate::FIELD_MANAGER),
            client,
            drivers,
            metrics,
            settings,
            info_due: Mutex::default(),
            info_unimplemented: Mutex::default(),
            failures: Mutex::default(),
            caches: std::sync::OnceLock::new(),
            secrets: crate::secret_cache::SecretCache::default(),
        }
    }

    /// The watch caches, once the controller has started them.
    pub fn caches(&self) -> Option<&crate::caches::Caches> {
        self.caches.get()
    }

    /// Hands the reconcile the controller's watch caches (once; later calls are ignored).
    pub fn use_caches(&self, caches: crate::caches::Caches) {
        let _ = self.caches.set(caches);
    }

    /// Whether the info refresh of `uid` is due now, and if not, how long until it is.
    pub fn info_due(&self, uid: &str, provisioner: &str) -> (bool, Option<Duration>) {
        if self.is_info_unimplemented(provisioner) {
            return (false, None);
        }
        match self.info_due.lock().expect("lock").get(uid) {
            Some(due) if *due > Instant::now() => (false, Some(*due - Instant::now())),
            _ => (true, None),
        }
    }

    pub fn info_refreshed(&self, uid: &str, interval: Duration) {
        self.info_due
            .lock()
            .expect("lock")
            .insert(uid.to_owned(), Instant::now() + interval);
    }

    pub fn is_info_unimplemented(&self, provisioner: &str) -> bool {
        self.info_unimplemented
            .lock()
            .expect("lock")
            .contains(provisioner)
    }

    pub fn info_unimplemented(&self, provisioner: &str) {
        self.info_unimplemented
            .lock()
            .expect("lock")
            .insert(provisioner.to_owned());
    }

    pub fn forget(&self, uid: &str) {
        self.info_due.lock().expect("lock").remove(uid);
        self.failures.lock().expect("lock").remove(uid);
    }

    /// Counts a retryable failure; returns how many came before it.
    pub fn failed(&self, uid: &str) -> u32 {
        let mut failures = self.failures.lock().expect("lock");
        let count = failures.entry(uid.to_owned()).or_default();
        let before = *count;
        *count = count.saturating_add(1);
        before
    }

    pub fn succeeded(&self, uid: &str) {
        self.failures.lock().expect("lock").remove(uid);
    }
}
