//! Reconciling a Velero DataUpload: fetch what [`decide`] needs, apply its decision.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use lifeline_api::datamover::VolumeSnapshotBackup;
use lifeline_api::foreign::snapshot::VolumeSnapshot;
use lifeline_api::foreign::velero::DataUpload;
use serde_json::json;

use super::shared::create;
use super::velero_request::{
    cancel_untaken, canceled, canceling, complete, delete_opt, fail, is_owned_by, location_keys,
    patch_request, take,
};
use crate::context::Context;
use crate::error::Error;
use crate::velero::download::build::{owned_by, secret_name};
use crate::velero::request::is_ours;
use crate::velero::upload::{Decision, Leftover, Observed, decide};

pub async fn reconcile(du: Arc<DataUpload>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !is_ours(du.spec.datamover.as_deref(), &ctx.settings.datamover_name) {
        return Ok(Action::await_change());
    }
    let result = reconcile_inner(&du, &ctx).await;
    ctx.metrics
        .reconciled("upload", result.as_ref().err().map(Error::category));
    result
}

async fn reconcile_inner(du: &Arc<DataUpload>, ctx: &Arc<Context>) -> Result<Action, Error> {
    let c = &ctx.client;
    let namespace = du.namespace().unwrap_or_default();
    let name = du.name_any();
    let backup = Api::<VolumeSnapshotBackup>::namespaced(c.clone(), &namespace)
        .get_opt(&name)
        .await?;
    let mut served = ctx.settings.serves(&namespace).map_err(|p| p.to_string());
    if let Some(b) = &backup
        && !is_owned_by(b, du.as_ref())
    {
        served = Err(format!(
            "a VolumeSnapshotBackup {namespace}/{name} exists and is not this request's; remove it"
        ));
    }
    let backup = backup.filter(|b| is_owned_by(b, du.as_ref()));
    let secret = Api::<Secret>::namespaced(c.clone(), &namespace)
        .get_opt(&secret_name(&name))
        .await?
        .filter(|s| is_owned_by(s, du.as_ref()))
        .is_some();
    let spec = &du.spec;
    let snapshot = match (
        spec.source_namespace.as_deref().filter(|n| !n.is_empty()),
        spec.csi_snapshot
            .as_ref()
            .and_then(|s| s.volume_snapshot.as_deref())
            .filter(|n| !n.is_empty()),
    ) {
        (Some(ns), Some(vs)) => {
            Api::<VolumeSnapshot>::namespaced(c.clone(), ns)
                .get_opt(vs)
                .await?
        }
        _ => None,
    };
    let mut observed = Observed {
        du: du.as_ref().clone(),
        mover: ctx.settings.datamover_name.clone(),
        now: k8s_openapi::jiff::Timestamp::now(),
        served,
        keys: None,
        snapshot,
        backup,
        secret,
        source_block: false,
    };
    // The location is read only when there is something to make from it.
    let mut keys = None;
    if decide(&observed) == Decision::ReadLocation {
        let location = spec.backup_storage_location.clone().unwrap_or_default();
        let found = location_keys(ctx, &namespace, &location, true).await?;
        observed.source_block = match (
            spec.source_namespace.as_deref().filter(|n| !n.is_empty()),
            spec.source_pvc.as_deref().filter(|n| !n.is_empty()),
        ) {
            (Some(ns), Some(pvc)) => {
                Api::<k8s_openapi::api::core::v1::PersistentVolumeClaim>::namespaced(c.clone(), ns)
                    .get_opt(pvc)
                    .await?
                    .and_then(|claim| claim.spec?.volume_mode)
                    .as_deref()
                    == Some("Block")
            }
            _ => false,
        };
        observed.keys = Some(found.as_ref().map(|_| ()).map_err(Clone::clone));
        keys = found.ok();
    }
    let decision = decide(&observed);
    tracing::debug!(namespace, name, ?decision, "data upload");
    apply(&observed, decision, keys, ctx).await
}

