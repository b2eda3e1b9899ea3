//! Reconciling a VolumeSnapshotBackup: fetch what [`decide`] needs, apply its decision.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use lifeline_api::datamover::{BackupPhase, BatchingStatus, VolumeSnapshotBackup, annotations};
use lifeline_api::foreign::snapshot::{VolumeSnapshot, VolumeSnapshotClass, VolumeSnapshotContent};
use lifeline_api::foreign::volsync::ReplicationSource;
use serde_json::json;

use super::shared::{complete, fail, first_message, refuse_early, reject, started_message};
use super::shared::{
    create, delete_working, event, now, patch_metadata, patch_status, reconciled, set_finalizer,
};
use crate::backup::build::BackupInputs;
use crate::backup::decide::{
    Decision, Object, Observed, Working, decide, required_fields, restore_as_of,
};
use crate::concurrency::{Request, admitted, recheck_after};
use crate::context::Context;
use crate::error::Error;
use crate::names::{Names, RequestKind};
use crate::repository::ResticSecret;
use crate::restore::build::RESTORE_AS_OF;

pub fn names(vsb: &VolumeSnapshotBackup) -> Names {
    Names::new(
        RequestKind::Backup,
        &vsb.namespace().unwrap_or_default(),
        &vsb.name_any(),
    )
}

pub async fn reconcile(vsb: Arc<VolumeSnapshotBackup>, ctx: Arc<Context>) -> Result<Action, Error> {
    let result = reconcile_inner(&vsb, &ctx).await;
    ctx.metrics
        .reconciled("backup", result.as_ref().err().map(Error::category));
    result
}

async fn reconcile_inner(
    vsb: &Arc<VolumeSnapshotBackup>,
    ctx: &Arc<Context>,
) -> Result<Action, Error> {
    let conditions = vsb.status.as_ref().map(|s| &s.conditions);
    let early = ctx
        .settings
        .serves(&vsb.spec.protected_namespace)
        .and_then(|()| required_fields(vsb));
    if let Some(action) = refuse_early(ctx, vsb.as_ref(), early, conditions).await? {
        return Ok(action);
    }
    let observed = observe(vsb, ctx).await?;
    let decision = decide(&observed);
    tracing::debug!(
        namespace = vsb.namespace().unwrap_or_default(),
        name = vsb.name_any(),
        ?decision,
        "backup"
    );
    apply(&observed, decision, ctx).await
}

/// The claim a snapshot content was taken of: content → its VolumeSnapshot → the claim.
async fn source_claim(
    ctx: &Context,
    content: &VolumeSnapshotContent,
) -> Result<Option<PersistentVolumeClaim>, Error> {
    let reference = &content.spec.volume_snapshot_ref;
    let (Some(namespace), Some(name)) = (&reference.namespace, &reference.name) else {
        return Ok(None);
    };
    let Some(snapshot) = Api::<VolumeSnapshot>::namespaced(ctx.client.clone(), namespace)
        .get_opt(name)
        .await?
    else {
        return Ok(None);
    };
    let Some(claim) = snapshot.spec.source.persistent_volume_claim_name else {
        return Ok(None);
    };
    Ok(
        Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), namespace)
            .get_opt(&claim)
            .await?,
    )
}

pub async fn secret_data(
    ctx: &Context,
    namespace: &str,
    name: Option<&str>,
) -> Result<Option<crate::secret_data::SecretData>, Error> {
    let Some(name) = name else { return Ok(None) };
    let Some(secret) = Api::<Secret>::namespaced(ctx.client.clone(), namespace)
        .get_opt(name)
        .await?
    else {
        return Ok(None);
    };
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    for (k, v) in secret.string_data.unwrap_or_default() {
        data.insert(k, v.into_bytes());
    }
    Ok(Some(crate::secret_data::SecretData(data)))
}

pub async fn volsync_installed(ctx: &Context, plural: &str) -> Result<bool, Error> {
    let name = format!("{plural}.volsync.backube");
    Ok(Api::<CustomResourceDefinition>::all(ctx.client.clone())
        .get_opt(&name)
        .await?
        .is_some())
}

