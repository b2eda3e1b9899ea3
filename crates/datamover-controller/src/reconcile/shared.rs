//! What both pipelines do the same way: status patches, conditions, Events, finalizers,
//! deleting working objects.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use lifeline_api::datamover::{ConditionReason, ConditionType, FINALIZER};
use lifeline_api::foreign::snapshot::{VolumeSnapshot, VolumeSnapshotContent};
use lifeline_api::foreign::volsync::{ReplicationDestination, ReplicationSource};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::context::{Context, FIELD_MANAGER};
use crate::error::Error;
use crate::names::Names;
use crate::problem::Problem;

/// How long a request with bad input waits before it is looked at again without a change.
pub const AFTER_PROBLEM: Duration = Duration::from_secs(300);

pub fn error_policy<K: Resource>(object: Arc<K>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(name = object.meta().name.as_deref().unwrap_or_default(), category = error.category(), %error, "reconcile failed");
    if error.retryable() {
        Action::requeue(Duration::from_secs(5))
    } else {
        Action::requeue(AFTER_PROBLEM)
    }
}

pub fn now() -> String {
    let now = Timestamp::now();
    Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string()
}

/// A `Reconciled` condition as JSON.
pub fn reconciled(ok: bool, message: &str) -> Value {
    let reason = if ok {
        ConditionReason::Complete
    } else {
        ConditionReason::Error
    };
    json!([{
        "type": ConditionType::Reconciled.as_str(), "status": if ok { "True" } else { "False" },
        "reason": reason.as_str(), "message": message, "lastTransitionTime": now(),
    }])
}

/// The `Reconciled` message when a request starts: what happened, and what the user should
/// know about their Secret (ignored keys, by name).
pub fn started_message(what: &str, secret: &crate::repository::ResticSecret) -> String {
    std::iter::once(what.to_owned())
        .chain(secret.notices())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A merge patch of `status` (through the status subresource) or of `metadata`.
async fn merge_patch<K>(ctx: &Context, object: &K, field: &str, value: Value) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api = Api::<K>::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    let patch = Patch::Merge(json!({ field: value }));
    if field == "status" {
        api.patch_status(&object.name_any(), &params, &patch)
            .await?;
    } else {
        api.patch(&object.name_any(), &params, &patch).await?;
    }
    Ok(())
}

pub async fn patch_status<K>(ctx: &Context, object: &K, status: Value) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    merge_patch(ctx, object, "status", status).await
}

pub async fn patch_metadata<K>(ctx: &Context, object: &K, metadata: Value) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    merge_patch(ctx, object, "metadata", metadata).await
}

/// Adds or removes our finalizer.
pub async fn set_finalizer<K>(ctx: &Context, object: &K, present: bool) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let mut finalizers = object.finalizers().to_vec();
    let has = finalizers.iter().any(|f| f == FINALIZER);
    if has == present {
        return Ok(());
    }
    if present {
        finalizers.push(FINALIZER.to_owned());
    } else {
        finalizers.retain(|f| f != FINALIZER);
    }
    patch_metadata(
        ctx,
        object,
        json!({"finalizers": finalizers, "resourceVersion": object.resource_version()}),
    )
    .await
}

pub async fn event<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    object: &K,
    warning: bool,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.to_owned(),
        note: Some(note),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(%error, "could not publish an Event");
    }
}

async fn delete_if_there<K>(api: Api<K>, name: &str) -> Result<bool, Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    Ok(delete_and_see(api, name).await?.is_some())
}

