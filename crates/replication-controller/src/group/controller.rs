//! Wiring the VolumeGroupReplication controller: groups are the main stream; a claim maps to
//! the groups whose selector picks it (or that protect it), a VolumeReplication to the group
//! that is its dataSource (its status is mirrored into the group's).

use std::sync::Arc;

use futures::{StreamExt, future};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt, controller, watcher};
use kube::{Api, ResourceExt};
use lifeline_api::replication::{
    DataSourceKind, VGR_OWNER_ANNOTATION, VolumeGroupReplication, VolumeReplication,
};

use super::reconcile::{error_policy, reconcile};
use super::select;
use crate::context::Context;

pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<&str>,
    concurrency: u16,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let (vgrs, pvcs, vrs) = match namespace {
        Some(ns) => (
            Api::<VolumeGroupReplication>::namespaced(client.clone(), ns),
            Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns),
            Api::<VolumeReplication>::namespaced(client.clone(), ns),
        ),
        None => (
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client),
        ),
    };
    let (reader, writer) = reflector::store::<VolumeGroupReplication>();
    let group_stream = watcher(vgrs, watcher::Config::default())
        .default_backoff()
        .modify(|g: &mut VolumeGroupReplication| g.managed_fields_mut().clear())
        .reflect(writer)
        .applied_objects()
        .predicate_filter(kube::runtime::predicates::generation, Default::default());
    let pvc_stream = watcher(pvcs, watcher::Config::default())
        .default_backoff()
        .applied_objects();
    let vr_stream = watcher(vrs, watcher::Config::default())
        .default_backoff()
        .applied_objects();
    let by_pvc = reader.clone();
    Controller::for_stream(group_stream, reader)
        .watches_stream(pvc_stream, move |pvc| {
            groups_for_claim(&by_pvc.state(), &pvc)
        })
        .watches_stream(vr_stream, |vr| group_of(&vr))
        .with_config(controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            if let Err(error) = result {
                tracing::debug!(%error, "volume group controller event");
            }
            future::ready(())
        })
        .await;
}

/// The groups of the claim's namespace that select it or protect it.
pub fn groups_for_claim(
    groups: &[Arc<VolumeGroupReplication>],
    claim: &PersistentVolumeClaim,
) -> Vec<ObjectRef<VolumeGroupReplication>> {
    groups
        .iter()
        .filter(|g| g.namespace() == claim.namespace())
        .filter(|g| {
            select::matches(&g.spec.source.selector, claim.labels())
                || claim.annotations().get(VGR_OWNER_ANNOTATION) == Some(&g.name_any())
        })
        .map(|g| ObjectRef::from_obj(g.as_ref()))
        .collect()
}

/// The group a VolumeReplication replicates, if its dataSource is one.
pub fn group_of(vr: &VolumeReplication) -> Option<ObjectRef<VolumeGroupReplication>> {
    (DataSourceKind::of(&vr.spec.data_source) == Some(DataSourceKind::VolumeGroupReplication)).then(
        || ObjectRef::new(&vr.spec.data_source.name).within(&vr.namespace().unwrap_or_default()),
    )
}