async fn observe(vsb: &VolumeSnapshotBackup, ctx: &Context) -> Result<Observed, Error> {
    let c = &ctx.client;
    let protected = vsb.spec.protected_namespace.clone();
    let names = names(vsb);
    let content_name = vsb
        .spec
        .volume_snapshot_content
        .name
        .clone()
        .unwrap_or_default();
    let source_content = Api::<VolumeSnapshotContent>::all(c.clone())
        .get_opt(&content_name)
        .await?;
    let (source_pvc, snapshot_class_exists) = match &source_content {
        Some(content) => {
            let class = match &content.spec.volume_snapshot_class_name {
                Some(class) => Some(
                    Api::<VolumeSnapshotClass>::all(c.clone())
                        .get_opt(class)
                        .await?
                        .is_some(),
                ),
                None => None,
            };
            (source_claim(ctx, content).await?, class)
        }
        None => (None, None),
    };
    let protected_namespace_exists = Api::<Namespace>::all(c.clone())
        .get_opt(&protected)
        .await?
        .is_some();
    let working = Working {
        content: Api::<VolumeSnapshotContent>::all(c.clone())
            .get_opt(&names.content())
            .await?
            .is_some(),
        snapshot: Api::<VolumeSnapshot>::namespaced(c.clone(), &protected)
            .get_opt(&names.snapshot())
            .await?
            .is_some(),
        pvc: Api::<PersistentVolumeClaim>::namespaced(c.clone(), &protected)
            .get_opt(&names.pvc())
            .await?
            .is_some(),
        secret: Api::<Secret>::namespaced(c.clone(), &protected)
            .get_opt(&names.secret())
            .await?
            .is_some(),
        source: Api::<ReplicationSource>::namespaced(c.clone(), &protected)
            .get_opt(&names.replication_source())
            .await?,
    };
    // OADP's per-StorageClass ConfigMap, for the source claim's class.
    let class = source_pvc
        .as_ref()
        .and_then(|p| p.spec.as_ref())
        .and_then(|s| s.storage_class_name.clone());
    let storage_config = super::shared::storage_config(ctx, &protected, class).await?;
    let exclusive = source_pvc
        .as_ref()
        .map(|p| format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any()));
    let (admitted, queued_recheck) = admission(ctx, vsb, exclusive).await?;
    Ok(Observed {
        vsb: vsb.clone(),
        protected_namespace_exists,
        volsync_installed: volsync_installed(ctx, "replicationsources").await?,
        source_content,
        source_pvc,
        snapshot_class_exists,
        storage_config,
        user_secret: secret_data(
            ctx,
            &protected,
            vsb.spec.restic_secret_ref.as_ref().map(|r| r.name.as_str()),
        )
        .await?,
        working,
        admitted,
        queued_recheck,
    })
}

/// Counts from the cluster: every VSB, with its source volume from the annotation the
/// controller sets when it first looks at one. Also says when a queued backup should look
/// again: as soon as the previous backup of its volume reaches its point in time.
async fn admission(
    ctx: &Context,
    vsb: &VolumeSnapshotBackup,
    exclusive: Option<String>,
) -> Result<(bool, Duration), Error> {
    let now = Timestamp::now();
    let all = Api::<VolumeSnapshotBackup>::all(ctx.client.clone())
        .list(&Default::default())
        .await?
        .items;
    let key = |b: &VolumeSnapshotBackup| {
        format!("{}/{}", b.namespace().unwrap_or_default(), b.name_any())
    };
    let mut all = all;
    if !all.iter().any(|b| key(b) == key(vsb)) {
        all.push(vsb.clone());
    }
    let requests: Vec<Request> = all
        .iter()
        .map(|b| {
            let status = b.status.clone().unwrap_or_default();
            let volume = if key(b) == key(vsb) {
                exclusive.clone()
            } else {
                b.annotations()
                    .get(annotations::SOURCE_PVC_NAME)
                    .map(|n| format!("{}/{n}", b.namespace().unwrap_or_default()))
            };
            Request {
                key: key(b),
                created: b
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0.to_string())
                    .unwrap_or_default(),
                processing: status.batching() == Some(BatchingStatus::Processing),
                // A phase we never write is another controller's: it holds no slot of ours.
                finished: status.phase.is_some()
                    && !matches!(
                        status.phase(),
                        Some(
                            BackupPhase::InProgress
                                | BackupPhase::SnapshotBackupDone
                                | BackupPhase::Cleanup
                        )
                    ),
                holding: holds_until(b).is_some_and(|until| until > now),
                exclusive: volume,
            }
        })
        .collect();
    ctx.metrics.set_queued(
        "backup",
        requests
            .iter()
            .filter(|r| !r.processing && !r.finished)
            .count(),
    );
    let admitted = admitted(&key(vsb), &requests, ctx.max_backups);
    // Waiting only for a point in time to pass: look again right after it.
    let holds_left = all
        .iter()
        .zip(&requests)
        .filter(|(_, r)| r.holding && r.exclusive.is_some() && r.exclusive == exclusive)
        .filter_map(|(b, _)| holds_until(b))
        .filter_map(|until| Duration::try_from(until.duration_since(now)).ok());
    Ok((admitted, recheck_after(holds_left)))
}