/// Deletes `name` if it is there: `None` when it was not, `Some(Some(object))` while it stays
/// (its finalizers not yet removed; the object as the API server answered), `Some(None)` when
/// it went at once.
async fn delete_and_see<K>(api: Api<K>, name: &str) -> Result<Option<Option<K>>, Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        // The API server answers with the object either way; it stays while it has finalizers.
        Ok(deleted) => Ok(Some(deleted.left().filter(|object| {
            object
                .meta()
                .finalizers
                .as_ref()
                .is_some_and(|f| !f.is_empty())
        }))),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Deletes every working object of a request (never the user's); returns whether any was left.
pub async fn delete_working(ctx: &Context, namespace: &str, names: &Names) -> Result<bool, Error> {
    let c = &ctx.client;
    let mut any = false;
    any |= delete_if_there(
        Api::<ReplicationSource>::namespaced(c.clone(), namespace),
        &names.replication_source(),
    )
    .await?;
    any |= delete_if_there(
        Api::<ReplicationDestination>::namespaced(c.clone(), namespace),
        &names.replication_destination(),
    )
    .await?;
    any |= delete_if_there(
        Api::<Secret>::namespaced(c.clone(), namespace),
        &names.secret(),
    )
    .await?;
    // The snapshot only in a round after its claim went: the snapshot-controller will not
    // delete a snapshot a Pending claim is being restored from, and then does not look again
    // for its resync's 15 minutes (crate::stuck_snapshot).
    if delete_if_there(
        Api::<PersistentVolumeClaim>::namespaced(c.clone(), namespace),
        &names.pvc(),
    )
    .await?
    {
        return Ok(true);
    }
    let snapshots = Api::<VolumeSnapshot>::namespaced(c.clone(), namespace);
    let snapshot = delete_and_see(snapshots.clone(), &names.snapshot()).await?;
    // The content only once its VolumeSnapshot is gone: the snapshot-controller releases a
    // bound content as its snapshot goes, but a bound content deleted first can keep the
    // csi-snapshotter's finalizer for good (seen with the real sidecars: the request never
    // finished deleting).
    if let Some(Some(staying)) = &snapshot {
        nudge_if_stuck(&snapshots, staying).await?;
        return Ok(true);
    }
    any |= snapshot.is_some();
    let contents = Api::<VolumeSnapshotContent>::all(c.clone());
    any |= delete_if_there(contents.clone(), &names.content()).await?;
    // Its snapshot is gone: a bound protection left on it would keep it for good.
    let content = contents.get_opt(&names.content()).await?;
    if let Some((content, finalizers)) = content
        .as_ref()
        .and_then(|c| Some((c, crate::orphan_content::release(c)?)))
    {
        tracing::info!(content = %names.content(), "releasing the snapshot-controller's bound protection its deleted snapshot left");
        contents
            .patch(
                &names.content(),
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {
                    "finalizers": finalizers,
                    // Only the version looked at: a change since is seen next round.
                    "resourceVersion": content.resource_version(),
                }})),
            )
            .await?;
    }
    Ok(any)
}

/// Touches a working snapshot the snapshot-controller has left deleting for too long, so that
/// it looks again ([`crate::stuck_snapshot`]).
async fn nudge_if_stuck(
    snapshots: &Api<VolumeSnapshot>,
    snapshot: &VolumeSnapshot,
) -> Result<(), Error> {
    if let Some(at) = crate::stuck_snapshot::nudge(snapshot, Timestamp::now()) {
        let name = snapshot.name_any();
        tracing::info!(snapshot = %name, "asking the snapshot-controller to look again at a working snapshot it left deleting");
        snapshots
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"metadata": {"annotations": {crate::stuck_snapshot::NUDGED_AT: at}}}),
                ),
            )
            .await?;
    }
    Ok(())
}

/// Creates `object` unless it exists.
pub async fn create<K>(api: &Api<K>, object: &K) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api
        .create(
            &kube::api::PostParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..Default::default()
            },
            object,
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// How long a request ran, from its `status.startTimestamp` until now.
pub fn took<K: serde::Serialize>(object: &K) -> Option<Duration> {
    let value = serde_json::to_value(object).ok()?;
    let start: Timestamp = value["status"]["startTimestamp"].as_str()?.parse().ok()?;
    let seconds = Timestamp::now().as_second() - start.as_second();
    u64::try_from(seconds).ok().map(Duration::from_secs)
}

