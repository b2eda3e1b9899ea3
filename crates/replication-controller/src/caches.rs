//! Watch caches of what every VolumeReplication reconcile reads: its class, its claim and the
//! claim's volume. The controller already watches classes and claims (their changes map to
//! VolumeReplications); the stores of those same watches, and one of PersistentVolumes, answer
//! the reconcile instead of a GET each. A real API server spends a third of its work per VR on
//! those GETs (issue 21). Volumes are kept as an index of their CSI sources ([`Volumes`]), not
//! as whole objects.
//!
//! A cache answers once its first full list is in; until then, and for a name it does not hold
//! (created a moment ago, or missing), the reconcile asks the API server, so a cache is never
//! the reason an object is reported missing. A hit may be a moment old: what the reconcile
//! writes from it carries its resourceVersion, so a stale one is a conflict and a retry.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimStatus, PersistentVolumeSpec,
};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use lifeline_api::replication::VolumeReplicationClass;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

/// How long a reconcile waits for a cache's first list before asking the API server.
const READY_WAIT: Duration = Duration::from_secs(30);

/// Whether a cache's first list is in, waiting for it up to [`READY_WAIT`].
async fn listed(ready: &watch::Receiver<bool>) -> bool {
    let mut ready = ready.clone();
    tokio::time::timeout(READY_WAIT, ready.wait_for(|r| *r))
        .await
        .is_ok_and(|r| r.is_ok())
}

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
        if !listed(&self.ready).await {
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
    pub volumes: Arc<Volumes>,
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

/// The CSI source (driver and handle) of every PersistentVolume, by name: all the reconcile
/// reads of a volume. Not a reflector store of PersistentVolumes: a k8s-openapi
/// PersistentVolume is 3.4 KB before its strings (one inline field per volume type), an entry
/// here is two strings.
pub struct Volumes {
    state: RwLock<VolumeState>,
    ready: watch::Receiver<bool>,
}

#[derive(Default)]
struct VolumeState {
    live: HashMap<String, Option<Csi>>,
    /// A (re)list in progress: replaces `live` when it is done.
    listing: Option<HashMap<String, Option<Csi>>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Csi {
    driver: String,
    handle: String,
}

/// Fills [`Volumes`] from a PersistentVolume watch.
pub struct VolumesFeed {
    volumes: Arc<Volumes>,
    ready: watch::Sender<bool>,
}

impl Volumes {
    pub fn new() -> (Arc<Self>, VolumesFeed) {
        let (tx, rx) = watch::channel(false);
        let volumes = Arc::new(Self {
            state: RwLock::default(),
            ready: rx,
        });
        let feed = VolumesFeed {
            volumes: Arc::clone(&volumes),
            ready: tx,
        };
        (volumes, feed)
    }

    /// The volume as the reconcile reads it (name and CSI source), once the first list is in;
    /// `None` means "ask the API server".
    pub async fn get(&self, name: &str) -> Option<PersistentVolume> {
        if !listed(&self.ready).await {
            return None;
        }
        let state = self.state.read().expect("volumes lock");
        let csi = state.live.get(name)?.clone();
        Some(PersistentVolume {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_owned()),
                ..Default::default()
            },
            spec: Some(PersistentVolumeSpec {
                csi: csi.map(|c| CSIPersistentVolumeSource {
                    driver: c.driver,
                    volume_handle: c.handle,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: None,
        })
    }
}

impl VolumesFeed {
    pub fn apply(&self, event: &watcher::Event<PersistentVolume>) {
        let entry = |pv: &PersistentVolume| {
            let csi = pv.spec.as_ref().and_then(|s| s.csi.as_ref()).map(|c| Csi {
                driver: c.driver.clone(),
                handle: c.volume_handle.clone(),
            });
            (pv.name_any(), csi)
        };
        let mut state = self.volumes.state.write().expect("volumes lock");
        match event {
            watcher::Event::Init => state.listing = Some(HashMap::new()),
            watcher::Event::InitApply(pv) => {
                let (name, csi) = entry(pv);
                state
                    .listing
                    .get_or_insert_with(HashMap::new)
                    .insert(name, csi);
            }
            watcher::Event::InitDone => {
                state.live = state.listing.take().unwrap_or_default();
                self.ready.send_replace(true);
            }
            watcher::Event::Apply(pv) => {
                let (name, csi) = entry(pv);
                state.live.insert(name, csi);
            }
            watcher::Event::Delete(pv) => {
                state.live.remove(&pv.name_any());
            }
        }
    }
}

/// From the volume index when it holds the volume, else from the API server.
pub async fn volume_or_get(
    volumes: Option<&Volumes>,
    api: &Api<PersistentVolume>,
    name: &str,
) -> Result<Option<PersistentVolume>, kube::Error> {
    if let Some(volumes) = volumes
        && let Some(hit) = volumes.get(name).await
    {
        return Ok(Some(hit));
    }
    api.get_opt(name).await
}

/// What the claim cache keeps of a claim: its metadata but managedFields and labels
/// (annotations, finalizers and the resourceVersion are what the reconcile's own writes are
/// built from), the volume it is bound to and its phase — what the reconcile and the watch's
/// predicate read.
pub fn narrow_claim(pvc: &mut PersistentVolumeClaim) {
    pvc.managed_fields_mut().clear();
    pvc.metadata.labels = None;
    pvc.spec = pvc.spec.take().map(|spec| PersistentVolumeClaimSpec {
        volume_name: spec.volume_name,
        ..PersistentVolumeClaimSpec::default()
    });
    pvc.status = pvc.status.take().map(|status| PersistentVolumeClaimStatus {
        phase: status.phase,
        ..PersistentVolumeClaimStatus::default()
    });
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

    #[tokio::test]
    async fn the_volume_index_answers_once_listed_and_follows_changes() {
        let (volumes, feed) = Volumes::new();
        feed.apply(&watcher::Event::Init);
        feed.apply(&watcher::Event::InitApply(pv("v")));
        // Not listed yet: ask the API server (after the wait; paused time runs it out at once).
        tokio::time::pause();
        assert!(volumes.get("v").await.is_none());
        feed.apply(&watcher::Event::InitDone);
        let hit = volumes.get("v").await.unwrap();
        let csi = hit.spec.unwrap().csi.unwrap();
        assert_eq!(
            (csi.driver.as_str(), csi.volume_handle.as_str()),
            ("d", "h")
        );
        assert!(volumes.get("missing").await.is_none());
        let mut not_csi = pv("nfs");
        not_csi.spec.as_mut().unwrap().csi = None;
        feed.apply(&watcher::Event::Apply(not_csi.clone()));
        let hit = volumes.get("nfs").await.unwrap();
        assert!(
            hit.spec.unwrap().csi.is_none(),
            "known, and not a CSI volume"
        );
        feed.apply(&watcher::Event::Delete(not_csi));
        assert!(volumes.get("nfs").await.is_none());
        // A relist replaces everything at its end.
        feed.apply(&watcher::Event::Init);
        feed.apply(&watcher::Event::InitDone);
        assert!(volumes.get("v").await.is_none());
    }

    #[test]
    fn a_cached_claim_keeps_what_the_reconcile_and_its_writes_read() {
        let mut claim: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "c", "namespace": "n", "resourceVersion": "7", "labels": {"a": "b"},
                         "annotations": {"k": "v"}, "finalizers": ["f"]},
            "spec": {"volumeName": "pv", "accessModes": ["ReadWriteOnce"], "storageClassName": "s"},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}},
        }))
        .unwrap();
        narrow_claim(&mut claim);
        assert_eq!(
            claim.spec.as_ref().unwrap().volume_name.as_deref(),
            Some("pv")
        );
        assert!(claim.spec.as_ref().unwrap().access_modes.is_none());
        assert_eq!(
            claim.status.as_ref().unwrap().phase.as_deref(),
            Some("Bound")
        );
        assert_eq!(claim.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(claim.annotations()["k"], "v");
        assert_eq!(claim.finalizers(), ["f"]);
        assert!(claim.metadata.labels.is_none());
    }

    #[tokio::test]
    async fn a_cache_answers_only_once_listed_and_only_for_what_it_holds() {
        let (reader, mut writer) = reflector::store::<PersistentVolume>();
        let (cache, readiness) = Cache::new(reader);
        writer.apply_watcher_event(&watcher::Event::InitApply(pv("v")));
        // Not listed yet: ask the API server (after the wait; paused time runs it out at once).
        tokio::time::pause();
        assert!(cache.get(None, "v").await.is_none());
        let done = watcher::Event::InitDone;
        writer.apply_watcher_event(&done);
        readiness.observe(&done);
        assert_eq!(cache.get(None, "v").await.unwrap().name_any(), "v");
        assert!(cache.get(None, "missing").await.is_none());
    }
}
