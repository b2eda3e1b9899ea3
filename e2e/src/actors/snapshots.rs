//! The snapshot controller for VolumeSnapshotClasses of the site's driver: a VolumeSnapshot
//! of a claim becomes a point-in-time copy of the volume's directory and a bound, ready
//! VolumeSnapshotContent; a pre-provisioned content (`source.snapshotHandle`) is bound to its
//! VolumeSnapshot; when a VolumeSnapshot goes, its content goes too under deletionPolicy
//! Delete (with the copy) and stays under Retain.

use std::collections::BTreeMap;

use anyhow::Context;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use lifeline_api::foreign::snapshot::{
    DeletionPolicy, VolumeSnapshot, VolumeSnapshotClass, VolumeSnapshotContent,
};
use serde_json::json;

use super::Site;
use super::files::{snapshot_tree, tree_size};

const DEFAULT_CLASS: &str = "snapshot.storage.kubernetes.io/is-default-class";

pub async fn reconcile_all(client: Client, site: Site) -> anyhow::Result<()> {
    let classes = Api::<VolumeSnapshotClass>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let ours: BTreeMap<String, DeletionPolicy> = classes
        .iter()
        .filter(|c| c.spec.driver == site.driver)
        .map(|c| (c.name_any(), c.spec.deletion_policy))
        .collect();
    let default_class = classes
        .iter()
        .filter(|c| c.spec.driver == site.driver)
        .find(|c| c.annotations().get(DEFAULT_CLASS).map(String::as_str) == Some("true"))
        .map(|c| c.name_any());
    let snapshots = Api::<VolumeSnapshot>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let contents = Api::<VolumeSnapshotContent>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    // Deletions first: a snapshot seen ready in a round was seen after this round's
    // deletion pass, which makes the order observable in tests.
    // Contents of this driver whose snapshot is gone follow their deletion policy.
    for content in contents.iter().filter(|c| c.spec.driver == site.driver) {
        let reference = &content.spec.volume_snapshot_ref;
        let alive = snapshots
            .iter()
            .any(|s| s.uid() == reference.uid && reference.uid.is_some());
        let pre_provisioned_unbound = reference.uid.is_none();
        if alive
            || pre_provisioned_unbound
            || content.spec.deletion_policy != DeletionPolicy::Delete
        {
            continue;
        }
        if let Some(handle) = content
            .status
            .as_ref()
            .and_then(|s| s.snapshot_handle.clone())
        {
            let _ = std::fs::remove_dir_all(site.snapshot_dir(&handle));
        }
        Api::<VolumeSnapshotContent>::all(client.clone())
            .delete(&content.name_any(), &DeleteParams::default())
            .await?;
        tracing::info!(content = %content.name_any(), "deleted with its snapshot");
    }
    for snapshot in &snapshots {
        let ready = snapshot.status.as_ref().and_then(|s| s.ready_to_use) == Some(true);
        if ready || snapshot.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let source = &snapshot.spec.source;
        if let Some(content) = &source.volume_snapshot_content_name {
            bind_existing(&client, &site, snapshot, content).await?;
            continue;
        }
        let class = snapshot
            .spec
            .volume_snapshot_class_name
            .clone()
            .or_else(|| default_class.clone());
        let Some((class, policy)) = class.and_then(|c| ours.get(&c).map(|p| (c.clone(), *p)))
        else {
            continue;
        };
        if let Some(claim) = &source.persistent_volume_claim_name {
            take(&client, &site, snapshot, claim, &class, policy)
                .await
                .with_context(|| {
                    format!(
                        "snapshot {}/{}",
                        snapshot.namespace().unwrap_or_default(),
                        snapshot.name_any()
                    )
                })?;
        }
    }
    Ok(())
}

