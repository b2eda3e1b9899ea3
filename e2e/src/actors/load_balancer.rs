//! The cloud's load-balancer controller, as its visible effect: a `LoadBalancer` Service gets
//! an ingress address in its status. The address is 127.0.0.1: every Pod here runs on this
//! host's network (the kubelet stand-in), so the Pods behind the Service listen there, on the
//! Service's target port — which is how VolSync's rsync-TLS destination becomes reachable from
//! the other site's source, as through a real load balancer between two clusters.

use k8s_openapi::api::core::v1::Service;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

/// The address every load balancer gets.
pub const INGRESS_IP: &str = "127.0.0.1";

pub fn start(client: Client) -> super::Actors {
    let mut actors = super::Actors::default();
    actors.spawn("load-balancer", move || {
        let client = client.clone();
        async move { round(&client).await }
    });
    actors
}

/// One round: every `LoadBalancer` Service without an ingress gets one.
pub async fn round(client: &Client) -> anyhow::Result<()> {
    for service in Api::<Service>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
    {
        let wants = service.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer");
        let has = service
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .is_some_and(|i| !i.is_empty());
        if !wants || has {
            continue;
        }
        Api::<Service>::namespaced(client.clone(), &service.namespace().unwrap_or_default())
            .patch_status(
                &service.name_any(),
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"status": {"loadBalancer": {"ingress": [{"ip": INGRESS_IP}]}}}),
                ),
            )
            .await?;
    }
    Ok(())
}