async fn apply(
    observed: &Observed,
    decision: Decision,
    keys: Option<BTreeMap<String, Vec<u8>>>,
    ctx: &Context,
) -> Result<Action, Error> {
    let du = &observed.du;
    let c = &ctx.client;
    let namespace = du.namespace().unwrap_or_default();
    let name = du.name_any();
    let status = du.status.clone().unwrap_or_default();
    match decision {
        Decision::Ignore => Ok(Action::await_change()),
        // Only when the location could not be read at all (the reconcile reads it first).
        Decision::ReadLocation => Ok(Action::requeue(Duration::from_secs(5))),
        Decision::Take => take(ctx, du, &observed.mover).await,
        Decision::CancelUntaken => cancel_untaken(ctx, du).await,
        Decision::Create { secret, backup } => {
            if secret {
                let Some(keys) = keys else {
                    return Ok(Action::requeue(Duration::from_secs(1)));
                };
                let mut object: Secret = serde_json::from_value(json!({
                    "metadata": {"name": secret_name(&name), "namespace": namespace,
                                 "ownerReferences": owned_by(du)},
                    "type": "Opaque",
                }))
                .expect("a valid Secret");
                object.data = Some(
                    keys.into_iter()
                        .map(|(k, v)| (k, k8s_openapi::ByteString(v)))
                        .collect(),
                );
                create(&Api::<Secret>::namespaced(c.clone(), &namespace), &object).await?;
            }
            if backup {
                let content = observed
                    .snapshot
                    .as_ref()
                    .and_then(|s| s.status.as_ref())
                    .and_then(|s| s.bound_volume_snapshot_content_name.clone());
                let object: VolumeSnapshotBackup = serde_json::from_value(json!({
                    "apiVersion": "datamover.oadp.openshift.io/v1alpha1", "kind": "VolumeSnapshotBackup",
                    "metadata": {"name": name, "namespace": namespace, "ownerReferences": owned_by(du)},
                    "spec": {"volumeSnapshotContent": {"name": content}, "protectedNamespace": namespace,
                             "resticSecretRef": {"name": secret_name(&name)}},
                }))
                .expect("a valid VolumeSnapshotBackup");
                create(
                    &Api::<VolumeSnapshotBackup>::namespaced(c.clone(), &namespace),
                    &object,
                )
                .await?;
            }
            Ok(Action::await_change())
        }
        Decision::Wait(why) => {
            tracing::debug!(name, why, "waiting");
            Ok(Action::requeue(Duration::from_secs(5)))
        }
        Decision::Mirror {
            phase,
            progress,
            message,
        } => {
            let same = status.phase.as_ref().and_then(|p| p.known()) == Some(phase)
                && status.progress == progress
                && status.message == message;
            if !same {
                patch_request(
                    ctx,
                    du,
                    json!({"phase": phase.as_str(), "progress": progress, "message": message}),
                    false,
                )
                .await?;
            }
            Ok(Action::await_change())
        }
        Decision::Complete {
            snapshot_id,
            result,
            progress,
        } => {
            let note = format!("the data is in the repository as {snapshot_id}");
            let status = json!({"snapshotID": snapshot_id, "dataMoverResult": result,
                                "progress": progress, "message": "the data is in the repository"});
            complete(ctx, du, "upload", status, note).await
        }
        Decision::Fail(message) => fail(ctx, du, "upload", &message).await,
        Decision::Cancel => {
            canceling(ctx, du).await?;
            delete_opt(
                Api::<VolumeSnapshotBackup>::namespaced(c.clone(), &namespace),
                &name,
            )
            .await?;
            Ok(Action::await_change())
        }
        Decision::CleanUp(left) => {
            for leftover in left {
                match leftover {
                    Leftover::Backup => {
                        delete_opt(
                            Api::<VolumeSnapshotBackup>::namespaced(c.clone(), &namespace),
                            &name,
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
                    Leftover::Snapshot => {
                        if let Some(snapshot) = &observed.snapshot {
                            delete_opt(
                                Api::<VolumeSnapshot>::namespaced(
                                    c.clone(),
                                    &snapshot.namespace().unwrap_or_default(),
                                ),
                                &snapshot.name_any(),
                            )
                            .await?
                        }
                    }
                }
            }
            // The backup's going is watched; the others are checked again shortly.
            Ok(Action::requeue(Duration::from_secs(2)))
        }
        Decision::Canceled => canceled(ctx, du, "upload").await,
    }
}
