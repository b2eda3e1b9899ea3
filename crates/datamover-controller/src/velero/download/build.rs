//! The working objects of a DataDownload, built from what was fetched. Pure: no client.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use lifeline_api::foreign::volsync::ReplicationDestination;
use serde_json::json;

use super::{Observed, point_in_time};
use crate::settings::Settings;

/// The restic Secret made for a request, beside it in Velero's namespace.
pub fn secret_name(request: &str) -> String {
    format!("{request}-repository")
}

/// The owner reference every object made for `request` carries: deleting the request deletes
/// them (and a backup's finalizer its working objects).
pub fn owned_by<K: kube::Resource<DynamicType = ()>>(request: &K) -> serde_json::Value {
    json!([{
        "apiVersion": K::api_version(&()), "kind": K::kind(&()),
        "name": request.meta().name, "uid": request.meta().uid, "controller": true,
    }])
}

/// The working claim and the ReplicationDestination restoring into it share this name.
pub fn working_name(request: &str) -> String {
    format!("{request}-restore")
}

/// The working claim: the restored claim's class and access modes, at least its size.
pub fn working_claim(observed: &Observed, name: &str, namespace: &str) -> PersistentVolumeClaim {
    let spec = observed
        .target
        .as_ref()
        .and_then(|t| t.spec.clone())
        .unwrap_or_default();
    let request = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .map(|q| q.0.clone());
    let snapshot = observed.dd.spec.snapshot_size.map(|b| b.to_string());
    let size = crate::sizes::larger(request.as_deref(), snapshot.as_deref())
        .unwrap_or_else(|| "1Gi".into());
    serde_json::from_value(json!({
        "metadata": {"name": working_name(name), "namespace": namespace, "ownerReferences": owned_by(&observed.dd)},
        "spec": {
            "storageClassName": spec.storage_class_name,
            "accessModes": spec.access_modes.unwrap_or_else(|| vec!["ReadWriteOnce".into()]),
            "resources": {"requests": {"storage": size}},
        },
    }))
    .expect("a valid PersistentVolumeClaim")
}

pub fn destination(
    observed: &Observed,
    settings: &Settings,
    name: &str,
    namespace: &str,
    custom_ca: bool,
) -> ReplicationDestination {
    let as_of = point_in_time(&observed.dd)
        .map(|p| p.as_of.to_string())
        .ok();
    let mut restic = json!({
        "repository": secret_name(name),
        "destinationPVC": working_name(name),
        "copyMethod": "Direct",
        "restoreAsOf": as_of,
        "moverServiceAccount": settings.mover_service_account,
    });
    if custom_ca {
        restic["customCA"] = crate::backup::build::custom_ca(&secret_name(name));
    }
    if let Some(uid) = settings.mover_run_as_user {
        restic["moverSecurityContext"] = json!({"runAsUser": uid, "runAsNonRoot": uid != 0});
    }
    serde_json::from_value(json!({
        "apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationDestination",
        "metadata": {"name": working_name(name), "namespace": namespace, "ownerReferences": owned_by(&observed.dd)},
        "spec": {"trigger": {"manual": name}, "restic": restic},
    }))
    .expect("a valid ReplicationDestination")
}
