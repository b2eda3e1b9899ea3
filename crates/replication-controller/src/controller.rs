//! Wiring kube-runtime's `Controller`: VolumeReplications are the main stream; PVC and
//! VolumeReplicationClass changes map to the VolumeReplications that use them. Those come
//! from the watches that fill the caches the reconcile reads ([`crate::caches`]). Predicates
//! drop events that cannot change a decision (our own status and finalizer writes), so the
//! controller does not trigger itself.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt, future};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt, controller, watcher};
use kube::{Api, ResourceExt};
use lifeline_api::replication::{DataSourceKind, VolumeReplication, VolumeReplicationClass};
use lifeline_runtime::Health;

use crate::caches::{self, Cache, Caches, Volumes, narrow_claim};
use crate::context::Context;
use crate::reconcile::{error_policy, reconcile};

/// Runs until `shutdown` resolves (then finishes in-flight reconciles).
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<&str>,
    concurrency: u16,
    health: Arc<Health>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let (vrs, pvcs) = match namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (
            Api::all(client.clone()),
            Api::<PersistentVolumeClaim>::all(client.clone()),
        ),
    };
    let classes = Api::<VolumeReplicationClass>::all(client.clone());
    let (reader, writer) = reflector::store::<VolumeReplication>();
    // Classes, claims and volumes are cached by watches of their own tasks (see `caches`);
    // class and claim changes come back from them as triggers.
    let (class_reader, class_writer) = reflector::store::<VolumeReplicationClass>();
    let (claim_reader, claim_writer) = reflector::store::<PersistentVolumeClaim>();
    let (class_cache, class_ready) = Cache::new(class_reader);
    let (claim_cache, claim_ready) = Cache::new(claim_reader);
    let (volume_index, volume_feed) = Volumes::new();
    let (class_task, class_events) = caches::fill(
        classes,
        |class: &mut VolumeReplicationClass| class.managed_fields_mut().clear(),
        class_writer,
        class_ready,
    );
    let (claim_task, claim_events) = caches::fill(pvcs, narrow_claim, claim_writer, claim_ready);
    let volume_task = caches::fill_volumes(Api::<PersistentVolume>::all(client), volume_feed);
    let caches = Caches {
        classes: class_cache,
        claims: claim_cache,
        volumes: volume_index,
    };
    // Reconciles read the caches from the first one on; a cache that cannot list (RBAC, say)
    // only costs GETs, so the wait is bounded.
    for kind in caches.wait_listed(FIRST_LIST_WAIT).await {
        tracing::warn!(
            %kind,
            "not listed in {}s; reading it from the API server until it is",
            FIRST_LIST_WAIT.as_secs()
        );
    }
    ctx.use_caches(caches);
    // Ready once the first full list is in the cache. (Not `Store::wait_until_ready`: its
    // one-shot wakes only the last of several waiters, and the Controller waits on it too.)
    let vr_stream = watcher(vrs, watcher::Config::default())
        .default_backoff()
        // Nothing here reads managedFields; not caching them keeps memory down at scale.
        .modify(|vr: &mut VolumeReplication| vr.managed_fields_mut().clear())
        .reflect(writer)
        .inspect_ok(move |event| {
            if matches!(event, watcher::Event::InitDone) {
                health.set_ready(true);
            }
        })
        .applied_objects()
        .predicate_filter(vr_relevant, Default::default());
    let pvc_stream = claim_events
        .map(Ok::<_, watcher::Error>)
        .predicate_filter(pvc_relevant, Default::default());
    let class_stream = class_events.map(Ok::<_, watcher::Error>);

    let by_pvc = reader.clone();
    let by_class = reader.clone();
    Controller::for_stream(vr_stream, reader)
        .watches_stream(pvc_stream, move |pvc| vrs_for_pvc(&by_pvc.state(), &pvc))
        .watches_stream(class_stream, move |class| {
            vrs_for_class(&by_class.state(), &class)
        })
        .with_config(controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
            future::ready(())
        })
        .await;
    for task in [class_task, claim_task, volume_task] {
        task.abort();
    }
}

/// How long the controller waits for its caches' first lists before it starts.
const FIRST_LIST_WAIT: Duration = Duration::from_secs(30);