async fn take(
    client: &Client,
    site: &Site,
    snapshot: &VolumeSnapshot,
    claim: &str,
    class: &str,
    policy: DeletionPolicy,
) -> anyhow::Result<()> {
    let namespace = snapshot.namespace().unwrap_or_default();
    let Some(pvc) = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &namespace)
        .get_opt(claim)
        .await?
    else {
        return Ok(()); // wait for the claim
    };
    let Some(volume_name) = pvc.spec.as_ref().and_then(|s| s.volume_name.clone()) else {
        return Ok(());
    };
    let Some(pv) = Api::<PersistentVolume>::all(client.clone())
        .get_opt(&volume_name)
        .await?
    else {
        return Ok(());
    };
    let Some(csi) = pv.spec.and_then(|s| s.csi) else {
        return Ok(());
    };
    let uid = snapshot.uid().unwrap_or_default();
    let handle = format!("snap-{uid}");
    snapshot_tree(
        &site.volume_dir(&csi.volume_handle),
        &site.snapshot_dir(&handle),
    )?;
    let size = pvc
        .status
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage").cloned())
        .unwrap_or_else(|| Quantity(tree_size(&site.snapshot_dir(&handle)).to_string()));
    let bytes = quantity_bytes(&size.0);
    let content_name = format!("snapcontent-{uid}");
    let contents = Api::<VolumeSnapshotContent>::all(client.clone());
    let content: VolumeSnapshotContent = serde_json::from_value(json!({
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
        "metadata": {"name": content_name},
        "spec": {
            "deletionPolicy": policy, "driver": site.driver, "volumeSnapshotClassName": class,
            "source": {"volumeHandle": csi.volume_handle},
            "volumeSnapshotRef": {"kind": "VolumeSnapshot", "apiVersion": "snapshot.storage.k8s.io/v1",
                                  "namespace": namespace, "name": snapshot.name_any(), "uid": uid},
        },
    }))?;
    match contents.create(&PostParams::default(), &content).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    let now = k8s_openapi::jiff::Timestamp::now();
    contents
        .patch_status(
            &content_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"snapshotHandle": handle, "readyToUse": true, "restoreSize": bytes,
                                 "creationTime": now.as_nanosecond() as i64}})),
        )
        .await?;
    Api::<VolumeSnapshot>::namespaced(client.clone(), &namespace)
        .patch_status(
            &snapshot.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"boundVolumeSnapshotContentName": content_name, "readyToUse": true,
                                 "restoreSize": size, "creationTime": now.round(k8s_openapi::jiff::Unit::Second)?.to_string()}})),
        )
        .await?;
    tracing::info!(snapshot = %snapshot.name_any(), %namespace, %handle, "snapshot taken");
    Ok(())
}

/// Binds a pre-provisioned content (whose `source.snapshotHandle` names existing data).
async fn bind_existing(
    client: &Client,
    site: &Site,
    snapshot: &VolumeSnapshot,
    content_name: &str,
) -> anyhow::Result<()> {
    let contents = Api::<VolumeSnapshotContent>::all(client.clone());
    let Some(content) = contents.get_opt(content_name).await? else {
        return Ok(());
    };
    let Some(handle) = content.spec.source.snapshot_handle.clone() else {
        return Ok(());
    };
    if content.spec.driver != site.driver || !site.snapshot_dir(&handle).is_dir() {
        return Ok(()); // not ours, or no such snapshot: never ready
    }
    let namespace = snapshot.namespace().unwrap_or_default();
    let reference = &content.spec.volume_snapshot_ref;
    if reference.name.as_deref() != Some(snapshot.name_any().as_str())
        || reference.namespace.as_deref() != Some(namespace.as_str())
    {
        return Ok(()); // the content names another snapshot
    }
    contents
        .patch(
            content_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"volumeSnapshotRef": {"uid": snapshot.uid()}}})),
        )
        .await?;
    let size = content
        .status
        .as_ref()
        .and_then(|s| s.restore_size)
        .unwrap_or(0);
    contents
        .patch_status(
            content_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"snapshotHandle": handle, "readyToUse": true, "restoreSize": size}})),
        )
        .await?;
    Api::<VolumeSnapshot>::namespaced(client.clone(), &namespace)
        .patch_status(
            &snapshot.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"boundVolumeSnapshotContentName": content_name, "readyToUse": true,
                                 "restoreSize": size.to_string()}})),
        )
        .await?;
    Ok(())
}

/// Bytes of a storage quantity ("1Gi", "500Mi", "1G", "1024").
pub fn quantity_bytes(text: &str) -> i64 {
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().unwrap_or(0.0);
    let factor: f64 = match unit {
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        _ => 1.0,
    };
    (number * factor) as i64
}