/// A bad input: the condition and a Warning Event, once per distinct message; then waits for
/// a change (or looks again after [`AFTER_PROBLEM`]).
pub async fn reject<K>(
    ctx: &Context,
    object: &K,
    current: Option<&str>,
    problem: &crate::problem::Problem,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let message = problem.to_string();
    if current != Some(message.as_str()) {
        patch_status(
            ctx,
            object,
            json!({"conditions": reconciled(false, &message)}),
        )
        .await?;
        event(ctx, object, true, problem.reason(), message).await;
    }
    Ok(Action::requeue(AFTER_PROBLEM))
}

/// OADP's ConfigMap `<class>-config` in the protected namespace, as (name, data), if the class
/// is known and the ConfigMap exists.
pub async fn storage_config(
    ctx: &Context,
    protected: &str,
    class: Option<String>,
) -> Result<Option<(String, std::collections::BTreeMap<String, String>)>, Error> {
    let Some(class) = class else { return Ok(None) };
    let name = crate::storage_config::configmap_name(&class);
    Ok(
        kube::Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(
            ctx.client.clone(),
            protected,
        )
        .get_opt(&name)
        .await?
        .map(|cm| (name, cm.data.unwrap_or_default())),
    )
}

/// The message of a request's (single) condition, to avoid rewriting an unchanged one.
pub fn first_message(conditions: Option<&Vec<Condition>>) -> Option<&str> {
    conditions?.first().map(|c| c.message.as_str())
}

/// Refuses a request before anything is fetched for it: a protected namespace this controller
/// does not serve, or a field it cannot do without (an empty name would turn a GET into a
/// LIST). A deleted request just loses its finalizer: nothing was created for it.
pub async fn refuse_early<K>(
    ctx: &Context,
    object: &K,
    early: Result<(), Problem>,
    conditions: Option<&Vec<Condition>>,
) -> Result<Option<Action>, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let Err(problem) = early else {
        return Ok(None);
    };
    if object.meta().deletion_timestamp.is_some() {
        set_finalizer(ctx, object, false).await?;
        return Ok(Some(Action::await_change()));
    }
    reject(ctx, object, first_message(conditions), &problem)
        .await
        .map(Some)
}

/// `Failed`, saying the mover's `message`, which `decide` already stripped of the Secret's
/// values (`Decision::Fail` carries it scrubbed, since decisions are logged).
pub async fn fail<K>(
    ctx: &Context,
    object: &K,
    kind: &str,
    reason: &str,
    message: &str,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    patch_status(
        ctx,
        object,
        json!({
            "phase": "Failed", "batchingStatus": "Completed", "completionTimestamp": now(),
            "conditions": reconciled(false, &format!("the restic mover failed: {message}")),
        }),
    )
    .await?;
    ctx.metrics.finished(kind, "Failed", took(object));
    event(ctx, object, true, reason, message.to_owned()).await;
    Ok(Action::await_change())
}

/// `Completed`; what the start said about the Secret (`previous`'s notices) stays said.
pub async fn complete<K>(
    ctx: &Context,
    object: &K,
    kind: &str,
    previous: Option<&str>,
    detail: Option<String>,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let mut message = format!("{kind} completed");
    if let Some(detail) = detail {
        message = format!("{message}: {detail}");
    }
    if let Some((_, notices)) = previous.and_then(|m| m.split_once("; ")) {
        message = format!("{message}; {notices}");
    }
    patch_status(
        ctx,
        object,
        json!({
            "phase": "Completed", "batchingStatus": "Completed", "completionTimestamp": now(),
            "conditions": reconciled(true, &message),
        }),
    )
    .await?;
    ctx.metrics.finished(kind, "Completed", took(object));
    event(ctx, object, false, "Completed", message).await;
    Ok(Action::await_change())
}