fn hash(value: impl Hash) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    Some(hasher.finish())
}

/// A VolumeReplication needs a reconcile when its spec (generation) changes or its deletion
/// starts — not when its status or finalizers change, which are our own writes.
pub fn vr_relevant(vr: &VolumeReplication) -> Option<u64> {
    hash((
        vr.metadata.generation,
        vr.metadata.deletion_timestamp.is_some(),
    ))
}

/// A claim matters when it binds, changes volume or starts deleting — not when we annotate it.
pub fn pvc_relevant(pvc: &PersistentVolumeClaim) -> Option<u64> {
    hash((
        pvc.status.as_ref().and_then(|s| s.phase.clone()),
        pvc.spec.as_ref().and_then(|s| s.volume_name.clone()),
        pvc.metadata.deletion_timestamp.is_some(),
    ))
}

/// The VolumeReplications whose data source is this claim.
pub fn vrs_for_pvc(
    vrs: &[Arc<VolumeReplication>],
    pvc: &PersistentVolumeClaim,
) -> Vec<ObjectRef<VolumeReplication>> {
    vrs.iter()
        .filter(|vr| {
            vr.namespace() == pvc.namespace()
                && DataSourceKind::of(&vr.spec.data_source)
                    == Some(DataSourceKind::PersistentVolumeClaim)
                && vr.spec.data_source.name == pvc.name_any()
        })
        .map(|vr| ObjectRef::from_obj(vr.as_ref()))
        .collect()
}

/// The VolumeReplications that use this class.
pub fn vrs_for_class(
    vrs: &[Arc<VolumeReplication>],
    class: &VolumeReplicationClass,
) -> Vec<ObjectRef<VolumeReplication>> {
    vrs.iter()
        .filter(|vr| vr.spec.volume_replication_class == class.name_any())
        .map(|vr| ObjectRef::from_obj(vr.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::vr_yaml;

    #[test]
    fn claims_and_classes_map_to_their_volume_replications() {
        let a = Arc::new(vr_yaml("metadata: {name: a}"));
        let b = Arc::new(vr_yaml(
            "metadata: {name: b}\nspec: {dataSource: {name: other}, volumeReplicationClass: silver}",
        ));
        let elsewhere = Arc::new(vr_yaml("metadata: {name: c, namespace: elsewhere}"));
        let vrs = vec![a, b, elsewhere];
        let mut pvc = PersistentVolumeClaim::default();
        pvc.metadata.name = Some("db-data".into());
        pvc.metadata.namespace = Some("shop".into());
        let names = |refs: Vec<ObjectRef<VolumeReplication>>| {
            refs.into_iter().map(|r| r.name).collect::<Vec<_>>()
        };
        assert_eq!(names(vrs_for_pvc(&vrs, &pvc)), vec!["a"]);
        let mut class = VolumeReplicationClass::new(
            "silver",
            lifeline_api::replication::VolumeReplicationClassSpec {
                provisioner: "p".into(),
                parameters: None,
            },
        );
        assert_eq!(names(vrs_for_class(&vrs, &class)), vec!["b"]);
        class.metadata.name = Some("gold".into());
        assert_eq!(names(vrs_for_class(&vrs, &class)), vec!["a", "c"]);
    }

    #[test]
    fn our_own_writes_do_not_retrigger() {
        let vr = vr_yaml("metadata: {name: a}");
        let mut written = vr.clone();
        written.metadata.finalizers = Some(vec!["replication.storage.openshift.io".into()]);
        written.status = Some(Default::default());
        assert_eq!(vr_relevant(&vr), vr_relevant(&written));
        let mut deleting = vr.clone();
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        assert_ne!(vr_relevant(&vr), vr_relevant(&deleting));
        let mut respec = vr.clone();
        respec.metadata.generation = Some(2);
        assert_ne!(vr_relevant(&vr), vr_relevant(&respec));

        let pvc = PersistentVolumeClaim::default();
        let mut annotated = pvc.clone();
        annotated.metadata.annotations = Some([("a".to_owned(), "b".to_owned())].into());
        assert_eq!(pvc_relevant(&pvc), pvc_relevant(&annotated));
    }
}
