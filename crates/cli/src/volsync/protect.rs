//! `kubectl lifeline protect --method volsync|auto --interval 5m`: a VolSync rsync-TLS pair per
//! chosen claim — the pre-shared key Secret at both sites (made here, never printed), the
//! standby's claim and a ReplicationDestination into it at `--to`, then, once the destination
//! has an address, the claim's role and a ReplicationSource at `--from`. Idempotent.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use lifeline_api::foreign::snapshot::VolumeSnapshotClass;
use lifeline_api::replication::{VolumeReplication, VolumeReplicationClass};
use serde_json::{Value, json};

use super::build::{self, Method, Selection};
use super::settings::{ServiceType, Settings};
use super::switch::{At, ensure_destination, ensure_source};
use super::{PSK_KEY, PSK_SECRET, ROLE, Role};
use crate::error::Error;
use crate::progress::Steps;
use crate::protect::{Applied, create_or_keep};

/// What `protect` does for VolSync in a namespace.
#[derive(Clone, Debug)]
pub struct Plan {
    pub namespace: String,
    pub settings: Option<Settings>,
    /// The primary's claims that get a pair.
    pub claims: Vec<PersistentVolumeClaim>,
    /// Claims left unprotected, and why.
    pub left: Vec<(String, String)>,
}

/// Reads the primary's claims, VolumeReplications and classes; chooses and checks the claims.
pub async fn plan(
    source: &Client,
    site: &str,
    namespace: &str,
    method: Method,
    interval: Option<Duration>,
    service_type: ServiceType,
) -> Result<Plan, Error> {
    let api = Error::api(site);
    let claims = Api::<PersistentVolumeClaim>::namespaced(source.clone(), namespace)
        .list(&Default::default())
        .await
        .map_err(api)?;
    let vrs = Api::<VolumeReplication>::namespaced(source.clone(), namespace)
        .list(&Default::default())
        .await
        .map_err(Error::api(site))?;
    let replicated: BTreeSet<String> = vrs
        .items
        .iter()
        .filter(|v| v.spec.data_source.kind == "PersistentVolumeClaim")
        .map(|v| v.spec.data_source.name.clone())
        .collect();
    let drivers_with_replication: BTreeSet<String> =
        Api::<VolumeReplicationClass>::all(source.clone())
            .list(&Default::default())
            .await
            .map_err(Error::api(site))?
            .items
            .iter()
            .map(|c| c.spec.provisioner.clone())
            .collect();
    let volumes = Api::<PersistentVolume>::all(source.clone());
    let mut with_drivers = Vec::new();
    for claim in claims.items {
        let volume = match claim.spec.as_ref().and_then(|s| s.volume_name.clone()) {
            Some(name) => volumes.get_opt(&name).await.map_err(Error::api(site))?,
            None => None,
        };
        let driver = volume
            .as_ref()
            .and_then(|v| v.spec.as_ref()?.csi.as_ref())
            .map(|c| c.driver.clone());
        with_drivers.push((claim, driver, volume));
    }
    let listed: Vec<(PersistentVolumeClaim, Option<String>)> = with_drivers
        .iter()
        .map(|(c, d, _)| (c.clone(), d.clone()))
        .collect();
    let Selection { volsync, left } = build::select(
        method,
        interval.is_some(),
        &listed,
        &replicated,
        &drivers_with_replication,
    );
    let settings = match (volsync.is_empty(), interval) {
        (true, _) => None,
        (false, None) => {
            return Err(Error::Usage(
                "--method volsync needs --interval (e.g. 5m): how often each claim syncs".into(),
            ));
        }
        (false, Some(interval)) => {
            super::settings::schedule(interval).map_err(Error::Usage)?;
            Some(Settings {
                interval,
                service_type,
            })
        }
    };
    let classes = Api::<VolumeSnapshotClass>::all(source.clone())
        .list(&Default::default())
        .await
        .map_err(Error::api(site))?;
    let mut chosen = Vec::new();
    for (claim, _, volume) in with_drivers
        .into_iter()
        .filter(|(c, _, _)| volsync.contains(&c.name_any()))
    {
        let driver = build::driver(&claim, volume.as_ref())?;
        if build::snapshot_class(&driver, &classes.items).is_none() {
            return Err(Error::Refused(format!(
                "{namespace}/{}: site {site} has no VolumeSnapshotClass for driver {driver}; VolSync's source pushes a snapshot of the claim: create one",
                claim.name_any()
            )));
        }
        chosen.push(claim);
    }
    Ok(Plan {
        namespace: namespace.to_owned(),
        settings,
        claims: chosen,
        left,
    })
}

