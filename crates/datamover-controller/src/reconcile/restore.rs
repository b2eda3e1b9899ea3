//! Reconciling a VolumeSnapshotRestore: fetch what [`decide`] needs, apply its decision.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use lifeline_api::datamover::{BatchingStatus, RestorePhase, VolumeSnapshotRestore};
use lifeline_api::foreign::snapshot::{VolumeSnapshot, VolumeSnapshotClass, VolumeSnapshotContent};
use lifeline_api::foreign::volsync::ReplicationDestination;
use serde_json::json;

use super::backup::{secret_data, volsync_installed};
use super::shared::{complete, fail, first_message, refuse_early, reject, started_message};
use super::shared::{create, delete_working, event, now, patch_status, reconciled, set_finalizer};
use crate::concurrency::{Request, admitted};
use crate::context::Context;
use crate::error::Error;
use crate::names::{Names, RequestKind};
use crate::repository::ResticSecret;
use crate::restore::build::RestoreInputs;
use crate::restore::decide::{Decision, Object, Observed, Working, decide, required_fields};

pub fn names(vsr: &VolumeSnapshotRestore) -> Names {
    Names::new(
        RequestKind::Restore,
        &vsr.namespace().unwrap_or_default(),
        &vsr.name_any(),
    )
}

pub async fn reconcile(
    vsr: Arc<VolumeSnapshotRestore>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let result = reconcile_inner(&vsr, &ctx).await;
    ctx.metrics
        .reconciled("restore", result.as_ref().err().map(Error::category));
    result
}

async fn reconcile_inner(
    vsr: &Arc<VolumeSnapshotRestore>,
    ctx: &Arc<Context>,
) -> Result<Action, Error> {
    let conditions = vsr.status.as_ref().map(|s| &s.conditions);
    let early = ctx
        .settings
        .serves(&vsr.spec.protected_namespace)
        .and_then(|()| required_fields(vsr));
    if let Some(action) = refuse_early(ctx, vsr.as_ref(), early, conditions).await? {
        return Ok(action);
    }
    let observed = observe(vsr, ctx).await?;
    let decision = decide(&observed);
    tracing::debug!(
        namespace = vsr.namespace().unwrap_or_default(),
        name = vsr.name_any(),
        ?decision,
        "restore"
    );
    apply(&observed, decision, ctx).await
}

async fn observe(vsr: &VolumeSnapshotRestore, ctx: &Context) -> Result<Observed, Error> {
    let c = &ctx.client;
    let protected = vsr.spec.protected_namespace.clone();
    let names = names(vsr);
    let destination = Api::<ReplicationDestination>::namespaced(c.clone(), &protected)
        .get_opt(&names.replication_destination())
        .await?;
    let image = destination
        .as_ref()
        .and_then(|d| d.status.as_ref())
        .and_then(|s| s.latest_image.clone());
    let restored = match image.filter(|i| i.kind == "VolumeSnapshot") {
        Some(image) => {
            Api::<VolumeSnapshot>::namespaced(c.clone(), &protected)
                .get_opt(&image.name)
                .await?
        }
        None => None,
    };
    let content_name = restored
        .as_ref()
        .and_then(|s| s.status.as_ref())
        .and_then(|s| s.bound_volume_snapshot_content_name.clone());
    let restored_content = match content_name {
        Some(name) => {
            Api::<VolumeSnapshotContent>::all(c.clone())
                .get_opt(&name)
                .await?
        }
        None => None,
    };
    let class = vsr
        .spec
        .volume_snapshot_mover_backup_ref
        .volume_snapshot_class_name
        .clone();
    let snapshot_class_exists = match class {
        Some(class) => Some(
            Api::<VolumeSnapshotClass>::all(c.clone())
                .get_opt(&class)
                .await?
                .is_some(),
        ),
        None => None,
    };
    // OADP's per-StorageClass ConfigMap, for the backed-up claim's class.
    let class = vsr
        .spec
        .volume_snapshot_mover_backup_ref
        .source_pvc_data
        .as_ref()
        .and_then(|p| p.storage_class_name.clone());
    let storage_config = super::shared::storage_config(ctx, &protected, class).await?;
    Ok(Observed {
        vsr: vsr.clone(),
        storage_config,
        protected_namespace_exists: Api::<Namespace>::all(c.clone())
            .get_opt(&protected)
            .await?
            .is_some(),
        volsync_installed: volsync_installed(ctx, "replicationdestinations").await?,
        snapshot_class_exists,
        user_secret: secret_data(
            ctx,
            &protected,
            vsr.spec.restic_secret_ref.as_ref().map(|r| r.name.as_str()),
        )
        .await?,
        working: Working {
            secret: Api::<Secret>::namespaced(c.clone(), &protected)
                .get_opt(&names.secret())
                .await?
                .is_some(),
            destination,
            restored,
            restored_content,
        },
        admitted: admission(ctx, vsr).await?,
    })
}

