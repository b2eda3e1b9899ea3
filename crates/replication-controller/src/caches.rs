//! Watch caches of what every VolumeReplication reconcile reads: its class, its claim and the
//! claim's volume. A real API server spends a third of its work per VR on those GETs (issue
//! 21). Each cache is filled by a watch of its own task ([`fill`]), which also forwards what it
//! applies to the controller (class and claim changes map to VolumeReplications), so one watch
//! per kind serves both. Volumes are kept as an index of their CSI sources ([`Volumes`]), not
//! as whole objects.
//!
//! The tasks run whether or not the controller polls them: kube's runner stops polling its
//! trigger streams while it is at its concurrency limit, so a cache filled by a stream the
//! controller drives, and a reconcile waiting for it, can starve each other. Hence a reconcile
//! never waits for a cache: one whose first list is not in, or that does not hold the name
//! (created a moment ago, or missing), sends it to the API server, so a cache is never the
//! reason an object is reported missing. The controller waits for the first lists before it
//! starts ([`Caches::wait_listed`]). A hit may be a moment old: what the reconcile writes from
//! it carries its resourceVersion, so a stale one is a conflict and a retry.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{StreamExt, future};
use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimStatus, PersistentVolumeSpec,
};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use lifeline_api::replication::VolumeReplicationClass;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Whether a cache's first full list is in.
#[derive(Clone)]
struct Listed(watch::Receiver<bool>);

impl Listed {
    fn new() -> (Self, watch::Sender<bool>) {
        let (tx, rx) = watch::channel(false);
        (Self(rx), tx)
    }

    fn now(&self) -> bool {
        *self.0.borrow()
    }

    /// Until the first list is in (or the task filling the cache is gone).
    async fn wait(&self) {
        let mut ready = self.0.clone();
        let _ = ready.wait_for(|r| *r).await;
    }
}

/// One kind's watch cache and whether its first list is in.
pub struct Cache<K: Resource<DynamicType = ()> + 'static> {
    store: Store<K>,
    listed: Listed,
}

/// Marks a cache listed; kept by the task that fills it.
pub struct Readiness(watch::Sender<bool>);

impl Readiness {
    /// Call on every watch event: the first `InitDone` makes the cache listed.
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
        let (listed, tx) = Listed::new();
        (Self { store, listed }, Readiness(tx))
    }

    /// The cached object, if the first list is in and it holds one by that name; `None` means
    /// "ask the API server". Never waits.
    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<Arc<K>> {
        if !self.listed.now() {
            return None;
        }
        let mut key = ObjectRef::new(name);
        if let Some(namespace) = namespace {
            key = key.within(namespace);
        }
        self.store.get(&key)
    }
}

/// Lists of the cached kinds come in small pages: each page is decoded whole before the cache
/// narrows its objects, so the page size bounds the controller's peak memory at start.
pub fn cache_pages() -> watcher::Config {
    watcher::Config::default().page_size(100)
}

/// Spawns a task that runs a watch of `api` (retrying with backoff, failures logged) and hands
/// every event to `on_event`.
fn spawn_watch<K>(
    api: Api<K>,
    mut on_event: impl FnMut(watcher::Event<K>) + Send + 'static,
) -> JoinHandle<()>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let kind = K::kind(&());
    tokio::spawn(
        watcher(api, cache_pages())
            .default_backoff()
            .for_each(move |event| {
                match event {
                    Ok(event) => on_event(event),
                    Err(error) => tracing::warn!(%error, %kind, "watch failed; retrying"),
                }
                future::ready(())
            }),
    )
}

/// Spawns the watch that fills a cache (objects narrowed by `narrow` first) and returns the
/// objects it applied, in order, for the controller's triggers. The channel is unbounded so
/// the cache never waits for the controller; what queues there is narrowed objects, and only
/// while the controller is at its concurrency limit.
pub fn fill<K>(
    api: Api<K>,
    mut narrow: impl FnMut(&mut K) + Send + 'static,
    mut writer: reflector::store::Writer<K>,
    readiness: Readiness,
) -> (JoinHandle<()>, mpsc::UnboundedReceiver<K>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync,
    K: 'static,
{
    let (tx, rx) = mpsc::unbounded();
    let task = spawn_watch(api, move |event| {
        let event = event.modify(&mut narrow);
        writer.apply_watcher_event(&event);
        readiness.observe(&event);
        if let watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) = event {
            // The receiver is gone only when the controller has stopped.
            let _ = tx.unbounded_send(obj);
        }
    });
    (task, rx)
}

/// The reconcile's caches.
pub struct Caches {
    pub classes: Cache<VolumeReplicationClass>,
    pub claims: Cache<PersistentVolumeClaim>,
    pub volumes: Arc<Volumes>,
}