fn key_of(secret: &Secret) -> Option<Vec<u8>> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(PSK_KEY))
        .map(|b| b.0.clone())
}

/// The key Secret both sites hold: theirs if one has it, a new one if neither does. Refused
/// when they hold different keys (the pairs of the namespace could not connect).
async fn key_secret(
    (source, from): (&Client, &str),
    (target, to): (&Client, &str),
    namespace: &str,
) -> Result<(Option<Secret>, Option<Secret>, Secret), Error> {
    let at_source = Api::<Secret>::namespaced(source.clone(), namespace)
        .get_opt(PSK_SECRET)
        .await
        .map_err(Error::api(from))?;
    let at_target = Api::<Secret>::namespaced(target.clone(), namespace)
        .get_opt(PSK_SECRET)
        .await
        .map_err(Error::api(to))?;
    let template = |key: &[u8]| -> Secret {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": PSK_SECRET, "namespace": namespace,
                         "labels": {super::MANAGED_BY.0: super::MANAGED_BY.1}},
            "type": "Opaque",
            "data": {PSK_KEY: k8s_openapi::ByteString(key.to_vec())},
        }))
        .expect("a Secret")
    };
    let keys = (
        at_source.as_ref().map(key_of),
        at_target.as_ref().map(key_of),
    );
    let secret = match keys {
        (Some(Some(a)), Some(Some(b))) if a != b => {
            return Err(Error::Refused(format!(
                "Secret {namespace}/{PSK_SECRET} holds different keys at sites {from} and {to}; delete it at the standby ({to}) and run protect again"
            )));
        }
        (Some(None), _) | (_, Some(None)) => {
            return Err(Error::Refused(format!(
                "Secret {namespace}/{PSK_SECRET} has no {PSK_KEY} key at one of the sites; delete it there and run protect again"
            )));
        }
        (Some(Some(key)), _) | (None, Some(Some(key))) => template(&key),
        (None, None) => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|e| {
                Error::Usage(format!(
                    "cannot make a pre-shared key: no system randomness ({e})"
                ))
            })?;
            build::psk_secret(namespace, &key)
        }
    };
    Ok((at_source, at_target, secret))
}

/// The objects a dry run shows (the key never: only that there is one).
pub fn objects(plan: &Plan, now: Timestamp) -> Vec<Value> {
    let Some(settings) = plan.settings else {
        return Vec::new();
    };
    let mut out = vec![json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": PSK_SECRET, "namespace": plan.namespace},
        "data": {PSK_KEY: "(a new 32-byte key, never printed)"}})];
    for claim in &plan.claims {
        let name = claim.name_any();
        out.push(
            serde_json::to_value(build::standby_claim(claim, &settings, now)).expect("serializes"),
        );
        out.push(
            serde_json::to_value(build::destination(&plan.namespace, &name, &settings))
                .expect("serializes"),
        );
        if let Ok(source) = build::source(
            &plan.namespace,
            &name,
            &settings,
            "(the driver's VolumeSnapshotClass)",
            "(the destination's address)",
            None,
        ) {
            out.push(serde_json::to_value(source).expect("serializes"));
        }
    }
    out
}