/// A backup's point in time (annotation `restore-as-of`), until which it holds its volume.
fn holds_until(vsb: &VolumeSnapshotBackup) -> Option<Timestamp> {
    vsb.annotations().get(RESTORE_AS_OF)?.parse().ok()
}

async fn apply(observed: &Observed, decision: Decision, ctx: &Context) -> Result<Action, Error> {
    let vsb = &observed.vsb;
    let names = names(vsb);
    let protected = &vsb.spec.protected_namespace;
    match decision {
        Decision::Settled => Ok(Action::await_change()),
        Decision::Reject(problem) => {
            let current = first_message(vsb.status.as_ref().map(|s| &s.conditions));
            reject(ctx, vsb, current, &problem).await
        }
        Decision::Queue => {
            // Record the source volume so other requests' admission can see it.
            if let Some(pvc) = &observed.source_pvc
                && !vsb.annotations().contains_key(annotations::SOURCE_PVC_NAME)
            {
                patch_metadata(
                    ctx,
                    vsb,
                    json!({"annotations": {annotations::SOURCE_PVC_NAME: pvc.name_any()}}),
                )
                .await?;
            }
            if vsb.status.as_ref().and_then(|s| s.batching()) != Some(BatchingStatus::Queued) {
                patch_status(ctx, vsb, json!({"batchingStatus": "Queued"})).await?;
                event(
                    ctx,
                    vsb,
                    false,
                    "Queued",
                    "waiting for a backup slot".into(),
                )
                .await;
            }
            Ok(Action::requeue(observed.queued_recheck))
        }
        Decision::Start => {
            set_finalizer(ctx, vsb, true).await?;
            let secret = restic(observed)?;
            let inputs = inputs(observed, &names, &secret, ctx, None, None)?;
            let pvc = inputs.source_pvc;
            let size = pvc
                .spec
                .as_ref()
                .and_then(|s| s.resources.as_ref())
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("storage"))
                .map(|q| q.0.clone());
            patch_metadata(
                ctx,
                vsb,
                json!({"annotations": {annotations::SOURCE_PVC_NAME: pvc.name_any()}}),
            )
            .await?;
            patch_status(ctx, vsb, json!({
                "phase": "InProgress", "batchingStatus": "Processing", "startTimestamp": now(),
                "sourcePVCData": {"name": pvc.name_any(), "size": size, "storageClassName": pvc.spec.as_ref().and_then(|s| s.storage_class_name.clone())},
                "resticrepository": crate::repository_scope::shown(&inputs.repository()),
                "volumeSnapshotClassName": inputs.snapshot_class(),
                "conditions": reconciled(true, &started_message("backup started", &secret)),
            }))
            .await?;
            event(
                ctx,
                vsb,
                false,
                "Started",
                format!("backing up {} to its repository", pvc.name_any()),
            )
            .await;
            for notice in secret.notices() {
                event(ctx, vsb, true, "SecretKeysIgnored", notice).await;
            }
            Ok(Action::await_change())
        }
        Decision::Create(objects) => {
            let secret = restic(observed)?;
            let side = source_side(observed);
            let context = match (&side, &observed.source_pvc) {
                (Some(side), Some(pvc)) if side.mover_security_context => {
                    let found = workload_context(ctx, pvc).await?;
                    let current = first_message(vsb.status.as_ref().map(|s| &s.conditions));
                    let notice = no_workload_pod(&pvc.name_any());
                    if found.is_none() && !current.is_some_and(|m| m.contains(&notice)) {
                        // In the status (kept into Completed) and as an Event.
                        let message = format!("{}; {notice}", current.unwrap_or("backup started"));
                        patch_status(ctx, vsb, json!({"conditions": reconciled(true, &message)}))
                            .await?;
                        event(ctx, vsb, true, "NoWorkloadPod", notice).await;
                    }
                    found
                }
                _ => None,
            };
            let inputs = inputs(
                observed,
                &names,
                &secret,
                ctx,
                side.as_ref(),
                context.as_ref(),
            )?;
            let c = &ctx.client;
            for object in objects {
                match object {
                    Object::Content => {
                        create(
                            &Api::<VolumeSnapshotContent>::all(c.clone()),
                            &inputs.content(),
                        )
                        .await?
                    }
                    Object::Snapshot => {
                        create(
                            &Api::<VolumeSnapshot>::namespaced(c.clone(), protected),
                            &inputs.snapshot(),
                        )
                        .await?
                    }
                    Object::Pvc => {
                        create(
                            &Api::<PersistentVolumeClaim>::namespaced(c.clone(), protected),
                            &inputs.pvc(),
                        )
                        .await?
                    }
                    Object::Secret => {
                        create(
                            &Api::<Secret>::namespaced(c.clone(), protected),
                            &inputs.secret(),
                        )
                        .await?
                    }
                    Object::ReplicationSource => {
                        create(
                            &Api::<ReplicationSource>::namespaced(c.clone(), protected),
                            &inputs.replication_source(),
                        )
                        .await?
                    }
                }
            }
            Ok(Action::await_change())
        }
        Decision::Wait(why) => {
            tracing::debug!(name = vsb.name_any(), why, "waiting");
            Ok(Action::await_change())
        }
        Decision::Running => {
            let job = super::progress::job_name(&names.replication_source(), true);
            let pods = super::progress::mover_pods(ctx, protected, &job).await;
            // VolSync would retry a mover that cannot succeed for about 20 minutes.
            if let Some(lines) = super::progress::hopeless_failure(ctx, protected, &pods).await {
                let message = crate::secret_data::scrubbed(lines, observed.user_secret.as_ref());
                return fail(ctx, vsb, "backup", "BackupFailed", &message).await;
            }
            let status = vsb.status.as_ref();
            super::progress::report(
                ctx,
                vsb,
                status.and_then(|s| s.progress.as_ref()),
                status.and_then(|s| s.start_timestamp.as_ref()),
                protected,
                &pods,
            )
            .await
        }
        Decision::Done => {
            let logs = observed
                .working
                .source
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .and_then(|s| s.sync.latest_mover_status.as_ref())
                .and_then(|m| m.logs.clone());
            let (totals, elapsed, finished) = super::progress::at_end(
                logs.as_deref(),
                vsb.status.as_ref().and_then(|s| s.start_timestamp.as_ref()),
            );
            if let Some(bytes) = totals.bytes_added {
                ctx.metrics.bytes_added("backup", bytes);
            }
            let source = observed
                .working
                .source
                .as_ref()
                .and_then(|s| s.status.clone())
                .unwrap_or_default()
                .sync;
            let status = vsb.status.clone().unwrap_or_default();
            let pvc = status.source_pvc_data.clone().unwrap_or_default();
            // The facts again as annotations, for backup tools that drop status.
            patch_metadata(
                ctx,
                vsb,
                json!({"annotations": {
                    annotations::RESTIC_REPOSITORY: status.restic_repository,
                    annotations::SOURCE_PVC_NAME: pvc.name,
                    annotations::SOURCE_PVC_SIZE: pvc.size,
                    annotations::SOURCE_PVC_STORAGECLASS: pvc.storage_class_name,
                    annotations::SOURCE_PVC_VOLUMESNAPSHOTCLASS: status.volume_snapshot_class_name,
                    RESTORE_AS_OF: observed.working.source.as_ref().and_then(restore_as_of).map(|t| t.to_string()),
                    crate::velero::upload::RESTIC_SNAPSHOT_ID: logs.as_deref().and_then(crate::progress::saved_snapshot),
                }}),
            )
            .await?;
            patch_status(ctx, vsb, json!({
                "phase": "SnapshotBackupDone",
                "progress": super::progress::with_nulls(&finished),
                "replicationSourceData": {"name": names.replication_source(), "startTimestamp": source.last_sync_start_time, "completionTimestamp": source.last_sync_time},
            }))
            .await?;
            event(
                ctx,
                vsb,
                false,
                "SnapshotBackupDone",
                format!(
                    "the data is in the repository: {}; cleaning up",
                    crate::progress::completion_message(totals, elapsed)
                ),
            )
            .await;
            Ok(Action::await_change())
        }
        Decision::Fail(message) => fail(ctx, vsb, "backup", "BackupFailed", &message).await,
        Decision::CleanUp => {
            if vsb.status.as_ref().and_then(|s| s.phase()) == Some(BackupPhase::SnapshotBackupDone)
            {
                patch_status(ctx, vsb, json!({"phase": "Cleanup"})).await?;
            }
            delete_working(ctx, protected, &names).await?;
            Ok(Action::requeue(std::time::Duration::from_secs(1)))
        }
        Decision::Complete => {
            let previous = first_message(vsb.status.as_ref().map(|s| &s.conditions));
            // The mover's totals, kept in `status.progress` when it finished.
            let status = vsb.status.as_ref();
            let detail = status
                .and_then(|s| s.progress.as_ref())
                .filter(|p| {
                    p.phase.as_ref().and_then(|p| p.known())
                        == Some(lifeline_api::datamover::MoverPhase::Done)
                })
                .map(|p| {
                    crate::progress::completed_message(
                        p,
                        super::progress::elapsed(
                            status.and_then(|s| s.start_timestamp.as_ref()),
                            Timestamp::now(),
                        ),
                    )
                });
            complete(ctx, vsb, "backup", previous, detail).await
        }
        Decision::Release => {
            set_finalizer(ctx, vsb, false).await?;
            Ok(Action::await_change())
        }
    }
}

