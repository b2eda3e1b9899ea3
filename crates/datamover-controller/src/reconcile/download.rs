//! Reconciling a Velero DataDownload: fetch what [`decide`] needs, apply its decision.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Secret};
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use lifeline_api::foreign::velero::{DYNAMIC_PV_RESTORE, DataDownload, DataMovePhase};
use lifeline_api::foreign::volsync::ReplicationDestination;
use serde_json::json;

use super::shared::create;
use super::velero_request::{
    cancel_untaken, canceled, canceling, complete, delete_opt, fail, is_owned_by, location_keys,
    patch_request, take,
};
use crate::context::{Context, FIELD_MANAGER};
use crate::error::Error;
use crate::repository::ResticSecret;
use crate::velero::download::build::{
    destination, owned_by, secret_name, working_claim, working_name,
};
use crate::velero::download::{
    Decision, Leftover, Observed, RECLAIM_POLICY, RESTORED_BY, decide, forward, progress_of,
    restore_label,
};
use crate::velero::request::is_ours;

pub async fn reconcile(dd: Arc<DataDownload>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !is_ours(dd.spec.datamover.as_deref(), &ctx.settings.datamover_name) {
        return Ok(Action::await_change());
    }
    let result = reconcile_inner(&dd, &ctx).await;
    ctx.metrics
        .reconciled("download", result.as_ref().err().map(Error::category));
    result
}

fn owned<K: Resource>(object: Option<K>, dd: &DataDownload) -> Option<K> {
    object.filter(|o| is_owned_by(o, dd))
}

async fn reconcile_inner(dd: &Arc<DataDownload>, ctx: &Arc<Context>) -> Result<Action, Error> {
    let c = &ctx.client;
    let namespace = dd.namespace().unwrap_or_default();
    let name = dd.name_any();
    let work = working_name(&name);
    let target_ref = dd.spec.target_volume.clone().unwrap_or_default();
    let target = match (
        target_ref.namespace.as_deref().filter(|n| !n.is_empty()),
        target_ref.pvc.as_deref().filter(|n| !n.is_empty()),
    ) {
        (Some(ns), Some(pvc)) => {
            Api::<PersistentVolumeClaim>::namespaced(c.clone(), ns)
                .get_opt(pvc)
                .await?
        }
        _ => None,
    };
    let claims = Api::<PersistentVolumeClaim>::namespaced(c.clone(), &namespace);
    let claim = owned(claims.get_opt(&work).await?, dd);
    let volumes = Api::<PersistentVolume>::all(c.clone());
    let claim_volume = match claim
        .as_ref()
        .and_then(|c| c.spec.as_ref())
        .and_then(|s| s.volume_name.clone())
    {
        Some(volume) => volumes.get_opt(&volume).await?,
        None => None,
    };
    let volume = match dd.metadata.uid.as_deref() {
        Some(uid) => volumes
            .list(&ListParams::default().labels(&format!("{RESTORED_BY}={uid}")))
            .await?
            .items
            .into_iter()
            .next(),
        None => None,
    };
    let mut observed = Observed {
        dd: dd.as_ref().clone(),
        mover: ctx.settings.datamover_name.clone(),
        now: k8s_openapi::jiff::Timestamp::now(),
        served: ctx.settings.serves(&namespace).map_err(|p| p.to_string()),
        keys: None,
        target,
        secret: owned(
            Api::<Secret>::namespaced(c.clone(), &namespace)
                .get_opt(&secret_name(&name))
                .await?,
            dd,
        )
        .is_some(),
        claim,
        claim_volume,
        destination: owned(
            Api::<ReplicationDestination>::namespaced(c.clone(), &namespace)
                .get_opt(&work)
                .await?,
            dd,
        ),
        volume,
    };
    let mut keys = None;
    if decide(&observed) == Decision::ReadLocation {
        let location = dd.spec.backup_storage_location.clone().unwrap_or_default();
        let found = location_keys(ctx, &namespace, &location, false).await?;
        observed.keys = Some(found.as_ref().map(|_| ()).map_err(Clone::clone));
        keys = found.ok();
    }
    let decision = decide(&observed);
    tracing::debug!(namespace, name, ?decision, "data download");
    apply(&observed, decision, keys, ctx).await
}

fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

/// The reclaim policy a kept volume had before it was kept (`Delete` when not recorded).
fn original_policy(volume: &PersistentVolume) -> String {
    volume
        .annotations()
        .get(RECLAIM_POLICY)
        .cloned()
        .unwrap_or_else(|| "Delete".into())
}

