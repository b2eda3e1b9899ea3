//! The CSI provisioner for StorageClasses whose provisioner is the site's driver, as
//! external-provisioner does it: a Pending claim gets a directory in the driver's root and a CSI
//! PersistentVolume bound in advance to the claim (`claimRef`), which kube-controller-manager's
//! PV controller then binds; a claim with a VolumeSnapshot `dataSource` starts with the
//! snapshot's data; a volume whose claim is gone is deleted with its data (reclaim policy
//! Delete) once the PV controller (or this actor) has released it.

use std::collections::BTreeMap;

use anyhow::Context;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use lifeline_api::foreign::snapshot::{VolumeSnapshot, VolumeSnapshotContent};
use serde_json::json;

use super::Site;
use super::files::copy_tree;

pub async fn reconcile_all(client: Client, site: Site) -> anyhow::Result<()> {
    let classes: BTreeMap<String, String> = Api::<StorageClass>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|c| c.provisioner == site.driver)
        .map(|c| {
            (
                c.name_any(),
                c.reclaim_policy.unwrap_or_else(|| "Delete".into()),
            )
        })
        .collect();
    let claims = Api::<PersistentVolumeClaim>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    for claim in &claims {
        let class = claim
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.clone())
            .unwrap_or_default();
        let Some(reclaim) = classes.get(&class) else {
            continue;
        };
        let bound = claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
        // A claim that names its volume is statically provisioned: the PV controller binds it,
        // as external-provisioner leaves such claims alone.
        let names_volume = claim.spec.as_ref().is_some_and(|s| s.volume_name.is_some());
        if bound || names_volume || claim.metadata.deletion_timestamp.is_some() {
            continue;
        }
        provision(&client, &site, claim, &class, reclaim)
            .await
            .with_context(|| {
                format!(
                    "provisioning {}/{}",
                    claim.namespace().unwrap_or_default(),
                    claim.name_any()
                )
            })?;
    }
    reclaim(&client, &site, &claims).await
}

async fn provision(
    client: &Client,
    site: &Site,
    claim: &PersistentVolumeClaim,
    class: &str,
    reclaim: &str,
) -> anyhow::Result<()> {
    let namespace = claim.namespace().unwrap_or_default();
    let spec = claim.spec.clone().unwrap_or_default();
    let id = format!("pvc-{}", claim.uid().unwrap_or_default());
    let dir = site.volume_dir(&id);
    if !dir.exists() {
        // Fill from a snapshot first (into a staging dir), so the volume appears complete.
        let staging = site.root.join("volumes").join(format!(".staging-{id}"));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging)?;
        if let Some(source) = spec
            .data_source
            .as_ref()
            .filter(|s| s.kind == "VolumeSnapshot")
        {
            let Some(handle) = snapshot_handle(client, &namespace, &source.name).await? else {
                let _ = std::fs::remove_dir_all(&staging);
                return Ok(()); // wait for the snapshot to be ready
            };
            copy_tree(&site.snapshot_dir(&handle), &staging)?;
        }
        std::fs::rename(&staging, &dir)?;
    }
    let storage = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage").cloned())
        .map(|q| q.0)
        .unwrap_or_else(|| "1Gi".into());
    let access_modes = spec
        .access_modes
        .clone()
        .unwrap_or_else(|| vec!["ReadWriteOnce".into()]);
    let volumes = Api::<PersistentVolume>::all(client.clone());
    let pv: PersistentVolume = serde_json::from_value(json!({
        "metadata": {"name": id, "annotations": {"pv.kubernetes.io/provisioned-by": site.driver}},
        "spec": {
            "capacity": {"storage": storage}, "accessModes": access_modes,
            "persistentVolumeReclaimPolicy": reclaim, "storageClassName": class,
            "csi": {"driver": site.driver, "volumeHandle": id},
            "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": namespace,
                         "name": claim.name_any(), "uid": claim.uid()},
        },
    }))?;
    match volumes.create(&PostParams::default(), &pv).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    tracing::info!(claim = %claim.name_any(), %namespace, volume = %id, "provisioned");
    Ok(())
}

/// The snapshot handle behind a ready VolumeSnapshot, if it is ready.
pub async fn snapshot_handle(
    client: &Client,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Option<String>> {
    let Some(snapshot) = Api::<VolumeSnapshot>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await?
    else {
        return Ok(None);
    };
    let status = snapshot.status.unwrap_or_default();
    let (Some(true), Some(content)) = (
        status.ready_to_use,
        status.bound_volume_snapshot_content_name,
    ) else {
        return Ok(None);
    };
    let content = Api::<VolumeSnapshotContent>::all(client.clone())
        .get_opt(&content)
        .await?;
    Ok(content
        .and_then(|c| c.status)
        .and_then(|s| s.snapshot_handle))
}

/// Volumes of this driver whose claim is gone: deleted with their data, or released.
async fn reclaim(
    client: &Client,
    site: &Site,
    claims: &[PersistentVolumeClaim],
) -> anyhow::Result<()> {
    let volumes = Api::<PersistentVolume>::all(client.clone());
    for pv in volumes.list(&ListParams::default()).await?.items {
        let spec = pv.spec.clone().unwrap_or_default();
        if spec.csi.as_ref().map(|c| c.driver.as_str()) != Some(site.driver.as_str()) {
            continue;
        }
        let Some(claim_ref) = spec.claim_ref else {
            continue;
        };
        let claimed = claims.iter().any(|c| c.uid() == claim_ref.uid);
        let phase = pv
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        if claimed || pv.metadata.deletion_timestamp.is_some() {
            continue;
        }
        // Released first, as the PV controller does: the volume is no longer Bound, so its
        // pv-protection finalizer can go once it is deleted.
        if phase != "Released" {
            volumes
                .patch_status(
                    &pv.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": {"phase": "Released"}})),
                )
                .await?;
        }
        if spec.persistent_volume_reclaim_policy.as_deref() != Some("Retain") {
            if let Some(csi) = &spec.csi {
                let _ = std::fs::remove_dir_all(site.volume_dir(&csi.volume_handle));
            }
            volumes
                .delete(&pv.name_any(), &DeleteParams::default())
                .await?;
            tracing::info!(volume = %pv.name_any(), "deleted with its claim");
        }
    }
    Ok(())
}
