//! One reconcile of a VolumeReplication, as a pipeline: fetch what it refers to → validate
//! (pure, [`crate::validate`]) → plan (pure, [`crate::plan`]) → call the driver
//! ([`crate::act`]) → build the status (pure, [`crate::status`]) → write it with one field
//! manager, only if it changed → Events. Deletion runs [`cleanup`] instead.

use crate::caches::{cached_or_get, volume_or_get};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use lifeline_api::condition::find_condition;
use lifeline_api::replication::{
    ConditionType, DataSourceKind, ReplicationState, SchedulingInterval, SecretRef, VR_FINALIZER,
    VolumeGroupReplication, VolumeGroupReplicationContent, VolumeReplication,
    VolumeReplicationClass, VolumeReplicationStatus,
};
use lifeline_csi_client::{ErrorClass, ReplicationRequest, Target as CsiTarget};
use serde_json::json;

use crate::FIELD_MANAGER;
use crate::act::{Reads, act};
use crate::context::Context;
use crate::deletion::{self, Verdict};
use crate::drivers::Driver;
use crate::error::{Error, Retry};
use crate::events::{Note, notes};
use crate::metrics::{Role, SyncFacts};
use crate::outcome::{InfoOutcome, Operation, Outcome};
use crate::plan::plan;
use crate::protection::{claim_pvc, release_pvc, set_vr_finalizer};
use crate::requeue::{delay, random_unit};
use crate::status::{next_status, worth_writing};
use crate::validate;

/// Everything needed to call the driver for one VolumeReplication.
struct Resolved {
    /// The claim it replicates (none for a group: its VolumeGroupReplication protects those).
    pvc: Option<PersistentVolumeClaim>,
    provisioner: String,
    driver: Arc<Driver>,
    request: ReplicationRequest,
    /// How often replication info is refreshed.
    refresh: Duration,
    /// The scheduling interval used in the RPO bound.
    interval: Duration,
    destination_capable: bool,
    /// The class's Secret, if it names one.
    secret: Option<SecretRef>,
}

/// Reconciles one VolumeReplication; the entry point for kube-runtime's `Controller`.
pub async fn reconcile(vr: Arc<VolumeReplication>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&vr, &ctx).await;
    let category = result.as_ref().err().map(Error::category);
    ctx.metrics
        .reconciled(started.elapsed(), category.as_deref());
    if result.is_ok() {
        ctx.succeeded(&uid(&vr));
    }
    result
}

/// Requeues a failed reconcile: retryable errors back off with jitter, errors that need a
/// change of input wait for it (a watch event) and are checked again rarely.
pub fn error_policy(vr: Arc<VolumeReplication>, error: &Error, ctx: Arc<Context>) -> Action {
    Action::requeue(retry_after(&vr, error, &ctx))
}

/// The delay [`error_policy`] requeues with; counts the failure for the next backoff step.
pub fn retry_after(vr: &VolumeReplication, error: &Error, ctx: &Context) -> Duration {
    failure_delay(vr, &uid(vr), error, ctx)
}

/// How long after `error` the object (failures counted under `key`) is reconciled again, and
/// the warning that says so; shared by every kind this controller reconciles.
pub(crate) fn failure_delay<K: Resource<DynamicType = ()>>(
    object: &K,
    key: &str,
    error: &Error,
    ctx: &Context,
) -> Duration {
    let retry = error.retry();
    let attempt = match retry {
        Retry::Backoff => ctx.failed(key),
        Retry::AfterChange => 0,
    };
    let after = delay(retry, attempt, random_unit());
    tracing::warn!(
        kind = %K::kind(&()),
        namespace = object.namespace().unwrap_or_default(),
        name = object.name_any(),
        category = error.category(),
        retry_in_ms = after.as_millis() as u64,
        %error,
        "reconcile failed"
    );
    after
}

fn uid(vr: &VolumeReplication) -> String {
    vr.uid()
        .unwrap_or_else(|| format!("{}/{}", vr.namespace().unwrap_or_default(), vr.name_any()))
}