/// The user Secret, checked (`decide` only creates objects once it parses).
fn restic(observed: &Observed) -> Result<ResticSecret, Error> {
    let data = observed.user_secret.clone().unwrap_or_default();
    ResticSecret::parse(&data).map_err(|source| {
        let name = observed
            .vsb
            .spec
            .restic_secret_ref
            .as_ref()
            .map(|r| r.name.clone())
            .unwrap_or_default();
        Error::Problem(crate::problem::Problem::SecretInvalid { name, source })
    })
}

fn inputs<'a>(
    observed: &'a Observed,
    names: &'a Names,
    secret: &'a ResticSecret,
    ctx: &'a Context,
    config: Option<&'a crate::storage_config::Side>,
    mover_context: Option<&'a k8s_openapi::api::core::v1::PodSecurityContext>,
) -> Result<BackupInputs<'a>, Error> {
    let missing =
        |what: &str| Error::Problem(crate::problem::Problem::SourceClaimUnknown(what.to_owned()));
    Ok(BackupInputs {
        vsb: &observed.vsb,
        source_content: observed
            .source_content
            .as_ref()
            .ok_or_else(|| missing("content"))?,
        source_pvc: observed
            .source_pvc
            .as_ref()
            .ok_or_else(|| missing("claim"))?,
        secret,
        names,
        settings: &ctx.settings,
        config,
        mover_context,
    })
}

