//! Objects several e2e tests start from.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use lifeline_api::replication::{VolumeReplication, VolumeReplicationClass};
use serde_json::json;

/// The class `<class>` with `class_spec`, the CSI volume `pv-<ns>` of `driver` with handle
/// `volume`, the claim `data` bound to it, and the primary VolumeReplication `<vr>` of that
/// claim. Returns the claims and VolumeReplications of `ns`.
pub async fn replicated_claim(
    client: &kube::Client,
    ns: &str,
    driver: &str,
    volume: &str,
    class: &str,
    class_spec: serde_json::Value,
    vr: &str,
) -> anyhow::Result<(Api<PersistentVolumeClaim>, Api<VolumeReplication>)> {
    let pv_name = format!("pv-{ns}");
    let class_object: VolumeReplicationClass = serde_json::from_value(json!({
        "apiVersion": "replication.storage.openshift.io/v1alpha1", "kind": "VolumeReplicationClass",
        "metadata": {"name": class}, "spec": class_spec,
    }))?;
    Api::<VolumeReplicationClass>::all(client.clone())
        .create(&PostParams::default(), &class_object)
        .await?;
    let pv: PersistentVolume = serde_json::from_value(json!({"metadata": {"name": pv_name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "csi": {"driver": driver, "volumeHandle": volume}}}))?;
    Api::<PersistentVolume>::all(client.clone())
        .create(&PostParams::default(), &pv)
        .await?;
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns);
    let pvc: PersistentVolumeClaim = serde_json::from_value(json!({"metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                 "volumeName": pv_name}}))?;
    pvcs.create(&PostParams::default(), &pvc).await?;
    pvcs.patch_status(
        "data",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Bound"}})),
    )
    .await?;
    let vrs = Api::<VolumeReplication>::namespaced(client.clone(), ns);
    let vr_object: VolumeReplication = serde_json::from_value(json!({
        "apiVersion": "replication.storage.openshift.io/v1alpha1", "kind": "VolumeReplication",
        "metadata": {"name": vr},
        "spec": {"volumeReplicationClass": class, "replicationState": "primary",
                 "dataSource": {"kind": "PersistentVolumeClaim", "name": "data"}},
    }))?;
    vrs.create(&PostParams::default(), &vr_object).await?;
    Ok((pvcs, vrs))
}
