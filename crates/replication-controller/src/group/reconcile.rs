//! One reconcile of a VolumeGroupReplication: fetch → validate → the driver's group → apply
//! (claims, content, VolumeReplication) → status; or, when it is deleted, the same undone in
//! reverse. Decisions are [`super::plan`]'s and [`super::select`]'s.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use lifeline_api::condition::{ConditionStatus, NewCondition, set_condition};
use lifeline_api::replication::{
    ClassParameters, VGR_OWNER_ANNOTATION, VGR_PVC_FINALIZER, VR_FINALIZER, VolumeGroupReplication,
    VolumeGroupReplicationClass, VolumeGroupReplicationContent, VolumeGroupReplicationStatus,
    VolumeReplication,
};
use lifeline_csi_client::{ErrorClass, Secrets};
use serde_json::json;

use super::GroupInvalid;
use super::ownership;
use super::plan::{self, GroupCall, Names};
use super::select::{self, Member};
use crate::FIELD_MANAGER;
use crate::context::Context;
use crate::drivers::Driver;
use crate::error::{DriverError, Error};
use crate::events::Note;
use crate::protection::finalizer_patch;
use crate::reconcile::failure_delay;

/// How soon a group whose VolumeReplication has not settled is looked at again (its status
/// is mirrored from that VolumeReplication, whose changes also trigger a reconcile).
const SETTLING: Duration = Duration::from_secs(5);
/// How often a settled group is looked at again.
const SETTLED: Duration = Duration::from_secs(300);

/// What the group needs from its class and its driver.
struct Prepared {
    provisioner: String,
    driver: Arc<Driver>,
    modify_capable: bool,
    parameters: BTreeMap<String, String>,
    secrets: Secrets,
    members: Vec<Member>,
    names: Names,
    replication: VolumeReplication,
}

pub async fn reconcile(
    vgr: Arc<VolumeGroupReplication>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&vgr, &ctx).await;
    let category = result.as_ref().err().map(Error::category);
    ctx.metrics
        .reconciled(started.elapsed(), category.as_deref());
    if result.is_ok() {
        ctx.succeeded(&uid(&vgr));
    }
    result
}

pub fn error_policy(vgr: Arc<VolumeGroupReplication>, error: &Error, ctx: Arc<Context>) -> Action {
    Action::requeue(failure_delay(vgr.as_ref(), &uid(&vgr), error, &ctx))
}

fn uid(vgr: &VolumeGroupReplication) -> String {
    vgr.uid().unwrap_or_else(|| {
        format!(
            "vgr/{}/{}",
            vgr.namespace().unwrap_or_default(),
            vgr.name_any()
        )
    })
}

fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