/// What the status and the Event say when OADP's ConfigMap asks for the workload's security
/// context and no Pod mounts the claim.
pub fn no_workload_pod(claim: &str) -> String {
    format!(
        "SourceMoverSecurityContext is \"true\" but no Pod mounts {claim}: the mover runs without the workload's security context"
    )
}

/// The source side of the ConfigMap (validated by `decide`).
fn source_side(observed: &Observed) -> Option<crate::storage_config::Side> {
    let (name, data) = observed.storage_config.as_ref()?;
    crate::storage_config::parse(name, data)
        .ok()
        .map(|c| c.source)
}

/// The security context of a running Pod that mounts the source claim: what the mover runs
/// with when the ConfigMap says `SourceMoverSecurityContext: "true"`.
async fn workload_context(
    ctx: &Context,
    pvc: &PersistentVolumeClaim,
) -> Result<Option<k8s_openapi::api::core::v1::PodSecurityContext>, Error> {
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &pvc.namespace().unwrap_or_default())
        .list(&Default::default())
        .await?;
    Ok(pods.items.into_iter().find_map(|pod| {
        let spec = pod.spec?;
        let mounts = spec.volumes.iter().flatten().any(|v| {
            v.persistent_volume_claim
                .as_ref()
                .is_some_and(|c| c.claim_name == pvc.name_any())
        });
        mounts.then(|| spec.security_context.unwrap_or_default())
    }))
}
