//! What reconciling DataUploads and DataDownloads shares: taking a request, writing its
//! phase (no status subresource: through the object), ending it, and reading its location.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use lifeline_api::foreign::velero::BackupStorageLocation;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::shared::{event, now, took};
use crate::context::{Context, FIELD_MANAGER};
use crate::error::Error;
use crate::velero::location::{self, Inputs, Secrets};

/// What a Velero request's reconcile needs of its type.
pub trait Request:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + std::fmt::Debug
{
}

impl<K> Request for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug
{
}

pub fn is_owned_by<K: Resource<DynamicType = ()>>(object: &impl Resource, request: &K) -> bool {
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

/// `New` → `Accepted`, only if nobody changed the request since it was read: of two movers
/// (or replicas), one takes it; the other's write conflicts and it lets go.
pub async fn take<K: Request>(ctx: &Context, request: &K, mover: &str) -> Result<Action, Error> {
    let at = now();
    let taken = patch_request(
        ctx,
        request,
        json!({"phase": "Accepted", "acceptedTimestamp": at, "startTimestamp": at,
               "message": format!("accepted by data mover {mover:?}")}),
        true,
    )
    .await?;
    if taken {
        event(
            ctx,
            request,
            false,
            "Accepted",
            "taken by Lifeline's data mover".into(),
        )
        .await;
    }
    // Not taken: someone changed it first; the watch brings it back as it is now.
    Ok(Action::await_change())
}

/// Cancelled before anyone took it: `Canceled`, nothing to undo.
pub async fn cancel_untaken<K: Request>(ctx: &Context, request: &K) -> Result<Action, Error> {
    patch_request(
        ctx,
        request,
        json!({"phase": "Canceled", "completionTimestamp": now(),
               "message": "canceled before any data moved"}),
        true,
    )
    .await?;
    Ok(Action::await_change())
}

/// `Failed`, saying why; what was made goes next (the request is then finished).
pub async fn fail<K: Request>(
    ctx: &Context,
    request: &K,
    kind: &str,
    message: &str,
) -> Result<Action, Error> {
    patch_request(
        ctx,
        request,
        json!({"phase": "Failed", "completionTimestamp": now(), "message": message}),
        false,
    )
    .await?;
    ctx.metrics.finished(kind, "Failed", took(request));
    event(ctx, request, true, "Failed", message.to_owned()).await;
    Ok(Action::requeue(Duration::from_secs(1)))
}

/// Nothing left after a cancel: `Canceled`.
pub async fn canceled<K: Request>(ctx: &Context, request: &K, kind: &str) -> Result<Action, Error> {
    patch_request(
        ctx,
        request,
        json!({"phase": "Canceled", "completionTimestamp": now(),
               "message": "canceled; everything made for the transfer is removed"}),
        false,
    )
    .await?;
    ctx.metrics.finished(kind, "Canceled", took(request));
    event(ctx, request, false, "Canceled", "canceled".into()).await;
    Ok(Action::await_change())
}

/// `Completed` with the request's results (`status` adds to the phase and time), and an Event
/// saying `note`; what was made goes next.
pub async fn complete<K: Request>(
    ctx: &Context,
    request: &K,
    kind: &str,
    mut status: Value,
    note: String,
) -> Result<Action, Error> {
    status["phase"] = json!("Completed");
    status["completionTimestamp"] = json!(now());
    patch_request(ctx, request, status, false).await?;
    ctx.metrics.finished(kind, "Completed", took(request));
    event(ctx, request, false, "Completed", note).await;
    Ok(Action::requeue(Duration::from_secs(1)))
}

/// `Canceling`: what was made goes next, then `Canceled`.
pub async fn canceling<K: Request>(ctx: &Context, request: &K) -> Result<(), Error> {
    patch_request(
        ctx,
        request,
        json!({"phase": "Canceling", "message": "canceling: stopping the mover and removing what was made"}),
        false,
    )
    .await
    .map(|_| ())
}
