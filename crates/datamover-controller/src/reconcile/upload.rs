//! Reconciling a Velero DataUpload: fetch what [`decide`] needs, apply its decision.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use lifeline_api::datamover::VolumeSnapshotBackup;
use lifeline_api::foreign::snapshot::VolumeSnapshot;
use lifeline_api::foreign::velero::{BackupStorageLocation, DataUpload};
use serde_json::{Value, json};

use super::shared::{create, event, now};
use crate::context::{Context, FIELD_MANAGER};
use crate::error::Error;
use crate::velero::download::build::{owned_by, secret_name};
use crate::velero::location::{self, Inputs, Secrets};
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

fn is_owned_by<K: Resource<DynamicType = ()>>(object: &impl Resource, request: &K) -> bool {
    object
        .meta()
        .owner_references
        .iter()
        .flatten()
        .any(|r| Some(&r.uid) == request.meta().uid.as_ref())
}

/// The location's restic keys, from the BackupStorageLocation, the mover's ConfigMap and the
/// Secrets they name (all in the request's namespace).
pub async fn location_keys(
    ctx: &Context,
    namespace: &str,
    location_name: &str,
    writes: bool,
) -> Result<Result<BTreeMap<String, Vec<u8>>, location::LocationError>, Error> {
    let c = &ctx.client;
    let bsl = Api::<BackupStorageLocation>::namespaced(c.clone(), namespace)
        .get_opt(location_name)
        .await?;
    let config = Api::<ConfigMap>::namespaced(c.clone(), namespace)
        .get_opt(&ctx.settings.datamover_name)
        .await?
        .map(|cm| cm.data.unwrap_or_default());
    let mut secrets = Secrets::new();
    for name in location::secrets_named(bsl.as_ref(), config.as_ref()) {
        if let Some(data) = super::backup::secret_data(ctx, namespace, Some(&name)).await? {
            secrets.insert(name, data.0);
        }
    }
    let keys = location::restic_keys(&Inputs {
        name: location_name,
        bsl: bsl.as_ref(),
        mover: &ctx.settings.datamover_name,
        config: config.as_ref(),
        secrets: &secrets,
        writes,
    });
    // What the pipeline will check, checked now: the request fails naming the location.
    Ok(
        keys.and_then(|keys| match crate::repository::ResticSecret::parse(&keys) {
            Ok(_) => Ok(keys),
            Err(error) => Err(location::LocationError::Field {
                location: location_name.to_owned(),
                field: "spec",
                problem: format!("gives restic settings the mover cannot use: {error}"),
            }),
        }),
    )
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

/// A merge patch of a Velero request (its status is no subresource). With `guarded`, only if
/// nobody changed it since it was read: two replicas never both take one.
pub async fn patch_request<K>(
    ctx: &Context,
    request: &K,
    status: Value,
    guarded: bool,
) -> Result<bool, Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api = Api::<K>::namespaced(
        ctx.client.clone(),
        request.meta().namespace.as_deref().unwrap_or_default(),
    );
    let mut patch = json!({"status": status});
    if guarded {
        patch["metadata"] = json!({"resourceVersion": request.meta().resource_version});
    }
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    match api
        .patch(&request.name_any(), &params, &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if guarded && s.code == 409 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Deletes `name` if it is there.
pub async fn delete_opt<K>(api: Api<K>, name: &str) -> Result<(), Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
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
        Decision::Take => {
            let at = now();
            let taken = patch_request(
                ctx,
                du,
                json!({"phase": "Accepted", "acceptedTimestamp": at, "startTimestamp": at,
                       "message": format!("accepted by data mover {:?}", observed.mover)}),
                true,
            )
            .await?;
            if taken {
                event(
                    ctx,
                    du,
                    false,
                    "Accepted",
                    "taken by Lifeline's data mover".into(),
                )
                .await;
            }
            // Not taken: someone changed it first; the watch brings it back as it is now.
            Ok(Action::await_change())
        }
        Decision::CancelUntaken => {
            patch_request(
                ctx,
                du,
                json!({"phase": "Canceled", "completionTimestamp": now(),
                       "message": "canceled before any data moved"}),
                true,
            )
            .await?;
            Ok(Action::await_change())
        }
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
            patch_request(
                ctx,
                du,
                json!({"phase": "Completed", "completionTimestamp": now(), "snapshotID": snapshot_id,
                       "dataMoverResult": result, "progress": progress,
                       "message": "the data is in the repository"}),
                false,
            )
            .await?;
            ctx.metrics
                .finished("upload", "Completed", super::shared::took(du));
            event(
                ctx,
                du,
                false,
                "Completed",
                format!("the data is in the repository as {snapshot_id}"),
            )
            .await;
            Ok(Action::requeue(Duration::from_secs(1)))
        }
        Decision::Fail(message) => {
            patch_request(
                ctx,
                du,
                json!({"phase": "Failed", "completionTimestamp": now(), "message": message}),
                false,
            )
            .await?;
            ctx.metrics
                .finished("upload", "Failed", super::shared::took(du));
            event(ctx, du, true, "Failed", message).await;
            Ok(Action::requeue(Duration::from_secs(1)))
        }
        Decision::Cancel => {
            patch_request(
                ctx,
                du,
                json!({"phase": "Canceling", "message": "canceling: stopping the mover and removing what was made"}),
                false,
            )
            .await?;
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
        Decision::Canceled => {
            patch_request(
                ctx,
                du,
                json!({"phase": "Canceled", "completionTimestamp": now(),
                       "message": "canceled; everything made for the transfer is removed"}),
                false,
            )
            .await?;
            ctx.metrics
                .finished("upload", "Canceled", super::shared::took(du));
            event(ctx, du, false, "Canceled", "canceled".into()).await;
            Ok(Action::await_change())
        }
    }
}