async fn reconcile_inner(vgr: &VolumeGroupReplication, ctx: &Context) -> Result<Action, Error> {
    let namespace = vgr.namespace().unwrap_or_default();
    let class = Api::<VolumeGroupReplicationClass>::all(ctx.client.clone())
        .get_opt(&vgr.spec.volume_group_replication_class_name)
        .await?;
    if let Some(class) = &class
        && !ctx.drivers.serves(&class.spec.provisioner)
    {
        return Ok(Action::await_change());
    }
    if vgr.spec.external {
        // Another controller manages this group's driver side.
        return Ok(Action::await_change());
    }
    if vgr.metadata.deletion_timestamp.is_some() {
        return cleanup(vgr, class.as_ref(), ctx).await;
    }
    let vgrs = Api::<VolumeGroupReplication>::namespaced(ctx.client.clone(), &namespace);
    if let Some(patch) = finalizer_patch(vgr, VR_FINALIZER, true, None) {
        vgrs.patch(&vgr.name_any(), &params(), &Patch::Merge(patch))
            .await?;
    }
    let prepared = match prepare(vgr, class.as_ref(), ctx).await {
        Ok(p) => p,
        Err(Error::Group(e)) => {
            write_invalid(vgr, ctx, e.category(), &e.to_string()).await?;
            return Err(e.into());
        }
        Err(e) => return Err(e),
    };

    // Members are protected before the driver groups them; leavers released after it let go.
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &namespace);
    let all_claims = pvcs.list(&ListParams::default()).await?.items;
    let (protect, release) = plan::protection(&vgr.name_any(), &all_claims, &prepared.members);
    let group_name = vgr.name_any();
    for claim in all_claims
        .iter()
        .filter(|c| protect.contains(&c.name_any()))
    {
        let annotation = Some((VGR_OWNER_ANNOTATION, Some(group_name.as_str())));
        if let Some(patch) = finalizer_patch(claim, VGR_PVC_FINALIZER, true, annotation) {
            pvcs.patch(&claim.name_any(), &params(), &Patch::Merge(patch))
                .await?;
        }
    }

    let contents = Api::<VolumeGroupReplicationContent>::all(ctx.client.clone());
    let content = contents.get_opt(&prepared.names.content).await?;
    if let Some(theirs) = content
        .as_ref()
        .filter(|c| !ownership::content_is_ours(vgr, c))
    {
        let e = ownership::content_taken(vgr, theirs);
        write_invalid(vgr, ctx, e.category(), &e.to_string()).await?;
        return Err(e.into());
    }
    let client = &prepared.driver.client;
    let handle = match plan::group_call(&prepared.names, content.as_ref(), &prepared.members) {
        GroupCall::Create { name, volumes } => {
            let group = client
                .create_volume_group(&name, &volumes, &prepared.parameters, &prepared.secrets)
                .await?;
            tracing::info!(
                namespace,
                name = vgr.name_any(),
                group = group.id,
                "volume group created"
            );
            group.id
        }
        GroupCall::Modify { handle, volumes } => {
            if !prepared.modify_capable {
                let e = GroupInvalid::NoModifyCapability(prepared.provisioner.clone());
                write_invalid(vgr, ctx, e.category(), &e.to_string()).await?;
                return Err(e.into());
            }
            client
                .modify_volume_group_membership(
                    &handle,
                    &volumes,
                    &prepared.parameters,
                    &prepared.secrets,
                )
                .await?;
            tracing::info!(
                namespace,
                name = vgr.name_any(),
                members = volumes.len(),
                "volume group membership changed"
            );
            handle
        }
        GroupCall::None { handle } => handle,
    };
    let desired = plan::content(
        vgr,
        &prepared.names,
        &prepared.provisioner,
        &handle,
        &prepared.members,
    );
    match &content {
        None => {
            contents.create(&PostParams::default(), &desired).await?;
        }
        Some(existing) if existing.spec != desired.spec => {
            contents
                .patch(
                    &prepared.names.content,
                    &params(),
                    &Patch::Merge(json!({"spec": {
                        "volumeGroupReplicationHandle": handle,
                        "source": desired.spec.source,
                    }})),
                )
                .await?;
        }
        Some(_) => {}
    }
    for claim in all_claims
        .iter()
        .filter(|c| release.contains(&c.name_any()))
    {
        if let Some(patch) = finalizer_patch(
            claim,
            VGR_PVC_FINALIZER,
            false,
            Some((VGR_OWNER_ANNOTATION, None)),
        ) {
            pvcs.patch(&claim.name_any(), &params(), &Patch::Merge(patch))
                .await?;
        }
    }
    if vgr.spec.volume_group_replication_content_name.is_none() {
        // Recorded once (the field is immutable once set), so the group's VolumeReplication
        // finds the content.
        vgrs.patch(
            &vgr.name_any(),
            &params(),
            &Patch::Merge(
                json!({"spec": {"volumeGroupReplicationContentName": prepared.names.content}}),
            ),
        )
        .await?;
    }

    let vrs = Api::<VolumeReplication>::namespaced(ctx.client.clone(), &namespace);
    let want = &prepared.replication;
    let vr = match vrs.get_opt(&prepared.names.replication).await? {
        None => vrs.create(&PostParams::default(), want).await?,
        Some(existing) => {
            if !ownership::replication_is_ours(vgr, &existing) {
                let e = ownership::replication_taken(vgr, &existing);
                write_invalid(vgr, ctx, e.category(), &e.to_string()).await?;
                return Err(e.into());
            }
            if existing.spec.replication_state != want.spec.replication_state
                || existing.spec.auto_resync != want.spec.auto_resync
            {
                vrs.patch(
                    &existing.name_any(),
                    &params(),
                    &Patch::Merge(json!({"spec": {
                        "replicationState": want.spec.replication_state.as_str(),
                        "autoResync": want.spec.auto_resync,
                    }})),
                )
                .await?
            } else {
                existing
            }
        }
    };
    let new = plan::status(vgr, Some(&vr), &prepared.members);
    write_status(vgr, ctx, new.clone()).await?;
    let settled = vr.status.as_ref().and_then(|s| s.observed_generation) == vr.metadata.generation;
    Ok(Action::requeue(if settled { SETTLED } else { SETTLING }))
}