async fn reconcile_inner(vr: &VolumeReplication, ctx: &Context) -> Result<Action, Error> {
    let namespace = vr.namespace().unwrap_or_default();
    let class = cached_or_get(
        ctx.caches().map(|c| &c.classes),
        &Api::<VolumeReplicationClass>::all(ctx.client.clone()),
        None,
        &vr.spec.volume_replication_class,
    )
    .await?;
    // In sidecar mode other drivers' VolumeReplications belong to other controllers.
    if let Some(class) = &class
        && !ctx.drivers.serves(&class.spec.provisioner)
    {
        return Ok(Action::await_change());
    }
    if vr.metadata.deletion_timestamp.is_some() {
        return cleanup(vr, class.as_ref(), ctx).await;
    }
    let vrs = Api::<VolumeReplication>::namespaced(ctx.client.clone(), &namespace);
    set_vr_finalizer(&vrs, vr, true).await?;

    let resolved = match resolve(vr, class.as_ref(), ctx).await {
        Ok(resolved) => resolved,
        Err(Error::Invalid(e)) => {
            reject(vr, ctx, e.event_reason(), e.to_string()).await?;
            return Err(e.into());
        }
        Err(Error::Driver(e)) => {
            reject(vr, ctx, e.event_reason(), e.to_string()).await?;
            return Err(e.into());
        }
        Err(e) => return Err(e),
    };
    if let Some(pvc) = &resolved.pvc {
        let pvcs = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &namespace);
        claim_pvc(&pvcs, pvc, &vr.name_any()).await?;
    }

    let uid = uid(vr);
    let (info_due, info_wait) = ctx.info_due(&uid, &resolved.provisioner);
    let plan = plan(vr, info_due);
    let status = vr.status.clone().unwrap_or_default();
    let reads = Reads {
        info: !ctx.is_info_unimplemented(&resolved.provisioner),
        destination: resolved.destination_capable
            && vr.spec.replication_state == ReplicationState::Primary
            && find_condition(
                &status.conditions,
                ConditionType::DestinationInfoAvailable.as_str(),
            )
            .is_none_or(|c| c.status != "True"),
    };
    tracing::debug!(namespace, name = vr.name_any(), ?plan, "plan");
    let outcome = act(plan, &resolved.driver.client, &resolved.request, reads).await;

    match &outcome.info {
        Some(InfoOutcome::Unimplemented) => ctx.info_unimplemented(&resolved.provisioner),
        Some(info) => ctx.info_refreshed(&uid, next_refresh(info, resolved.refresh)),
        None => {}
    }
    let mut new = next_status(vr, &outcome, Timestamp::now());
    if !worth_writing(&status, &new, resolved.refresh) {
        // Only the sync facts moved, by no more than one refresh period: the metrics carry the
        // fresh values; the status catches up when they move further or anything else changes.
        new = status.clone();
    }
    record_state(vr, ctx, &new);
    finish(vr, ctx, &status, new, &outcome).await?;
    record_sync(vr, ctx, &outcome, &resolved);

    if let Some(error) = outcome.operation.error() {
        if error.refused_credentials()
            && let Some(r) = &resolved.secret
        {
            // The driver refused the credentials: the retry reads the Secret afresh.
            ctx.secrets.forget(&r.namespace, &r.name);
        }
        return Err(error.clone().into());
    }
    let not_ready = matches!(
        outcome.operation,
        Operation::Demoted {
            resync: Ok(false),
            ..
        } | Operation::Resynced(Ok(false))
    );
    Ok(if not_ready {
        Action::requeue(ctx.settings.resync_poll_interval)
    } else if !ctx.is_info_unimplemented(&resolved.provisioner) {
        // Primaries and ready secondaries alike: their sync facts are refreshed on schedule.
        let wait = if let Some(info) = &outcome.info {
            next_refresh(info, resolved.refresh)
        } else {
            info_wait.unwrap_or(resolved.refresh)
        };
        Action::requeue(wait)
    } else {
        Action::await_change()
    })
}

/// How soon to ask for replication info again: at the refresh interval, but soon while the
/// driver has none yet (right after promotion), so sync facts and the RPO gauges appear without
/// waiting a whole interval.
fn next_refresh(info: &InfoOutcome, refresh: Duration) -> Duration {
    match info {
        InfoOutcome::NotYet => refresh.min(NO_INFO_YET_RETRY),
        _ => refresh,
    }
}

/// How soon a driver that had no replication info yet is asked again.
pub const NO_INFO_YET_RETRY: Duration = Duration::from_secs(10);

