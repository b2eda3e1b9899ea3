//! Wiring: one kube-runtime Controller for VolumeSnapshotBackups and one for
//! VolumeSnapshotRestores. Each also watches its VolSync objects (found by our labels) and the
//! backups watch VolumeSnapshotContents (a user snapshot becoming ready), so progress is
//! watch-driven.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use futures::{FutureExt, StreamExt, TryStreamExt, future};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt, controller, watcher};
use kube::{Api, Resource, ResourceExt};
use lifeline_api::datamover::{BatchingStatus, VolumeSnapshotBackup, VolumeSnapshotRestore};
use lifeline_api::foreign::snapshot::VolumeSnapshotContent;
use lifeline_api::foreign::volsync::{ReplicationDestination, ReplicationSource};
use lifeline_runtime::Health;

use crate::context::Context;
use crate::names::{REQUEST_KIND, REQUEST_NAME, REQUEST_NAMESPACE, RequestKind};
use crate::reconcile::{backup, error_policy, restore};

/// Marks the process ready once every main cache has had its first full list.
pub(crate) struct Readiness {
    health: Arc<Health>,
    synced: AtomicUsize,
    needed: usize,
}

impl Readiness {
    pub(crate) fn on_init_done<K>(
        self: &Arc<Self>,
    ) -> impl FnMut(&watcher::Event<K>) + Send + 'static {
        let readiness = Arc::clone(self);
        let seen = AtomicBool::new(false);
        move |event| {
            if matches!(event, watcher::Event::InitDone) && !seen.swap(true, Ordering::Relaxed) {
                let synced = readiness.synced.fetch_add(1, Ordering::Relaxed) + 1;
                if synced >= readiness.needed {
                    readiness.health.set_ready(true);
                }
            }
        }
    }
}

/// The request a working object belongs to, from its labels.
fn request_of<K: Resource<DynamicType = ()>, R: Resource<DynamicType = ()>>(
    object: &K,
    kind: RequestKind,
) -> Option<ObjectRef<R>> {
    let labels = object.labels();
    if labels.get(REQUEST_KIND).map(String::as_str) != Some(kind.as_str()) {
        return None;
    }
    Some(ObjectRef::new(labels.get(REQUEST_NAME)?).within(labels.get(REQUEST_NAMESPACE)?))
}

/// Whether a request no longer holds a slot (finished, or being deleted): its change may let a
/// queued one start.
pub fn frees_a_slot(finished: bool, deleting: bool) -> bool {
    finished || deleting
}

/// The queued requests, to wake when a slot frees.
fn queued<K>(
    store: &reflector::Store<K>,
    batching: impl Fn(&K) -> Option<BatchingStatus>,
) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store
        .state()
        .iter()
        .filter(|k| batching(k) == Some(BatchingStatus::Queued))
        .map(|k| ObjectRef::from_obj(k.as_ref()))
        .collect()
}

/// The requests a changed Secret or ConfigMap concerns (`uses`): those that name the Secret,
/// or every unfinished one of the namespace for an OADP ConfigMap (whose storage class a
/// request may not know yet).
fn naming<K>(store: &reflector::Store<K>, uses: impl Fn(&K) -> bool) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store
        .state()
        .iter()
        .filter(|k| uses(k))
        .map(|k| ObjectRef::from_obj(k.as_ref()))
        .collect()
}

fn unfinished(vsb: &VolumeSnapshotBackup) -> bool {
    !matches!(
        vsb.status.as_ref().and_then(|s| s.batching()),
        Some(BatchingStatus::Completed)
    )
}

