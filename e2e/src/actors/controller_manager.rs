//! The duties of kube-controller-manager the scenarios depend on, for backends that run none
//! (the local API server and envtest): the PV controller's binding of a claim to the volume it
//! names (static provisioning, as an admin or `kubectl lifeline protect` sets it up), the PVC
//! and PV protection controllers, which remove
//! `kubernetes.io/pvc-protection` once no Pod uses a deleted claim and
//! `kubernetes.io/pv-protection` once a deleted volume is no longer Bound, and the garbage
//! collector, which deletes objects whose every owner is gone; and the Deployment and
//! StatefulSet controllers (`workloads.rs`). The finalizers themselves are
//! added by the API server (its StorageObjectInUseProtection admission), as on a real cluster.
//!
//! Knowingly simpler than kube-controller-manager: a level-triggered loop, and garbage
//! collection only of [`COLLECTED`] kinds (the ones the harness and the controllers give
//! owners), background propagation only.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, Scope};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::Actors;

pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
pub const PV_PROTECTION: &str = "kubernetes.io/pv-protection";

/// Kinds whose objects the garbage collector looks at: (group, version, kind).
pub const COLLECTED: &[(&str, &str, &str)] = &[
    ("", "v1", "ConfigMap"),
    ("", "v1", "Secret"),
    ("", "v1", "PersistentVolumeClaim"),
    ("", "v1", "Pod"),
    ("snapshot.storage.k8s.io", "v1", "VolumeSnapshot"),
];

/// Kinds found through discovery, kept across rounds: (apiVersion, kind) → (resource,
/// namespaced). Only found kinds are kept, so a CRD installed later is found then.
type Kinds = Arc<Mutex<BTreeMap<(String, String), (ApiResource, bool)>>>;

/// Starts the protection controllers and the garbage collector.
pub fn start(client: Client) -> Actors {
    let mut actors = Actors::default();
    let kinds = Kinds::default();
    actors.spawn("controller-manager", move || {
        round(client.clone(), Arc::clone(&kinds))
    });
    actors
}

async fn round(client: Client, kinds: Kinds) -> anyhow::Result<()> {
    bind_prebound(&client).await?;
    pvc_protection(&client).await?;
    pv_protection(&client).await?;
    super::workloads::round(&client).await?;
    collect_garbage(&client, &kinds).await
}

/// The finalizers without `finalizer`, as a merge patch that fails if the object changed.
fn without(object: &impl ResourceExt, finalizer: &str) -> Patch<serde_json::Value> {
    let rest: Vec<&String> = object
        .finalizers()
        .iter()
        .filter(|f| *f != finalizer)
        .collect();
    Patch::Merge(json!({"metadata": {
        "finalizers": rest, "resourceVersion": object.resource_version(),
    }}))
}

/// Whether a Pod that has not finished mounts the claim.
fn uses(pod: &Pod, claim: &str) -> bool {
    let finished = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    !finished
        && pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.as_ref())
            .is_some_and(|volumes| {
                volumes.iter().any(|v| {
                    v.persistent_volume_claim
                        .as_ref()
                        .is_some_and(|c| c.claim_name == claim)
                })
            })
}

/// The PV controller's static binding: a Pending claim that names its volume
/// (`spec.volumeName`) is bound to it when the volume is free or reserved for this claim
/// (`claimRef` naming it, with no uid or this claim's); both become Bound. Dynamic provisioning
/// is the provisioner actor's.
async fn bind_prebound(client: &Client) -> anyhow::Result<()> {
    let claims = Api::<PersistentVolumeClaim>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let volumes = Api::<PersistentVolume>::all(client.clone());
    for claim in &claims {
        let pending = claim.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound");
        let Some(volume) = claim.spec.as_ref().and_then(|s| s.volume_name.clone()) else {
            continue;
        };
        if !pending || claim.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(pv) = volumes.get_opt(&volume).await? else {
            continue;
        };
        let namespace = claim.namespace().unwrap_or_default();
        let reserved = match pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
            None => true,
            Some(r) => {
                r.namespace.as_deref() == Some(namespace.as_str())
                    && r.name.as_deref() == Some(claim.name_any().as_str())
                    && r.uid
                        .as_deref()
                        .is_none_or(|u| Some(u) == claim.uid().as_deref())
            }
        };
        if !reserved {
            continue;
        }
        let spec = pv.spec.clone().unwrap_or_default();
        volumes
            .patch(
                &volume,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
                    "namespace": namespace, "name": claim.name_any(), "uid": claim.uid()}}})),
            )
            .await?;
        mark_bound(
            client,
            &volume,
            claim,
            json!({"metadata": {"annotations": {"pv.kubernetes.io/bind-completed": "yes"}}}),
            json!({"accessModes": spec.access_modes, "capacity": spec.capacity}),
        )
        .await?;
    }
    Ok(())
}

