//! Watch caches of what every VolumeReplication reconcile reads: its class, its claim and the
//! claim's volume. The controller already watches classes and claims (their changes map to
//! VolumeReplications); the stores of those same watches, and one of PersistentVolumes, answer
//! the reconcile instead of a GET each. A real API server spends a third of its work per VR on
//! those GETs (issue 21).
//!
//! A cache answers once its first full list is in; until then, and for a name it does not hold
//! (created a moment ago, or missing), the reconcile asks the API server, so a cache is never
//! the reason an object is reported missing. A hit may be a moment old: what the reconcile
//! writes from it carries its resourceVersion, so a stale one is a conflict and a retry.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, PersistentVolumeSpec};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use lifeline_api::replication::VolumeReplicationClass;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

/// How long a reconcile waits for a cache's first list before asking the API server.
const READY_WAIT: Duration = Duration::from_secs(30);

/// One kind's watch cache and whether its first list is in.
pub struct Cache<K: Resource<DynamicType = ()> + 'static> {
    store: Store<K>,
    ready: watch::Receiver<bool>,
}

/// Marks a cache ready; kept by the stream that fills it.
pub struct Readiness(watch::Sender<bool>);

impl Readiness {
    /// Call on every watch event: the first `InitDone` makes the cache ready.
    pub fn observe<K>(&self, event: &watcher::Event<K>) {
        if matches!(event, watcher::Event::InitDone) {
            self.0.send_replace(true);
        }
    }
}

impl<K> Cache<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    pub fn new(store: Store<K>) -> (Self, Readiness) {
        let (tx, rx) = watch::channel(false);
        (Self { store, ready: rx }, Readiness(tx))
    }

    /// The cached object, once the first list is in; `None` means "ask the API server".
    pub async fn get(&self, namespace: Option<&str>, name: &str) -> Option<Arc<K>> {
        let mut ready = self.ready.clone();
        let listed = tokio::time::timeout(READY_WAIT, ready.wait_for(|r| *r))
            .await
            .is_ok_and(|r| r.is_ok());
        if !listed {
            return None;
        }
        let mut key = ObjectRef::new(name);
        if let Some(namespace) = namespace {
            key = key.within(namespace);
        }
        self.store.get(&key)
    }
}

/// The reconcile's caches.
pub struct Caches {
    pub classes: Cache<VolumeReplicationClass>,
    pub claims: Cache<PersistentVolumeClaim>,
    pub volumes: Cache<PersistentVolume>,
}

/// From the cache when it holds the object, else from the API server.
pub async fn cached_or_get<K>(
    cache: Option<&Cache<K>>,
    api: &Api<K>,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<K>, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + 'static,
{
    if let Some(cache) = cache
        && let Some(hit) = cache.get(namespace, name).await
    {
        return Ok(Some(hit.as_ref().clone()));
    }
    api.get_opt(name).await
}

/// What the PersistentVolume cache keeps of a volume: its name and CSI source (driver and
/// handle) — what the reconcile reads — so memory stays small with many volumes.
pub fn narrow_volume(pv: &mut PersistentVolume) {
    pv.managed_fields_mut().clear();
    pv.metadata.annotations = None;
    pv.metadata.labels = None;
    pv.metadata.finalizers = None;
    pv.spec = pv.spec.take().map(|spec| PersistentVolumeSpec {
        csi: spec.csi,
        ..PersistentVolumeSpec::default()
    });
    pv.status = None;
}

/// What the claim cache keeps: everything but managedFields (annotations, finalizers and the
/// resourceVersion are what the reconcile's own writes are built from).
pub fn narrow_claim(pvc: &mut PersistentVolumeClaim) {
    pvc.managed_fields_mut().clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector;

    fn pv(name: &str) -> PersistentVolume {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "annotations": {"a": "b"}, "managedFields": [{"manager": "x"}]},
            "spec": {"capacity": {"storage": "1Gi"}, "csi": {"driver": "d", "volumeHandle": "h"}},
            "status": {"phase": "Bound"},
        }))
        .unwrap()
    }

    #[test]
    fn a_cached_volume_keeps_only_its_csi_source() {
        let mut volume = pv("v");
        narrow_volume(&mut volume);
        let spec = volume.spec.unwrap();
        assert_eq!(spec.csi.unwrap().volume_handle, "h");
        assert!(spec.capacity.is_none() && volume.status.is_none());
        assert!(
            volume.metadata.annotations.is_none()
                && volume.metadata.managed_fields.is_none_or(|m| m.is_empty())
        );
    }

    #[tokio::test]
    async fn a_cache_answers_only_once_listed_and_only_for_what_it_holds() {
        let (reader, mut writer) = reflector::store::<PersistentVolume>();
        let (cache, readiness) = Cache::new(reader);
        writer.apply_watcher_event(&watcher::Event::InitApply(pv("v")));
        // Not listed yet: ask the API server (after the wait; paused time runs it out at once).
        tokio::time::pause();
        assert!(cache.get(None, "v").await.is_none());
        for event in [watcher::Event::InitDone] {
            writer.apply_watcher_event(&event);
            readiness.observe(&event);
        }
        assert_eq!(cache.get(None, "v").await.unwrap().name_any(), "v");
        assert!(cache.get(None, "missing").await.is_none());
    }
}