/// Creates what is missing at both sites, in an order that never leaves a source pushing to
/// nowhere: key, standby claim, destination (its address waited for), then the primary's role
/// and source. With `dry_run` the API servers check each creation and store nothing; the
/// source is not tried (it needs the destination's address).
pub async fn apply(
    (source, from): (&Client, &str),
    (target, to): (&Client, &str),
    plan: &Plan,
    dry_run: bool,
    steps: &Steps,
) -> Result<Vec<Applied>, Error> {
    let Some(settings) = plan.settings else {
        return Ok(Vec::new());
    };
    let namespace = plan.namespace.as_str();
    let mut out = Vec::new();
    let mut note = |site: &str, kind: &str, name: &str, created: bool| {
        out.push(Applied {
            site: site.to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
            created,
        });
    };
    let (at_source, at_target, secret) =
        key_secret((source, from), (target, to), namespace).await?;
    for (client, site, existing) in [(source, from, &at_source), (target, to, &at_target)] {
        let created = existing.is_none()
            && create_or_keep(
                &Api::namespaced(client.clone(), namespace),
                &secret,
                dry_run,
            )
            .await
            .map_err(Error::api(site))?;
        note(site, "Secret", PSK_SECRET, created);
    }
    let now = Timestamp::now();
    let standby = At {
        client: target,
        site: to,
        namespace,
    };
    let primary = At {
        client: source,
        site: from,
        namespace,
    };
    for claim in &plan.claims {
        let name = claim.name_any();
        let claims = Api::<PersistentVolumeClaim>::namespaced(target.clone(), namespace);
        if let Some(there) = claims.get_opt(&name).await.map_err(Error::api(to))? {
            if there.annotations().get(ROLE).map(String::as_str) == Some(Role::Primary.as_str()) {
                return Err(Error::Refused(format!(
                    "{namespace}/{name}: site {to} holds it as primary; protect from the site that is primary (`kubectl lifeline status -n {namespace}`)"
                )));
            }
            if there.annotations().get(ROLE).is_none() {
                // A claim made ahead of time: it becomes the standby's.
                claims
                    .patch(&name, &PatchParams { dry_run, ..Default::default() },
                        &Patch::Merge(json!({"metadata": {"annotations": build::role_annotations(Role::Secondary, &settings, now)}})))
                    .await
                    .map_err(Error::api(to))?;
            }
            note(to, "PersistentVolumeClaim", &name, false);
        } else {
            let created = create_or_keep(
                &claims,
                &build::standby_claim(claim, &settings, now),
                dry_run,
            )
            .await
            .map_err(Error::api(to))?;
            note(to, "PersistentVolumeClaim", &name, created);
        }
        let destinations = Api::namespaced(target.clone(), namespace);
        let created = create_or_keep(
            &destinations,
            &build::destination(namespace, &name, &settings),
            dry_run,
        )
        .await
        .map_err(Error::api(to))?;
        note(to, "ReplicationDestination", &name, created);
        if dry_run {
            continue;
        }
        let address = ensure_destination(standby, &name, &settings, steps).await?;
        if claim.annotations().get(ROLE).map(String::as_str) != Some(Role::Primary.as_str()) {
            Api::<PersistentVolumeClaim>::namespaced(source.clone(), namespace)
                .patch(&name, &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"annotations": build::role_annotations(Role::Primary, &settings, now)}})))
                .await
                .map_err(Error::api(from))?;
        }
        let created =
            ensure_source(primary, &name, &settings, (&address.0, address.1), false).await?;
        note(from, "ReplicationSource", &name, created);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dry_run_shows_every_object_but_never_a_key() {
        let claim: PersistentVolumeClaim = serde_saphyr::from_str(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: db, namespace: shop}\nspec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}, volumeName: pv-1}",
        )
        .unwrap();
        let plan = Plan {
            namespace: "shop".into(),
            settings: Some(Settings {
                interval: Duration::from_secs(300),
                service_type: ServiceType::LoadBalancer,
            }),
            claims: vec![claim],
            left: Vec::new(),
        };
        let objects = objects(&plan, Timestamp::now());
        let kinds: Vec<&str> = objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "Secret",
                "PersistentVolumeClaim",
                "ReplicationDestination",
                "ReplicationSource"
            ]
        );
        assert_eq!(
            objects[0]["data"][PSK_KEY],
            "(a new 32-byte key, never printed)"
        );
        assert!(
            !serde_json::to_string(&objects)
                .unwrap()
                .contains("volsync:")
        );
        let none = Plan {
            settings: None,
            ..plan
        };
        assert!(super::objects(&none, Timestamp::now()).is_empty());
    }
}
