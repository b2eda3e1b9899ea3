//! The driver credentials a VolumeReplicationClass names, read from the API server at most once
//! per [`FRESH_FOR`] per Secret. Without it, a thousand VolumeReplications of one class GET the
//! same Secret a thousand times: on a real API server, one GET per reconcile (issue 30).
//!
//! Not a watch: watching Secrets needs the right to list them, every Secret of the cluster,
//! where `get` of the ones classes name is all the controller is granted. The price is that a
//! rotated Secret is used within [`FRESH_FOR`], and at once after the driver refuses the old
//! credentials ([`SecretCache::forget`]). A missing Secret is not remembered: the next
//! reconcile looks again, so one created after its class is seen at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

/// How long a Secret read is reused.
pub const FRESH_FOR: Duration = Duration::from_secs(10);

type Key = (String, String);

#[derive(Default)]
pub struct SecretCache {
    entries: Mutex<HashMap<Key, (Instant, Arc<Secret>)>>,
}

impl SecretCache {
    /// The Secret `namespace/name`: a copy read less than [`FRESH_FOR`] ago, else the API
    /// server's (`None`: there is none).
    pub async fn get(
        &self,
        client: &Client,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<Secret>>, kube::Error> {
        let key = (namespace.to_owned(), name.to_owned());
        if let Some(fresh) = self.fresh(&key, Instant::now()) {
            return Ok(Some(fresh));
        }
        let read = Api::<Secret>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await?
            .map(Arc::new);
        self.store(key, read.clone(), Instant::now());
        Ok(read)
    }

    /// Drops the copy of `namespace/name` (the driver refused its credentials).
    pub fn forget(&self, namespace: &str, name: &str) {
        self.entries
            .lock()
            .expect("secret cache lock")
            .remove(&(namespace.to_owned(), name.to_owned()));
    }

    fn fresh(&self, key: &Key, now: Instant) -> Option<Arc<Secret>> {
        let entries = self.entries.lock().expect("secret cache lock");
        let (read_at, secret) = entries.get(key)?;
        (now.saturating_duration_since(*read_at) < FRESH_FOR).then(|| secret.clone())
    }

    fn store(&self, key: Key, read: Option<Arc<Secret>>, now: Instant) {
        let mut entries = self.entries.lock().expect("secret cache lock");
        match read {
            Some(secret) => entries.insert(key, (now, secret)),
            None => entries.remove(&key),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(key: &str) -> Arc<Secret> {
        Arc::new(Secret {
            string_data: Some([(key.to_owned(), "v".to_owned())].into()),
            ..Secret::default()
        })
    }

    fn key() -> Key {
        ("ns".to_owned(), "creds".to_owned())
    }

    #[test]
    fn a_read_is_reused_while_fresh_then_read_again() {
        let cache = SecretCache::default();
        let t0 = Instant::now();
        cache.store(key(), Some(secret("old")), t0);
        assert_eq!(cache.fresh(&key(), t0 + FRESH_FOR / 2), Some(secret("old")));
        assert_eq!(
            cache.fresh(&key(), t0 + FRESH_FOR),
            None,
            "stale: read again"
        );
    }

    #[test]
    fn a_missing_secret_and_a_forgotten_one_are_read_again() {
        let cache = SecretCache::default();
        let t0 = Instant::now();
        cache.store(key(), Some(secret("old")), t0);
        cache.store(key(), None, t0);
        assert_eq!(cache.fresh(&key(), t0), None, "gone: not remembered");
        cache.store(key(), Some(secret("new")), t0);
        cache.forget("ns", "creds");
        assert_eq!(
            cache.fresh(&key(), t0),
            None,
            "refused by the driver: read again"
        );
        assert_eq!(
            cache.fresh(&("other".to_owned(), "creds".to_owned()), t0),
            None
        );
    }
}