/// Working objects live in the protected namespace: watch only that one when restricted.
pub(crate) fn working<K>(client: &kube::Client, protected: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>,
{
    lifeline_api::scope::namespaced_or_all(client, protected)
}

/// Runs the controllers until `shutdown` resolves: VolumeSnapshotBackups and Restores, and
/// Velero's DataUploads and DataDownloads where `served`.
pub async fn run(
    ctx: Arc<Context>,
    concurrency: u16,
    served: crate::velero_controllers::Served,
    health: Arc<Health>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let client = ctx.client.clone();
    let readiness = Arc::new(Readiness {
        health,
        synced: AtomicUsize::new(0),
        needed: 2 + served.count(),
    });
    let shutdown = shutdown.shared();
    let shutdown_for_velero = shutdown.clone();
    let config = controller::Config::default().concurrency(concurrency);
    let config_for_velero = config.clone();
    let protected = ctx.settings.protected_namespace.as_deref();

    let (vsb_reader, vsb_writer) = reflector::store::<VolumeSnapshotBackup>();
    let vsb_stream = watcher(
        Api::<VolumeSnapshotBackup>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(vsb_writer)
    .inspect_ok(readiness.on_init_done())
    .applied_objects();
    let labelled = |kind: RequestKind| {
        watcher::Config::default().labels(&format!("{REQUEST_KIND}={}", kind.as_str()))
    };
    let sources = watcher(
        working::<ReplicationSource>(&client, protected),
        labelled(RequestKind::Backup),
    )
    .default_backoff()
    .applied_objects();
    let contents = watcher(
        Api::<VolumeSnapshotContent>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects();
    let by_content = vsb_reader.clone();
    // Another watch of the requests: one finishing (or going) wakes the queued ones.
    let vsb_changes = watcher(
        Api::<VolumeSnapshotBackup>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects();
    let queue = vsb_reader.clone();
    // The user's restic Secrets and OADP's ConfigMaps, metadata only (no value is held): a
    // fixed one is noticed at once instead of at the next recheck.
    let secrets = watcher(
        working::<PartialObjectMeta<Secret>>(&client, protected),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects();
    let config_maps = watcher(
        working::<PartialObjectMeta<ConfigMap>>(&client, protected),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects();
    let by_secret = vsb_reader.clone();
    let by_config = vsb_reader.clone();
    let backups = Controller::for_stream(vsb_stream, vsb_reader)
        .watches_stream(vsb_changes, move |vsb| {
            let finished = matches!(
                vsb.status.as_ref().and_then(|s| s.batching()),
                Some(BatchingStatus::Completed)
            );
            if frees_a_slot(finished, vsb.metadata.deletion_timestamp.is_some()) {
                queued(&queue, |v: &VolumeSnapshotBackup| {
                    v.status.as_ref().and_then(|s| s.batching())
                })
            } else {
                Vec::new()
            }
        })
        .watches_stream(secrets, move |secret| {
            naming(&by_secret, |v: &VolumeSnapshotBackup| {
                unfinished(v)
                    && Some(v.spec.protected_namespace.as_str())
                        == secret.metadata.namespace.as_deref()
                    && v.spec.restic_secret_ref.as_ref().map(|r| r.name.as_str())
                        == secret.metadata.name.as_deref()
            })
        })
        .watches_stream(config_maps, move |cm| {
            let oadp = cm
                .metadata
                .name
                .as_deref()
                .is_some_and(|n| n.ends_with("-config"));
            naming(&by_config, |v: &VolumeSnapshotBackup| {
                oadp && unfinished(v)
                    && Some(v.spec.protected_namespace.as_str()) == cm.metadata.namespace.as_deref()
            })
        })
        .watches_stream(sources, |rs| {
            request_of::<_, VolumeSnapshotBackup>(&rs, RequestKind::Backup)
        })
        .watches_stream(contents, move |content| {
            by_content
                .state()
                .into_iter()
                .filter(|vsb| {
                    vsb.spec.volume_snapshot_content.name.as_deref()
                        == Some(content.name_any().as_str())
                })
                .map(|vsb| ObjectRef::from_obj(vsb.as_ref()))
                .collect::<Vec<_>>()
        })
        .with_config(config.clone())
        .graceful_shutdown_on(shutdown.clone())
        .run(backup::reconcile, error_policy, Arc::clone(&ctx))
        .for_each(|_| future::ready(()));

    let (vsr_reader, vsr_writer) = reflector::store::<VolumeSnapshotRestore>();
    let vsr_stream = watcher(
        Api::<VolumeSnapshotRestore>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(vsr_writer)
    .inspect_ok(readiness.on_init_done())
    .applied_objects();
    let destinations = watcher(
        working::<ReplicationDestination>(&client, protected),
        labelled(RequestKind::Restore),
    )
    .default_backoff()
    .applied_objects();
    let vsr_changes = watcher(
        Api::<VolumeSnapshotRestore>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects();
    let restore_queue = vsr_reader.clone();
    let restores = Controller::for_stream(vsr_stream, vsr_reader)
        .watches_stream(vsr_changes, move |vsr| {
            let finished = matches!(
                vsr.status.as_ref().and_then(|s| s.batching()),
                Some(BatchingStatus::Completed)
            );
            if frees_a_slot(finished, vsr.metadata.deletion_timestamp.is_some()) {
                queued(&restore_queue, |v: &VolumeSnapshotRestore| {
                    v.status.as_ref().and_then(|s| s.batching())
                })
            } else {
                Vec::new()
            }
        })
        .watches_stream(destinations, |rd| {
            request_of::<_, VolumeSnapshotRestore>(&rd, RequestKind::Restore)
        })
        .with_config(config)
        .graceful_shutdown_on(shutdown)
        .run(restore::reconcile, error_policy, Arc::clone(&ctx))
        .for_each(|_| future::ready(()));

    let velero = crate::velero_controllers::run(
        &ctx,
        served,
        config_for_velero,
        shutdown_for_velero,
        &readiness,
    );
    tokio::join!(backups, restores, velero);
}
