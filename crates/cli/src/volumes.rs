//! The VolumeReplications of a namespace at one site: ask for a role, and wait until the
//! controller reports it reached that role for the current spec.

use std::time::Instant;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use lifeline_api::replication::{
    CurrentState, DataSourceKind, ReplicationState, VolumeGroupReplication, VolumeReplication,
};
use serde_json::json;

use crate::error::Error;
use crate::progress::{POLL, STILL_WAITING, Steps};

/// Every VolumeReplication in `namespace` at the site.
pub async fn list(
    client: &Client,
    site: &str,
    namespace: &str,
) -> Result<Vec<VolumeReplication>, Error> {
    Ok(
        Api::<VolumeReplication>::namespaced(client.clone(), namespace)
            .list(&Default::default())
            .await
            .map_err(Error::api(site))?
            .items,
    )
}

/// Asks for `state` (a merge patch of `spec.replicationState`) unless the spec already asks for
/// it; `true` if it patched. Never asks twice: a rerun after an interruption sees the spec.
pub async fn ask(
    client: &Client,
    site: &str,
    vr: &VolumeReplication,
    state: ReplicationState,
) -> Result<bool, Error> {
    if vr.spec.replication_state == state {
        return Ok(false);
    }
    let namespace = vr.namespace().unwrap_or_default();
    if DataSourceKind::of(&vr.spec.data_source) == Some(DataSourceKind::VolumeGroupReplication) {
        // A group's VolumeReplication follows its VolumeGroupReplication: ask the group.
        Api::<VolumeGroupReplication>::namespaced(client.clone(), &namespace)
            .patch(
                &vr.spec.data_source.name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicationState": state.as_str()}})),
            )
            .await
            .map_err(Error::api(site))?;
        return Ok(true);
    }
    Api::<VolumeReplication>::namespaced(client.clone(), &vr.namespace().unwrap_or_default())
        .patch(
            &vr.name_any(),
            &PatchParams::default(),
            // The resourceVersion makes it fail if someone else changed it meanwhile.
            &Patch::Merge(json!({
                "metadata": {"resourceVersion": vr.resource_version()},
                "spec": {"replicationState": state.as_str()},
            })),
        )
        .await
        .map_err(Error::api(site))?;
    Ok(true)
}

/// What "done" means for a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// The controller reports `state` for the current generation and Completed True.
    In(CurrentState),
    /// As `In`, and the copy is healthy: Degraded False and not Resyncing (a demoted primary
    /// has resynced from its peer).
    Healthy(CurrentState),
    /// The demote itself succeeded: Secondary for the current generation, Completed True, or
    /// Completed False because the resync after it waits for the peer to be promoted (which a
    /// planned switch does next). The controller records Secondary only once the driver
    /// demoted the volume, its final sync shipped; the resync retries every second, so Completed
    /// flips between the two until the peer is primary, and a wait for True alone could miss it.
    Demoted,
}

impl Settled {
    /// What is waited for, in words.
    pub fn describe(self) -> String {
        match self {
            Settled::In(state) => format!("{} (Completed)", state.as_str()),
            Settled::Healthy(state) => {
                format!("{}, not Degraded, not Resyncing", state.as_str())
            }
            Settled::Demoted => "Secondary (demoted, its final sync shipped)".to_owned(),
        }
    }
}

/// Whether the VolumeReplication is settled as `want` says. Pure.
pub fn settled(vr: &VolumeReplication, want: Settled) -> bool {
    let Some(status) = &vr.status else {
        return false;
    };
    let is = |type_: &str, value: &str| {
        status
            .conditions
            .iter()
            .any(|c| c.type_ == type_ && c.status == value)
    };
    let (state, healthy) = match want {
        Settled::In(s) => (s, false),
        Settled::Healthy(s) => (s, true),
        Settled::Demoted => {
            let waiting_for_peer = status.conditions.iter().any(|c| {
                c.type_ == "Completed" && c.status == "False" && c.reason == "FailedToResync"
            });
            return status.state() == Some(CurrentState::Secondary)
                && status.observed_generation == vr.metadata.generation
                && (is("Completed", "True") || waiting_for_peer);
        }
    };
    status.state() == Some(state)
        && status.observed_generation == vr.metadata.generation
        && is("Completed", "True")
        && (!healthy || (is("Degraded", "False") && !is("Resyncing", "True")))
}

/// What a VolumeReplication says now, for a progress line.
fn describe(vr: &VolumeReplication) -> String {
    let Some(status) = &vr.status else {
        return "no status yet".into();
    };
    let mut facts = vec![format!(
        "state {}",
        status.state.as_ref().map(|s| s.as_str()).unwrap_or("-")
    )];
    for c in &status.conditions {
        if c.status == "True" || c.type_ == "Completed" {
            facts.push(format!("{}={} ({})", c.type_, c.status, c.reason));
        }
    }
    facts.join(", ")
}