/// Fetches and validates what the VolumeReplication refers to, and reaches its driver.
async fn resolve(
    vr: &VolumeReplication,
    class: Option<&VolumeReplicationClass>,
    ctx: &Context,
) -> Result<Resolved, Error> {
    let namespace = vr.namespace().unwrap_or_default();
    let source = validate::data_source(vr)?;
    let class = validate::class(vr, class)?;
    let (target, pvc) = match source {
        validate::Source::Claim(claim_name) => {
            let pvc = cached_or_get(
                ctx.caches().map(|c| &c.claims),
                &Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &namespace),
                Some(&namespace),
                &claim_name,
            )
            .await?;
            let pv_name = validate::claim(vr, &claim_name, pvc.as_ref())?;
            let pv = volume_or_get(
                ctx.caches().map(|c| c.volumes.as_ref()),
                &Api::<PersistentVolume>::all(ctx.client.clone()),
                &pv_name,
            )
            .await?;
            let volume_id = validate::volume(&pv_name, pv.as_ref(), &class)?;
            (CsiTarget::Volume(volume_id), pvc)
        }
        validate::Source::Group(group_name) => {
            let vgr = Api::<VolumeGroupReplication>::namespaced(ctx.client.clone(), &namespace)
                .get_opt(&group_name)
                .await?;
            let content_name = validate::group(vr, &group_name, vgr.as_ref())?;
            let content = Api::<VolumeGroupReplicationContent>::all(ctx.client.clone())
                .get_opt(&content_name)
                .await?;
            let handle = validate::group_handle(vr, &group_name, content.as_ref(), &class)?;
            (CsiTarget::VolumeGroup(handle), None)
        }
    };
    let secret_ref = class.parameters.secret.as_ref();
    let secret = match secret_ref {
        Some(r) => ctx.secrets.get(&ctx.client, &r.namespace, &r.name).await?,
        None => None,
    };
    let secrets = validate::secrets(&class, secret_ref, secret.as_deref())?;
    let driver = ctx.drivers.get(&class.provisioner).await?;
    let destination_capable = driver
        .capabilities()
        .await
        .map(|c| c.get_replication_destination_info)
        .unwrap_or(false);
    let mut request = ReplicationRequest::new(target)
        .with_parameters(class.parameters.driver.clone())
        .with_secrets(secrets);
    if let Some(handle) = vr
        .spec
        .replication_handle
        .as_deref()
        .filter(|h| !h.is_empty())
    {
        request = request.with_replication_id(handle);
    }
    Ok(Resolved {
        pvc,
        provisioner: class.provisioner.clone(),
        driver,
        request,
        refresh: class
            .interval
            .map(SchedulingInterval::refresh_interval)
            .unwrap_or(SchedulingInterval::DEFAULT_REFRESH)
            .min(ctx.settings.info_refresh),
        interval: class
            .interval
            .map(SchedulingInterval::as_duration)
            .unwrap_or(SchedulingInterval::DEFAULT_REFRESH),
        destination_capable,
        secret: secret_ref.cloned(),
    })
}

/// Records a finding of ours in the status and as an Event.
async fn reject(
    vr: &VolumeReplication,
    ctx: &Context,
    reason: &'static str,
    message: String,
) -> Result<(), Error> {
    let outcome = Outcome::rejected(reason, message);
    let old = vr.status.clone().unwrap_or_default();
    let new = next_status(vr, &outcome, Timestamp::now());
    finish(vr, ctx, &old, new, &outcome).await
}