impl Caches {
    /// Waits up to `timeout` for every cache's first list; returns the ones still not listed
    /// (their reads go to the API server until they are).
    pub async fn wait_listed(&self, timeout: Duration) -> Vec<&'static str> {
        let all = [
            ("VolumeReplicationClasses", &self.classes.listed),
            ("PersistentVolumeClaims", &self.claims.listed),
            ("PersistentVolumes", &self.volumes.listed),
        ];
        let _ = tokio::time::timeout(
            timeout,
            future::join_all(all.iter().map(|(_, listed)| listed.wait())),
        )
        .await;
        all.iter()
            .filter(|(_, listed)| !listed.now())
            .map(|(name, _)| *name)
            .collect()
    }
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
    if let Some(hit) = cache.and_then(|cache| cache.get(namespace, name)) {
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
    listed: Listed,
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
    readiness: Readiness,
}

impl Volumes {
    pub fn new() -> (Arc<Self>, VolumesFeed) {
        let (listed, tx) = Listed::new();
        let volumes = Arc::new(Self {
            state: RwLock::default(),
            listed,
        });
        let feed = VolumesFeed {
            volumes: Arc::clone(&volumes),
            readiness: Readiness(tx),
        };
        (volumes, feed)
    }

    /// The volume as the reconcile reads it (name and CSI source), once the first list is in;
    /// `None` means "ask the API server". Never waits.
    pub fn get(&self, name: &str) -> Option<PersistentVolume> {
        if !self.listed.now() {
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
                self.readiness.observe(event);
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

/// Spawns the PersistentVolume watch that fills the volume index.
pub fn fill_volumes(api: Api<PersistentVolume>, feed: VolumesFeed) -> JoinHandle<()> {
    spawn_watch(api, move |event| feed.apply(&event))
}

/// From the volume index when it holds the volume, else from the API server.
pub async fn volume_or_get(
    volumes: Option<&Volumes>,
    api: &Api<PersistentVolume>,
    name: &str,
) -> Result<Option<PersistentVolume>, kube::Error> {
    if let Some(hit) = volumes.and_then(|volumes| volumes.get(name)) {
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

    #[test]
    fn the_volume_index_answers_once_listed_and_follows_changes() {
        let (volumes, feed) = Volumes::new();
        feed.apply(&watcher::Event::Init);
        feed.apply(&watcher::Event::InitApply(pv("v")));
        // Not listed yet: ask the API server.
        assert!(volumes.get("v").is_none());
        feed.apply(&watcher::Event::InitDone);
        let hit = volumes.get("v").unwrap();
        let csi = hit.spec.unwrap().csi.unwrap();
        assert_eq!(
            (csi.driver.as_str(), csi.volume_handle.as_str()),
            ("d", "h")
        );
        assert!(volumes.get("missing").is_none());
        let mut not_csi = pv("nfs");
        not_csi.spec.as_mut().unwrap().csi = None;
        feed.apply(&watcher::Event::Apply(not_csi.clone()));
        let hit = volumes.get("nfs").unwrap();
        assert!(
            hit.spec.unwrap().csi.is_none(),
            "known, and not a CSI volume"
        );
        feed.apply(&watcher::Event::Delete(not_csi));
        assert!(volumes.get("nfs").is_none());
        // A relist replaces everything at its end.
        feed.apply(&watcher::Event::Init);
        feed.apply(&watcher::Event::InitDone);
        assert!(volumes.get("v").is_none());
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

    #[test]
    fn a_cache_answers_only_once_listed_and_only_for_what_it_holds() {
        let (reader, mut writer) = reflector::store::<PersistentVolume>();
        let (cache, readiness) = Cache::new(reader);
        writer.apply_watcher_event(&watcher::Event::InitApply(pv("v")));
        // Not listed yet: ask the API server.
        assert!(cache.get(None, "v").is_none());
        let done = watcher::Event::InitDone;
        writer.apply_watcher_event(&done);
        readiness.observe(&done);
        assert_eq!(cache.get(None, "v").unwrap().name_any(), "v");
        assert!(cache.get(None, "missing").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_controller_learns_which_caches_missed_their_first_list() {
        let (classes, class_ready) = Cache::new(reflector::store().0);
        let (claims, _claims_not_yet) = Cache::new(reflector::store().0);
        let (volumes, feed) = Volumes::new();
        let caches = Caches {
            classes,
            claims,
            volumes,
        };
        class_ready.observe(&watcher::Event::<VolumeReplicationClass>::InitDone);
        feed.apply(&watcher::Event::InitDone);
        assert_eq!(
            caches.wait_listed(Duration::from_secs(30)).await,
            ["PersistentVolumeClaims"]
        );
    }
}
