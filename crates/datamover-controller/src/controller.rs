//! Wiring: one kube-runtime Controller for VolumeSnapshotBackups and one for
//! VolumeSnapshotRestores. Each also watches its VolSync objects (found by our labels) and the
//! backups watch VolumeSnapshotContents (a user snapshot becoming ready), so progress is
//! watch-driven.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use futures::{FutureExt, StreamExt, TryStreamExt, future};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt, controller, watcher};
use kube::{Api, Resource, ResourceExt};
use lifeline_api::datamover::{VolumeSnapshotBackup, VolumeSnapshotRestore};
use lifeline_api::foreign::snapshot::VolumeSnapshotContent;
use lifeline_api::foreign::volsync::{ReplicationDestination, ReplicationSource};
use lifeline_runtime::Health;

use crate::context::Context;
use crate::names::{REQUEST_KIND, REQUEST_NAME, REQUEST_NAMESPACE, RequestKind};
use crate::reconcile::{backup, error_policy, restore};

/// Marks the process ready once every main cache has had its first full list.
struct Readiness {
    health: Arc<Health>,
    synced: AtomicUsize,
    needed: usize,
}

impl Readiness {
    fn on_init_done<K>(self: &Arc<Self>) -> impl FnMut(&watcher::Event<K>) + Send + 'static {
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

/// Working objects live in the protected namespace: watch only that one when restricted.
fn working<K>(client: &kube::Client, protected: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>,
{
    match protected {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// Runs both controllers until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    concurrency: u16,
    health: Arc<Health>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let client = ctx.client.clone();
    let readiness = Arc::new(Readiness {
        health,
        synced: AtomicUsize::new(0),
        needed: 2,
    });
    let shutdown = shutdown.shared();
    let config = controller::Config::default().concurrency(concurrency);
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
    let backups = Controller::for_stream(vsb_stream, vsb_reader)
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
    let restores = Controller::for_stream(vsr_stream, vsr_reader)
        .watches_stream(destinations, |rd| {
            request_of::<_, VolumeSnapshotRestore>(&rd, RequestKind::Restore)
        })
        .with_config(config)
        .graceful_shutdown_on(shutdown)
        .run(restore::reconcile, error_policy, ctx)
        .for_each(|_| future::ready(()));

    tokio::join!(backups, restores);
}