/// Writes the status if it changed, then publishes the Events of this outcome.
async fn finish(
    vr: &VolumeReplication,
    ctx: &Context,
    old: &VolumeReplicationStatus,
    new: VolumeReplicationStatus,
    outcome: &Outcome,
) -> Result<(), Error> {
    // The status write and the Events go out together: a reconcile waits for one round trip
    // to the API server, not two (issue 30: the round trips, not CPU, bound the rate). The
    // Events say what the driver did, which holds whether or not the status write succeeds;
    // one that fails is retried, and says it again.
    let notes = notes(old, &new, outcome);
    let write = async {
        if vr.status.as_ref() != Some(&new) {
            let patch = json!({
                "apiVersion": VolumeReplication::api_version(&()),
                "kind": VolumeReplication::kind(&()),
                "status": new,
            });
            Api::<VolumeReplication>::namespaced(
                ctx.client.clone(),
                &vr.namespace().unwrap_or_default(),
            )
            .patch_status(
                &vr.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await?;
        }
        Ok::<(), Error>(())
    };
    let events = async {
        for note in notes {
            publish(vr, ctx, note).await;
        }
    };
    let (written, ()) = futures::join!(write, events);
    written
}

/// Publishes `note` as an Event on `object` (a failure to publish is logged, never fatal).
pub(crate) async fn publish<K: Resource<DynamicType = ()>>(object: &K, ctx: &Context, note: Note) {
    let event = Event {
        type_: if note.warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: note.reason.to_owned(),
        note: Some(note.message),
        action: note.action.to_owned(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(%error, reason = note.reason, "could not publish an Event");
    }
}

/// Keeps the role and health gauges current.
fn record_state(vr: &VolumeReplication, ctx: &Context, status: &VolumeReplicationStatus) {
    let degraded = find_condition(&status.conditions, ConditionType::Degraded.as_str())
        .is_some_and(|c| c.status == "True");
    ctx.metrics.set_state(
        &vr.namespace().unwrap_or_default(),
        &vr.name_any(),
        status.state() == Some(lifeline_api::replication::CurrentState::Primary),
        degraded,
    );
}

/// Keeps the per-VolumeReplication RPO gauges current: a primary's from the sync it last
/// shipped, a secondary's from the one it last received. Dropped when the role changes (until
/// the driver answers for the new role) or the driver has no facts for this role.
fn record_sync(vr: &VolumeReplication, ctx: &Context, outcome: &Outcome, resolved: &Resolved) {
    let (namespace, name) = (vr.namespace().unwrap_or_default(), vr.name_any());
    let role = match vr.spec.replication_state {
        ReplicationState::Primary => Role::Primary,
        ReplicationState::Secondary | ReplicationState::Resync => Role::Secondary,
    };
    let changed_role = !matches!(outcome.operation, Operation::None);
    match &outcome.info {
        Some(InfoOutcome::Info(info)) => {
            if let Some(last_sync) = info.last_sync_time {
                let bound = resolved.interval + info.last_sync_duration.unwrap_or_default();
                ctx.metrics.set_sync(
                    &namespace,
                    &name,
                    SyncFacts {
                        role,
                        last_sync,
                        rpo_bound: bound,
                        answered: SystemTime::now(),
                    },
                );
            }
        }
        Some(InfoOutcome::NotOffered | InfoOutcome::NotYet | InfoOutcome::Unimplemented) => {
            ctx.metrics.forget_sync(&namespace, &name)
        }
        // A failed call leaves the last answer; its info age keeps growing.
        Some(InfoOutcome::Failed(_)) => {}
        None if changed_role && ctx.metrics.sync_role(&namespace, &name) != Some(role) => {
            ctx.metrics.forget_sync(&namespace, &name)
        }
        None => {}
    }
}

/// Deletion: disable replication on the driver (NOT_FOUND counts as done), release the PVC,
/// then drop the VolumeReplication's finalizer.
async fn cleanup(
    vr: &VolumeReplication,
    class: Option<&VolumeReplicationClass>,
    ctx: &Context,
) -> Result<Action, Error> {
    if !vr.finalizers().iter().any(|f| f == VR_FINALIZER) {
        return Ok(Action::await_change());
    }
    let namespace = vr.namespace().unwrap_or_default();
    let mut release = true;
    match resolve(vr, class, ctx).await {
        Ok(resolved) => match resolved.driver.client.disable(&resolved.request).await {
            Ok(()) => {}
            Err(e) if e.class() == ErrorClass::NotFound => {}
            Err(e) => {
                let message = format!("cannot disable replication, deletion waits: {e}");
                publish(
                    vr,
                    ctx,
                    Note {
                        warning: true,
                        reason: "FailedToDisable",
                        action: "Disable",
                        message,
                    },
                )
                .await;
                return Err(e.into());
            }
        },
        Err(error) => {
            let verdict = deletion::verdict(&error, deletion::asked_to_abandon(vr.annotations()));
            match verdict {
                // Another VolumeReplication owns the claim: leave it (and its replication) alone.
                Verdict::NotOurs => release = false,
                // The driver or the API may come back; deleting now could leave replication on.
                Verdict::Retry => return Err(error),
                Verdict::NothingToDisable | Verdict::Abandon => {
                    let message = if verdict == Verdict::Abandon {
                        format!(
                            "deleted without disabling replication, as annotation {} asks: {error}; it may still be enabled on the storage",
                            deletion::DELETE_WITHOUT_DISABLE
                        )
                    } else {
                        format!("replication was not disabled on the driver: {error}")
                    };
                    let note = Note {
                        warning: true,
                        reason: "ReplicationNotDisabled",
                        action: "Disable",
                        message,
                    };
                    publish(vr, ctx, note).await;
                }
                Verdict::Blocked => {
                    let message = deletion::blocked_message(&namespace, &vr.name_any(), &error);
                    reject(vr, ctx, "DeletionBlocked", message).await?;
                    return Ok(Action::requeue(Duration::from_secs(60)));
                }
            }
        }
    }
    if release
        && DataSourceKind::of(&vr.spec.data_source) == Some(DataSourceKind::PersistentVolumeClaim)
    {
        let pvcs = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &namespace);
        if let Some(pvc) = pvcs.get_opt(&vr.spec.data_source.name).await? {
            release_pvc(&pvcs, &pvc, &vr.name_any()).await?;
        }
    }
    let vrs = Api::<VolumeReplication>::namespaced(ctx.client.clone(), &namespace);
    set_vr_finalizer(&vrs, vr, false).await?;
    ctx.forget(&uid(vr));
    ctx.metrics.forget(&namespace, &vr.name_any());
    tracing::info!(
        namespace,
        name = vr.name_any(),
        "replication disabled and claim released"
    );
    Ok(Action::await_change())
}