async fn admission(ctx: &Context, vsr: &VolumeSnapshotRestore) -> Result<bool, Error> {
    let mut all = Api::<VolumeSnapshotRestore>::all(ctx.client.clone())
        .list(&Default::default())
        .await?
        .items;
    let key = |r: &VolumeSnapshotRestore| {
        format!("{}/{}", r.namespace().unwrap_or_default(), r.name_any())
    };
    if !all.iter().any(|r| key(r) == key(vsr)) {
        all.push(vsr.clone());
    }
    let requests: Vec<Request> = all
        .iter()
        .map(|r| {
            let status = r.status.clone().unwrap_or_default();
            Request {
                key: key(r),
                created: r
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0.to_string())
                    .unwrap_or_default(),
                processing: status.batching() == Some(BatchingStatus::Processing),
                // A phase we never write is another controller's: it holds no slot of ours.
                finished: status.phase.is_some()
                    && status.phase() != Some(RestorePhase::InProgress),
                // Restores write no repository: nothing to hold.
                holding: false,
                exclusive: None,
            }
        })
        .collect();
    ctx.metrics.set_queued(
        "restore",
        requests
            .iter()
            .filter(|r| !r.processing && !r.finished)
            .count(),
    );
    Ok(admitted(&key(vsr), &requests, ctx.max_restores))
}

fn restic(observed: &Observed) -> Result<ResticSecret, Error> {
    let data = observed.user_secret.clone().unwrap_or_default();
    ResticSecret::parse(&data).map_err(|source| {
        let name = observed
            .vsr
            .spec
            .restic_secret_ref
            .as_ref()
            .map(|r| r.name.clone())
            .unwrap_or_default();
        Error::Problem(crate::problem::Problem::SecretInvalid { name, source })
    })
}