/// Reads the class, the members and the driver; every problem is a [`GroupInvalid`].
async fn prepare(
    vgr: &VolumeGroupReplication,
    class: Option<&VolumeGroupReplicationClass>,
    ctx: &Context,
) -> Result<Prepared, Error> {
    let namespace = vgr.namespace().unwrap_or_default();
    let class_name = vgr.spec.volume_group_replication_class_name.clone();
    let class = class.ok_or_else(|| GroupInvalid::ClassMissing(class_name.clone()))?;
    let parameters =
        ClassParameters::parse(class.spec.parameters()).map_err(|e| GroupInvalid::Parameters {
            class: class_name.clone(),
            problem: e.to_string(),
        })?;
    let secrets = match &parameters.group_secret {
        None => Secrets::default(),
        Some(r) => {
            let secret = Api::<Secret>::namespaced(ctx.client.clone(), &r.namespace)
                .get_opt(&r.name)
                .await?;
            let bad = || GroupInvalid::Secret {
                class: class_name.clone(),
                namespace: r.namespace.clone(),
                name: r.name.clone(),
            };
            let secret = secret.ok_or_else(bad)?;
            let mut values = Vec::new();
            for (key, value) in secret.data.iter().flatten() {
                values.push((
                    key.clone(),
                    String::from_utf8(value.0.clone()).map_err(|_| bad())?,
                ));
            }
            Secrets::from_iter(values)
        }
    };
    let names = plan::names(vgr);
    let replication = plan::replication(vgr, &names)?;
    let query = select::query(&vgr.spec.source.selector)?;
    let claims = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &namespace)
        .list(&ListParams::default().labels(&query))
        .await?
        .items;
    let mut volumes = BTreeMap::new();
    let pvs = Api::<PersistentVolume>::all(ctx.client.clone());
    for claim in &claims {
        if let Some(name) = claim.spec.as_ref().and_then(|s| s.volume_name.clone())
            && let Some(pv) = pvs.get_opt(&name).await?
        {
            volumes.insert(name, pv);
        }
    }
    let members = select::members(&vgr.name_any(), &claims, &volumes, &class.spec.provisioner)?;
    let driver = ctx.drivers.get(&class.spec.provisioner).await?;
    let capabilities = driver
        .capabilities()
        .await
        .map_err(|source| DriverError::Unreachable {
            provisioner: class.spec.provisioner.clone(),
            source,
        })?;
    if !capabilities.volume_group {
        return Err(GroupInvalid::NoGroupCapability(class.spec.provisioner.clone()).into());
    }
    Ok(Prepared {
        provisioner: class.spec.provisioner.clone(),
        driver,
        modify_capable: capabilities.modify_volume_group,
        parameters: parameters.driver,
        secrets,
        members,
        names,
        replication,
    })
}

/// An Event on the group.
async fn publish(
    vgr: &VolumeGroupReplication,
    ctx: &Context,
    warning: bool,
    reason: &'static str,
    action: &'static str,
    message: String,
) {
    let note = Note {
        warning,
        reason,
        action,
        message,
    };
    crate::reconcile::publish(vgr, ctx, note).await;
}