async fn patch_volume(ctx: &Context, name: &str, patch: serde_json::Value) -> Result<(), Error> {
    Api::<PersistentVolume>::all(ctx.client.clone())
        .patch(name, &params(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

async fn apply(
    observed: &Observed,
    decision: Decision,
    keys: Option<std::collections::BTreeMap<String, Vec<u8>>>,
    ctx: &Context,
) -> Result<Action, Error> {
    let dd = &observed.dd;
    let c = &ctx.client;
    let namespace = dd.namespace().unwrap_or_default();
    let name = dd.name_any();
    let status = dd.status.clone().unwrap_or_default();
    let current = status.phase.as_ref().and_then(|p| p.known());
    let target = dd.spec.target_volume.clone().unwrap_or_default();
    let (target_ns, target_pvc) = (
        target.namespace.unwrap_or_default(),
        target.pvc.unwrap_or_default(),
    );
    match decision {
        Decision::Ignore => Ok(Action::await_change()),
        Decision::ReadLocation => Ok(Action::requeue(Duration::from_secs(5))),
        Decision::Take => take(ctx, dd, &observed.mover).await,
        Decision::CancelUntaken => cancel_untaken(ctx, dd).await,
        Decision::Create {
            secret,
            claim,
            destination: rd,
        } => {
            let mut custom_ca = false;
            if secret {
                let Some(keys) = keys else {
                    return Ok(Action::requeue(Duration::from_secs(1)));
                };
                let checked = match ResticSecret::parse(&keys) {
                    Ok(checked) => checked,
                    Err(error) => {
                        let message =
                            format!("the restic settings derived from the location: {error}");
                        return fail(ctx, dd, "download", &message).await;
                    }
                };
                custom_ca = checked.has_custom_ca();
                let source = dd.spec.source_namespace.clone().unwrap_or_default();
                let data = checked.with_repository(&checked.repository_for(&source, &target_pvc));
                let object: Secret = serde_json::from_value(json!({
                    "metadata": {"name": secret_name(&name), "namespace": namespace, "ownerReferences": owned_by(dd)},
                    "type": "Opaque", "stringData": data,
                }))
                .expect("a valid Secret");
                create(&Api::<Secret>::namespaced(c.clone(), &namespace), &object).await?;
            } else if rd {
                // The Secret was made before: whether it carries a CA decides `customCA`.
                custom_ca = Api::<Secret>::namespaced(c.clone(), &namespace)
                    .get_opt(&secret_name(&name))
                    .await?
                    .and_then(|s| s.data)
                    .is_some_and(|d| d.contains_key(crate::repository::RESTIC_CUSTOM_CA));
            }
            if claim {
                create(
                    &Api::<PersistentVolumeClaim>::namespaced(c.clone(), &namespace),
                    &working_claim(observed, &name, &namespace),
                )
                .await?;
            }
            if rd {
                create(
                    &Api::<ReplicationDestination>::namespaced(c.clone(), &namespace),
                    &destination(observed, &ctx.settings, &name, &namespace, custom_ca),
                )
                .await?;
            }
            if forward(current, DataMovePhase::Prepared) {
                patch_request(
                    ctx,
                    dd,
                    json!({"phase": "Prepared", "message": "restoring into a working claim"}),
                    false,
                )
                .await?;
            }
            Ok(Action::await_change())
        }
        Decision::Wait(why) => {
            tracing::debug!(name, why, "waiting");
            Ok(Action::requeue(Duration::from_secs(2)))
        }
        Decision::Running => {
            let job = super::progress::job_name(&working_name(&name), false);
            let pods = super::progress::mover_pods(ctx, &namespace, &job).await;
            let log = match super::progress::newest(&pods, |_| true) {
                Some(pod) => super::progress::log_of(ctx, &namespace, pod).await,
                None => None,
            };
            let counts = log
                .as_deref()
                .and_then(|l| crate::progress::report(l).counts);
            let progress = progress_of(counts, dd.spec.snapshot_size);
            let phase = if forward(current, DataMovePhase::InProgress) {
                DataMovePhase::InProgress
            } else {
                current.unwrap_or(DataMovePhase::InProgress)
            };
            if current != Some(phase) || status.progress.as_ref() != Some(&progress) {
                patch_request(
                    ctx,
                    dd,
                    json!({"phase": phase.as_str(), "progress": progress, "message": "the mover is restoring the data"}),
                    false,
                )
                .await?;
            }
            let every = ctx.settings.progress_interval;
            Ok(Action::requeue(if every.is_zero() {
                Duration::from_secs(10)
            } else {
                every
            }))
        }
        Decision::Keep => {
            let Some(volume) = &observed.claim_volume else {
                return Ok(Action::requeue(Duration::from_secs(1)));
            };
            let original = volume
                .spec
                .as_ref()
                .and_then(|s| s.persistent_volume_reclaim_policy.clone())
                .unwrap_or_else(|| "Delete".into());
            patch_volume(
                ctx,
                &volume.name_any(),
                json!({"metadata": {"labels": {RESTORED_BY: dd.metadata.uid},
                                    "annotations": {RECLAIM_POLICY: original}},
                       "spec": {"persistentVolumeReclaimPolicy": "Retain"}}),
            )
            .await?;
            Ok(Action::requeue(Duration::from_millis(200)))
        }
        Decision::Release => {
            delete_opt(
                Api::<ReplicationDestination>::namespaced(c.clone(), &namespace),
                &working_name(&name),
            )
            .await?;
            delete_opt(
                Api::<PersistentVolumeClaim>::namespaced(c.clone(), &namespace),
                &working_name(&name),
            )
            .await?;
            Ok(Action::requeue(Duration::from_secs(1)))
        }
        Decision::HandOver => {
            let Some(volume) = &observed.volume else {
                return Ok(Action::requeue(Duration::from_secs(1)));
            };
            let label = observed
                .target
                .as_ref()
                .and_then(restore_label)
                .unwrap_or_else(|| format!("{target_ns}.{target_pvc}"));
            // Still `Retain`: the volume is `Released` until it binds, and a `Delete` policy
            // now would have the provisioner delete it (seen with the real external-provisioner).
            patch_volume(
                ctx,
                &volume.name_any(),
                json!({"metadata": {"labels": {DYNAMIC_PV_RESTORE: label}},
                       "spec": {"claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                             "namespace": target_ns, "name": target_pvc,
                                             "uid": null, "resourceVersion": null}}}),
            )
            .await?;
            Ok(Action::requeue(Duration::from_secs(1)))
        }
        Decision::Complete => {
            // Bound to Velero's claim: the class's reclaim policy back.
            if let Some(volume) = &observed.volume {
                let policy = original_policy(volume);
                let current = volume
                    .spec
                    .as_ref()
                    .and_then(|s| s.persistent_volume_reclaim_policy.clone());
                if current.as_deref() != Some(policy.as_str()) {
                    patch_volume(
                        ctx,
                        &volume.name_any(),
                        json!({"spec": {"persistentVolumeReclaimPolicy": policy}}),
                    )
                    .await?;
                }
            }
            let total = status
                .progress
                .as_ref()
                .and_then(|p| p.total_bytes.or(p.bytes_done))
                .or(dd.spec.snapshot_size);
            let note = format!("restored into {target_ns}/{target_pvc}");
            let status = json!({"progress": {"totalBytes": total, "bytesDone": total},
                                "message": note});
            complete(ctx, dd, "download", status, note).await
        }
        Decision::Fail(message) => fail(ctx, dd, "download", &message).await,
        Decision::Cancel => {
            canceling(ctx, dd).await?;
            Ok(Action::requeue(Duration::from_millis(200)))
        }
        Decision::CleanUp(left) => {
            for leftover in left {
                match leftover {
                    Leftover::Destination => {
                        delete_opt(
                            Api::<ReplicationDestination>::namespaced(c.clone(), &namespace),
                            &working_name(&name),
                        )
                        .await?
                    }
                    Leftover::Claim => {
                        delete_opt(
                            Api::<PersistentVolumeClaim>::namespaced(c.clone(), &namespace),
                            &working_name(&name),
                        )
                        .await?
                    }
                    Leftover::Secret => {
                        delete_opt(
                            Api::<Secret>::namespaced(c.clone(), &namespace),
                            &secret_name(&name),
                        )
                        .await?
                    }
                    Leftover::Volume => {
                        if let Some(volume) = &observed.volume {
                            let policy = original_policy(volume);
                            patch_volume(
                                ctx,
                                &volume.name_any(),
                                json!({"metadata": {"labels": {RESTORED_BY: null}},
                                       "spec": {"persistentVolumeReclaimPolicy": policy}}),
                            )
                            .await?;
                        }
                    }
                }
            }
            Ok(Action::requeue(Duration::from_secs(1)))
        }
        Decision::Canceled => canceled(ctx, dd, "download").await,
    }
}