async fn apply(observed: &Observed, decision: Decision, ctx: &Context) -> Result<Action, Error> {
    let vsr = &observed.vsr;
    let names = names(vsr);
    let protected = &vsr.spec.protected_namespace;
    let c = &ctx.client;
    match decision {
        Decision::Settled => Ok(Action::await_change()),
        Decision::Reject(problem) => {
            let current = first_message(vsr.status.as_ref().map(|s| &s.conditions));
            reject(ctx, vsr, current, &problem).await
        }
        Decision::Queue => {
            if vsr.status.as_ref().and_then(|s| s.batching()) != Some(BatchingStatus::Queued) {
                patch_status(ctx, vsr, json!({"batchingStatus": "Queued"})).await?;
                event(
                    ctx,
                    vsr,
                    false,
                    "Queued",
                    "waiting for a restore slot".into(),
                )
                .await;
            }
            Ok(Action::requeue(crate::concurrency::QUEUED_RECHECK))
        }
        Decision::Start => {
            set_finalizer(ctx, vsr, true).await?;
            let secret = restic(observed)?;
            patch_status(
                ctx,
                vsr,
                json!({
                    "phase": "InProgress", "batchingStatus": "Processing", "startTimestamp": now(),
                    "conditions": reconciled(true, &started_message("restore started", &secret)),
                }),
            )
            .await?;
            event(
                ctx,
                vsr,
                false,
                "Started",
                "restoring from the repository".into(),
            )
            .await;
            for notice in secret.notices() {
                event(ctx, vsr, true, "SecretKeysIgnored", notice).await;
            }
            Ok(Action::await_change())
        }
        Decision::Create(objects) => {
            let secret = restic(observed)?;
            let side = observed
                .storage_config
                .as_ref()
                .and_then(|(name, data)| crate::storage_config::parse(name, data).ok())
                .map(|c| c.destination);
            let inputs = RestoreInputs {
                vsr,
                secret: &secret,
                names: &names,
                settings: &ctx.settings,
                config: side.as_ref(),
            };
            for object in objects {
                match object {
                    Object::Secret => {
                        create(
                            &Api::<Secret>::namespaced(c.clone(), protected),
                            &inputs.secret(),
                        )
                        .await?
                    }
                    Object::ReplicationDestination => {
                        create(
                            &Api::<ReplicationDestination>::namespaced(c.clone(), protected),
                            &inputs.replication_destination(),
                        )
                        .await?
                    }
                }
            }
            Ok(Action::await_change())
        }
        Decision::Wait(why) => {
            tracing::debug!(name = vsr.name_any(), why, "waiting");
            Ok(Action::await_change())
        }
        Decision::Running => {
            let job = super::progress::job_name(&names.replication_destination(), false);
            let pods = super::progress::mover_pods(ctx, protected, &job).await;
            // VolSync would retry a mover that cannot succeed for about 20 minutes.
            if let Some(lines) = super::progress::hopeless_failure(ctx, protected, &pods).await {
                let message = crate::secret_data::scrubbed(lines, observed.user_secret.as_ref());
                return fail(ctx, vsr, "restore", "RestoreFailed", &message).await;
            }
            let status = vsr.status.as_ref();
            super::progress::report(
                ctx,
                vsr,
                status.and_then(|s| s.progress.as_ref()),
                status.and_then(|s| s.start_timestamp.as_ref()),
                protected,
                &pods,
            )
            .await
        }
        Decision::Done {
            snapshot_handle,
            content,
        } => {
            // The restored data must outlive our snapshot objects: keep it when they go.
            Api::<VolumeSnapshotContent>::all(c.clone())
                .patch(
                    &content,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"deletionPolicy": "Retain"}})),
                )
                .await?;
            let sync = observed
                .working
                .destination
                .as_ref()
                .and_then(|d| d.status.clone())
                .unwrap_or_default()
                .sync;
            let (_, _, finished) = super::progress::at_end(
                sync.latest_mover_status
                    .as_ref()
                    .and_then(|m| m.logs.as_deref()),
                vsr.status.as_ref().and_then(|s| s.start_timestamp.as_ref()),
            );
            patch_status(ctx, vsr, json!({
                "phase": "SnapshotRestoreDone", "snapshotHandle": snapshot_handle, "volumeSnapshotContentName": content,
                "progress": super::progress::with_nulls(&finished),
                "replicationDestinationData": {"name": names.replication_destination(), "startTimestamp": sync.last_sync_start_time, "completionTimestamp": sync.last_sync_time},
            }))
            .await?;
            event(
                ctx,
                vsr,
                false,
                "SnapshotRestoreDone",
                format!("restored into snapshot handle {snapshot_handle}"),
            )
            .await;
            Ok(Action::await_change())
        }
        Decision::Fail(message) => fail(ctx, vsr, "restore", "RestoreFailed", &message).await,
        Decision::CleanUp => {
            if vsr.status.as_ref().and_then(|s| s.phase())
                == Some(RestorePhase::SnapshotRestoreDone)
            {
                patch_status(ctx, vsr, json!({"phase": "Cleanup"})).await?;
            }
            if let Some(restored) = &observed.working.restored {
                let _ = Api::<VolumeSnapshot>::namespaced(c.clone(), protected)
                    .delete(&restored.name_any(), &DeleteParams::background())
                    .await;
            }
            delete_working(ctx, protected, &names).await?;
            Ok(Action::requeue(std::time::Duration::from_secs(1)))
        }
        Decision::Complete => {
            let previous = first_message(vsr.status.as_ref().map(|s| &s.conditions));
            complete(ctx, vsr, "restore", previous, None).await
        }
        Decision::Release => {
            set_finalizer(ctx, vsr, false).await?;
            Ok(Action::await_change())
        }
    }
}
