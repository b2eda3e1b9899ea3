//! `--ceiling`: the benchmark makes, with no controller, the object and status writes a
//! controller makes per VolumeReplication — as Lifeline makes them (merge-patched finalizers,
//! the claim's finalizer and owner annotation, a server-side-applied status, one
//! `events.k8s.io/v1` Event) — as fast as the API server takes them, with as many requests in
//! flight as a controller run has (the benchmark's 32 and the controller's reconciles). The
//! rate it reaches is this machine's limit for that work, within its run-to-run spread.

use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use lifeline_api::replication::{
    PVC_FINALIZER, PVC_OWNER_ANNOTATION, VR_FINALIZER, VolumeReplication,
};

/// The field manager the ceiling writes as.
const MANAGER: &str = "lifeline-bench-ceiling";

/// The status a controller writes once a volume is `state` (`Primary`/`Secondary`).
pub fn status(state: &str, generation: i64, now: &str) -> Value {
    let condition = |type_: &str, status: &str, reason: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": "",
               "observedGeneration": generation, "lastTransitionTime": now})
    };
    let (completed, degraded, resyncing) = if state == "Primary" {
        ("Promoted", "Healthy", "NotResyncing")
    } else {
        ("Demoted", "Healthy", "NotResyncing")
    };
    json!({
        "apiVersion": "replication.storage.openshift.io/v1alpha1",
        "kind": "VolumeReplication",
        "status": {
            "state": state,
            "message": format!("volume is {}", state.to_lowercase()),
            "observedGeneration": generation,
            "lastStartTime": now,
            "lastCompletionTime": now,
            "conditions": [
                condition("Completed", "True", completed),
                condition("Degraded", "False", degraded),
                condition("Resyncing", "False", resyncing),
            ],
        }
    })
}

/// The Event a controller publishes for a transition of `vr`.
pub fn event(namespace: &str, vr: &str, uid: &str, reason: &str, now: &str) -> Value {
    json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"generateName": format!("{vr}-"), "namespace": namespace},
        "eventTime": now,
        "reportingController": MANAGER,
        "reportingInstance": MANAGER,
        "action": "Reconcile",
        "reason": reason,
        "type": "Normal",
        "note": format!("volume is {}", reason.to_lowercase()),
        "regarding": {"apiVersion": "replication.storage.openshift.io/v1alpha1",
                      "kind": "VolumeReplication", "namespace": namespace, "name": vr, "uid": uid},
    })
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
        .to_string()
}

/// What a controller writes when `vr` (just created, generation 1) becomes primary: its
/// finalizer, the claim's finalizer and owner annotation, the status, one Event.
pub async fn to_primary(
    client: &Client,
    namespace: &str,
    vr: &VolumeReplication,
    claim: &str,
) -> Result<(), kube::Error> {
    let name = vr.metadata.name.clone().unwrap_or_default();
    let uid = vr.metadata.uid.clone().unwrap_or_default();
    let vrs = Api::<VolumeReplication>::namespaced(client.clone(), namespace);
    let params = PatchParams {
        field_manager: Some(MANAGER.into()),
        ..PatchParams::default()
    };
    vrs.patch(
        &name,
        &params,
        &Patch::Merge(json!({"metadata": {"finalizers": [VR_FINALIZER]}})),
    )
    .await?;
    Api::<k8s_openapi::api::core::v1::PersistentVolumeClaim>::namespaced(client.clone(), namespace)
        .patch(
            claim,
            &params,
            &Patch::Merge(json!({"metadata": {
            "finalizers": [PVC_FINALIZER],
            "annotations": {PVC_OWNER_ANNOTATION: name}}})),
        )
        .await?;
    finish(client, namespace, &name, &uid, "Primary", 1).await
}

/// What a controller writes when `vr` becomes `state` at `generation`: the status, one Event.
pub async fn finish(
    client: &Client,
    namespace: &str,
    name: &str,
    uid: &str,
    state: &str,
    generation: i64,
) -> Result<(), kube::Error> {
    let now = now();
    Api::<VolumeReplication>::namespaced(client.clone(), namespace)
        .patch_status(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(status(state, generation, &now)),
        )
        .await?;
    let event: k8s_openapi::api::events::v1::Event =
        serde_json::from_value(event(namespace, name, uid, state, &now))
            .map_err(kube::Error::SerdeError)?;
    Api::<k8s_openapi::api::events::v1::Event>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &event)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_api::replication::{CurrentState, VolumeReplicationStatus};

    /// The benchmark waits for what it waits for of a controller: the state, the generation
    /// observed, `Completed=True`.
    #[test]
    fn the_written_status_is_what_the_benchmark_waits_for() {
        for (state, expected) in [
            ("Primary", CurrentState::Primary),
            ("Secondary", CurrentState::Secondary),
        ] {
            let written = status(state, 2, "2026-12-03T04:00:00.000000Z");
            let parsed: VolumeReplicationStatus =
                serde_json::from_value(written["status"].clone()).unwrap();
            assert_eq!(parsed.state(), Some(expected));
            assert_eq!(parsed.observed_generation, Some(2));
            assert!(
                parsed
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Completed" && c.status == "True")
            );
        }
        let e: k8s_openapi::api::events::v1::Event =
            serde_json::from_value(event("ns", "vr-1", "u", "Primary", &now())).unwrap();
        assert_eq!(e.regarding.unwrap().name.as_deref(), Some("vr-1"));
    }
}
