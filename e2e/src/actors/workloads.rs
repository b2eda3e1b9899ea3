//! kube-controller-manager's Deployment and StatefulSet controllers, with a kubelet's visible
//! effect, for backends without them: a workload with `spec.replicas: N` gets N Running Pods
//! from its template (so "which Pods mount this claim" has an answer), extra Pods are deleted
//! when it scales down, and its status counts them.
//!
//! Knowingly simpler: no ReplicaSets (a Deployment owns its Pods directly), Pods are named
//! `NAME-0 … NAME-(N-1)` for both kinds, start Running and Ready at once (no containers run)
//! and go at once when deleted (no grace period); a template change does not roll Pods. Their
//! Pods name a scheduler no one runs, so kube-scheduler never binds them and the kubelet
//! stand-in never runs them: the runbook needs their count and their claims, not a process.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

/// The scheduler the workloads' Pods name, which no one runs.
pub const UNSCHEDULED: &str = "lifeline-e2e-not-scheduled";

/// Runs [`round`] every [`super::TICK`] until dropped.
pub fn start(client: Client) -> super::Actors {
    let mut actors = super::Actors::default();
    actors.spawn("workloads", move || {
        let client = client.clone();
        async move { round(&client).await }
    });
    actors
}

/// One round over every Deployment and StatefulSet.
pub async fn round(client: &Client) -> anyhow::Result<()> {
    for d in Api::<Deployment>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
    {
        let spec = d.spec.clone().unwrap_or_default();
        reconcile(client, &d, spec.replicas.unwrap_or(1), &spec.template).await?;
    }
    for s in Api::<StatefulSet>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
    {
        let spec = s.spec.clone().unwrap_or_default();
        reconcile(client, &s, spec.replicas.unwrap_or(1), &spec.template).await?;
    }
    Ok(())
}

async fn reconcile<K>(
    client: &Client,
    workload: &K,
    replicas: i32,
    template: &PodTemplateSpec,
) -> anyhow::Result<()>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    if workload.meta().deletion_timestamp.is_some() {
        return Ok(());
    }
    let namespace = workload.namespace().unwrap_or_default();
    let name = workload.name_any();
    let uid = workload.uid().unwrap_or_default();
    let pods = Api::<Pod>::namespaced(client.clone(), &namespace);
    let owned: Vec<Pod> = pods
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|p| p.owner_references().iter().any(|o| o.uid == uid))
        .collect();
    let wanted: Vec<String> = (0..replicas.max(0))
        .map(|i| format!("{name}-{i}"))
        .collect();
    for pod in &owned {
        if !wanted.contains(&pod.name_any()) && pod.metadata.deletion_timestamp.is_none() {
            let _ = pods.delete(&pod.name_any(), &DeleteParams::default()).await;
        }
    }
    for pod_name in &wanted {
        if owned.iter().any(|p| &p.name_any() == pod_name) {
            continue;
        }
        let meta = template.metadata.clone().unwrap_or_default();
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {
                "name": pod_name,
                "labels": meta.labels,
                "annotations": meta.annotations,
                "ownerReferences": [{
                    "apiVersion": K::api_version(&()), "kind": K::kind(&()),
                    "name": name, "uid": uid, "controller": true,
                }],
            },
            "spec": template.spec,
        }))?;
        let mut pod = pod;
        if let Some(spec) = pod.spec.as_mut() {
            spec.scheduler_name = Some(UNSCHEDULED.to_owned());
        }
        match pods.create(&PostParams::default(), &pod).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
        // The kubelet's part: the Pod runs (nothing runs; the claim counts as mounted).
        pods.patch_status(
            pod_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}]}})),
        )
        .await?;
    }
    let ready = wanted.len();
    let status = json!({
        "observedGeneration": workload.meta().generation,
        "replicas": ready, "readyReplicas": ready, "availableReplicas": ready,
        "updatedReplicas": ready,
    });
    let current = serde_json::to_value(workload)?;
    let unchanged = status
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| current["status"].get(k).unwrap_or(&json!(0)) == v);
    if !unchanged {
        Api::<K>::namespaced(client.clone(), &namespace)
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await?;
    }
    Ok(())
}