/// Waits until every VolumeReplication named in `names` is settled as `want` says, saying
/// what each reports while it waits. The caller's timeout bounds it.
pub async fn wait(
    client: &Client,
    site: &str,
    namespace: &str,
    names: &[String],
    want: Settled,
    steps: &Steps,
) -> Result<(), Error> {
    let api = Api::<VolumeReplication>::namespaced(client.clone(), namespace);
    steps.wait_for(format!(
        "site {site} reports {} {}",
        names.join(", "),
        want.describe()
    ));
    let mut last_said = Instant::now();
    loop {
        let mut waiting = Vec::new();
        for name in names {
            match api.get_opt(name).await.map_err(Error::api(site))? {
                Some(vr) if settled(&vr, want) => {}
                Some(vr) => waiting.push(format!("{name}: {}", describe(&vr))),
                None => {
                    return Err(Error::Refused(format!(
                        "site {site}: VolumeReplication {namespace}/{name} was deleted while waiting"
                    )));
                }
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if last_said.elapsed() >= STILL_WAITING {
            steps.still(format!(
                "site {site}: still waiting; {}",
                waiting.join("; ")
            ));
            last_said = Instant::now();
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vr(yaml_status: &str, generation: i64) -> VolumeReplication {
        serde_saphyr::from_str(&format!(
            "apiVersion: replication.storage.openshift.io/v1alpha1\nkind: VolumeReplication\nmetadata: {{name: db-replication, namespace: shop, generation: {generation}}}\nspec: {{volumeReplicationClass: mirror, replicationState: secondary, dataSource: {{kind: PersistentVolumeClaim, name: db}}}}\n{yaml_status}"
        ))
        .unwrap()
    }

    const T: &str = "lastTransitionTime: '2026-12-01T00:00:00Z'";

    #[test]
    fn demoted_is_secondary_for_this_generation_even_while_the_resync_waits_for_the_peer() {
        let waiting = format!(
            "status: {{state: Secondary, observedGeneration: 2, conditions: [{{type: Completed, status: 'False', reason: FailedToResync, message: '', {T}}}, {{type: Degraded, status: 'True', reason: Error, message: '', {T}}}]}}"
        );
        assert!(settled(&vr(&waiting, 2), Settled::Demoted));
        assert!(!settled(
            &vr(&waiting, 2),
            Settled::In(CurrentState::Secondary)
        ));
        assert!(
            !settled(&vr(&waiting, 3), Settled::Demoted),
            "an older generation"
        );
        let failed_demote = waiting.replace("reason: FailedToResync", "reason: FailedToDemote");
        assert!(!settled(&vr(&failed_demote, 2), Settled::Demoted));
        let still_primary = waiting.replace("state: Secondary", "state: Primary");
        assert!(!settled(&vr(&still_primary, 2), Settled::Demoted));
    }

    #[test]
    fn settled_needs_the_state_for_this_generation_and_completed() {
        let done = format!(
            "status: {{state: Secondary, observedGeneration: 2, conditions: [{{type: Completed, status: 'True', reason: Demoted, message: '', {T}}}, {{type: Degraded, status: 'False', reason: Healthy, message: '', {T}}}, {{type: Resyncing, status: 'False', reason: NotResyncing, message: '', {T}}}]}}"
        );
        assert!(settled(&vr(&done, 2), Settled::In(CurrentState::Secondary)));
        assert!(settled(
            &vr(&done, 2),
            Settled::Healthy(CurrentState::Secondary)
        ));
        assert!(
            !settled(&vr(&done, 3), Settled::In(CurrentState::Secondary)),
            "an older generation's state"
        );
        assert!(!settled(&vr(&done, 2), Settled::In(CurrentState::Primary)));
        assert!(!settled(&vr("", 1), Settled::In(CurrentState::Secondary)));
        let resyncing = done.replace(
            "type: Resyncing, status: 'False'",
            "type: Resyncing, status: 'True'",
        );
        assert!(settled(
            &vr(&resyncing, 2),
            Settled::In(CurrentState::Secondary)
        ));
        assert!(!settled(
            &vr(&resyncing, 2),
            Settled::Healthy(CurrentState::Secondary)
        ));
        let failed = done.replace(
            "type: Completed, status: 'True'",
            "type: Completed, status: 'False'",
        );
        assert!(!settled(
            &vr(&failed, 2),
            Settled::In(CurrentState::Secondary)
        ));
    }
}