/// The end of a binding, dynamic or static: the volume and the claim Bound, the claim patched
/// with `claim_patch` (annotations, its volumeName) and its status given `status` (access modes,
/// capacity).
pub(crate) async fn mark_bound(
    client: &Client,
    volume: &str,
    claim: &PersistentVolumeClaim,
    claim_patch: serde_json::Value,
    mut status: serde_json::Value,
) -> anyhow::Result<()> {
    Api::<PersistentVolume>::all(client.clone())
        .patch_status(
            volume,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Bound"}})),
        )
        .await?;
    let claims = Api::<PersistentVolumeClaim>::namespaced(
        client.clone(),
        &claim.namespace().unwrap_or_default(),
    );
    claims
        .patch(
            &claim.name_any(),
            &PatchParams::default(),
            &Patch::Merge(claim_patch),
        )
        .await?;
    status["phase"] = json!("Bound");
    claims
        .patch_status(
            &claim.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await?;
    Ok(())
}

async fn pvc_protection(client: &Client) -> anyhow::Result<()> {
    let claims = Api::<PersistentVolumeClaim>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    for claim in claims.iter().filter(|c| {
        c.metadata.deletion_timestamp.is_some()
            && c.finalizers().iter().any(|f| f == PVC_PROTECTION)
    }) {
        let namespace = claim.namespace().unwrap_or_default();
        let pods = Api::<Pod>::namespaced(client.clone(), &namespace)
            .list(&ListParams::default())
            .await?
            .items;
        if pods.iter().any(|p| uses(p, &claim.name_any())) {
            continue;
        }
        // A conflict (the claim changed meanwhile) is tried again next round.
        let _ = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &namespace)
            .patch(
                &claim.name_any(),
                &PatchParams::default(),
                &without(claim, PVC_PROTECTION),
            )
            .await;
    }
    Ok(())
}

async fn pv_protection(client: &Client) -> anyhow::Result<()> {
    let volumes = Api::<PersistentVolume>::all(client.clone());
    for pv in volumes.list(&ListParams::default()).await?.items {
        let deleting = pv.metadata.deletion_timestamp.is_some()
            && pv.finalizers().iter().any(|f| f == PV_PROTECTION);
        let bound = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
        if deleting && !bound {
            let _ = volumes
                .patch(
                    &pv.name_any(),
                    &PatchParams::default(),
                    &without(&pv, PV_PROTECTION),
                )
                .await;
        }
    }
    Ok(())
}

/// The API resource of a kind (and whether it is namespaced), found once through discovery.
async fn resolve(
    client: &Client,
    kinds: &Kinds,
    api_version: &str,
    kind: &str,
) -> Option<(ApiResource, bool)> {
    let key = (api_version.to_owned(), kind.to_owned());
    if let Some(found) = kinds.lock().expect("kinds lock").get(&key) {
        return Some(found.clone());
    }
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let found = kube::discovery::pinned_kind(client, &gvk)
        .await
        .ok()
        .map(|(resource, caps)| (resource, caps.scope == Scope::Namespaced))?;
    kinds.lock().expect("kinds lock").insert(key, found.clone());
    Some(found)
}

/// Deletes every object of [`COLLECTED`] kinds whose owners are all gone (not found, or a
/// different object of the same name: another uid).
async fn collect_garbage(client: &Client, kinds: &Kinds) -> anyhow::Result<()> {
    let mut live: BTreeMap<(String, String, String, String), Option<String>> = BTreeMap::new();
    for (group, version, kind) in COLLECTED {
        let Some((resource, _)) = resolve(client, kinds, &api_version(group, version), kind).await
        else {
            continue; // not served here (e.g. no snapshot CRDs)
        };
        let objects = Api::<DynamicObject>::all_with(client.clone(), &resource)
            .list(&ListParams::default())
            .await?
            .items;
        for object in objects.iter().filter(|o| !o.owner_references().is_empty()) {
            let namespace = object.namespace().unwrap_or_default();
            let mut orphan = true;
            for owner in object.owner_references() {
                let Some((owner_resource, namespaced)) =
                    resolve(client, kinds, &owner.api_version, &owner.kind).await
                else {
                    orphan = false; // an owner of a kind we cannot resolve: keep the object
                    break;
                };
                let scope = if namespaced {
                    namespace.clone()
                } else {
                    String::new()
                };
                let key = (
                    owner.api_version.clone(),
                    owner.kind.clone(),
                    scope.clone(),
                    owner.name.clone(),
                );
                let uid = match live.get(&key) {
                    Some(uid) => uid.clone(),
                    None => {
                        let api = if namespaced {
                            Api::<DynamicObject>::namespaced_with(
                                client.clone(),
                                &scope,
                                &owner_resource,
                            )
                        } else {
                            Api::<DynamicObject>::all_with(client.clone(), &owner_resource)
                        };
                        let uid = api.get_opt(&owner.name).await?.and_then(|o| o.uid());
                        live.insert(key, uid.clone());
                        uid
                    }
                };
                if uid.as_deref() == Some(owner.uid.as_str()) {
                    orphan = false;
                    break;
                }
            }
            if orphan && object.metadata.deletion_timestamp.is_none() {
                let api =
                    Api::<DynamicObject>::namespaced_with(client.clone(), &namespace, &resource);
                tracing::debug!(kind = %kind, namespace = %namespace, name = %object.name_any(), "collecting an orphan");
                let _ = api
                    .delete(&object.name_any(), &DeleteParams::background())
                    .await;
            }
        }
    }
    Ok(())
}

fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}