/// Writes the status (server-side apply, our field manager) if it changed.
async fn write_status(
    vgr: &VolumeGroupReplication,
    ctx: &Context,
    new: VolumeGroupReplicationStatus,
) -> Result<(), Error> {
    if vgr.status.as_ref() == Some(&new) {
        return Ok(());
    }
    let patch = json!({
        "apiVersion": VolumeGroupReplication::api_version(&()),
        "kind": VolumeGroupReplication::kind(&()),
        "status": new,
    });
    Api::<VolumeGroupReplication>::namespaced(
        ctx.client.clone(),
        &vgr.namespace().unwrap_or_default(),
    )
    .patch_status(
        &vgr.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// A problem with the group's inputs, as a `Validated` False condition with what to fix.
async fn write_invalid(
    vgr: &VolumeGroupReplication,
    ctx: &Context,
    category: &str,
    message: &str,
) -> Result<(), Error> {
    let mut status = vgr.status.clone().unwrap_or_default();
    set_condition(
        &mut status.replication.conditions,
        NewCondition::new(
            "Validated",
            ConditionStatus::False,
            "PrerequisiteNotMet",
            message,
        ),
        vgr.metadata.generation,
        Timestamp::now(),
    );
    status.replication.message = Some(message.to_owned());
    tracing::debug!(category, message, "volume group invalid");
    let changed = vgr.status.as_ref() != Some(&status);
    write_status(vgr, ctx, status).await?;
    if changed {
        // Once per finding, not on every recheck.
        publish(
            vgr,
            ctx,
            true,
            "InvalidGroup",
            "Validate",
            message.to_owned(),
        )
        .await;
    }
    Ok(())
}

/// Deletion, in reverse: the VolumeReplication (its controller disables replication), the
/// driver's group, the content, the claims' protection, the group's finalizer.
async fn cleanup(
    vgr: &VolumeGroupReplication,
    class: Option<&VolumeGroupReplicationClass>,
    ctx: &Context,
) -> Result<Action, Error> {
    if !vgr.finalizers().iter().any(|f| f == VR_FINALIZER) {
        return Ok(Action::await_change());
    }
    let namespace = vgr.namespace().unwrap_or_default();
    let names = plan::names(vgr);
    let vrs = Api::<VolumeReplication>::namespaced(ctx.client.clone(), &namespace);
    // Only what is the group's is undone: a name pointing at another's is left alone.
    if let Some(vr) = vrs
        .get_opt(&names.replication)
        .await?
        .filter(|vr| ownership::replication_is_ours(vgr, vr))
    {
        if vr.metadata.deletion_timestamp.is_none() {
            vrs.delete(&names.replication, &DeleteParams::default())
                .await?;
        }
        // Its controller disables replication, then lets it go; until then the group stays.
        return Ok(Action::requeue(Duration::from_secs(2)));
    }
    let contents = Api::<VolumeGroupReplicationContent>::all(ctx.client.clone());
    if let Some(content) = contents
        .get_opt(&names.content)
        .await?
        .filter(|c| ownership::content_is_ours(vgr, c))
    {
        if let (Some(handle), Some(class)) = (
            content.spec.volume_group_replication_handle.as_deref(),
            class,
        ) {
            let driver = ctx.drivers.get(&class.spec.provisioner).await?;
            let secrets = match ClassParameters::parse(class.spec.parameters())
                .ok()
                .and_then(|p| p.group_secret)
            {
                Some(r) => Api::<Secret>::namespaced(ctx.client.clone(), &r.namespace)
                    .get_opt(&r.name)
                    .await?
                    .map(|s| {
                        Secrets::from_iter(
                            s.data
                                .into_iter()
                                .flatten()
                                .filter_map(|(k, v)| String::from_utf8(v.0).ok().map(|v| (k, v))),
                        )
                    })
                    .unwrap_or_default(),
                None => Secrets::default(),
            };
            match driver.client.delete_volume_group(handle, &secrets).await {
                Ok(()) => {}
                Err(e) if e.class() == ErrorClass::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        contents
            .delete(&names.content, &DeleteParams::default())
            .await?;
    }
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &namespace);
    for claim in pvcs.list(&ListParams::default()).await?.items {
        if claim.annotations().get(VGR_OWNER_ANNOTATION) == Some(&vgr.name_any())
            && let Some(patch) = finalizer_patch(
                &claim,
                VGR_PVC_FINALIZER,
                false,
                Some((VGR_OWNER_ANNOTATION, None)),
            )
        {
            pvcs.patch(&claim.name_any(), &params(), &Patch::Merge(patch))
                .await?;
        }
    }
    let vgrs = Api::<VolumeGroupReplication>::namespaced(ctx.client.clone(), &namespace);
    if let Some(patch) = finalizer_patch(vgr, VR_FINALIZER, false, None) {
        vgrs.patch(&vgr.name_any(), &params(), &Patch::Merge(patch))
            .await?;
    }
    ctx.forget(&uid(vgr));
    tracing::info!(namespace, name = vgr.name_any(), "volume group released");
    Ok(Action::await_change())
}
