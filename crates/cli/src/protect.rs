//! `kubectl lifeline protect --from a --to b`: the standby side of every VolumeReplication in a
//! namespace, set up ahead of time (the Rook guide's "backup & restore PV/PVC" step), so a
//! disaster failover never depends on the lost site: the VolumeReplicationClass, a static
//! PersistentVolume per volume (same CSI driver and volumeHandle, `Retain`, pre-bound to the new
//! claim), the claim bound to it, and a VolumeReplication with `replicationState: secondary`.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Secret};
use kube::api::PostParams;
use kube::{Api, Client, ResourceExt};
use lifeline_api::replication::{ReservedKey, VolumeReplication, VolumeReplicationClass};
use serde_json::{Value, json};

use crate::error::Error;

/// The objects the standby site needs for one VolumeReplication of the source site.
#[derive(Clone, Debug)]
pub struct Standby {
    pub class: VolumeReplicationClass,
    pub volume: PersistentVolume,
    pub claim: PersistentVolumeClaim,
    pub replication: VolumeReplication,
    /// The Secret (namespace, name) the class names, which must already exist at the standby.
    pub secret: Option<(String, String)>,
}

impl Standby {
    /// Every object, in the order they are created, as JSON.
    pub fn objects(&self) -> Vec<Value> {
        [
            serde_json::to_value(&self.class),
            serde_json::to_value(&self.volume),
            serde_json::to_value(&self.claim),
            serde_json::to_value(&self.replication),
        ]
        .into_iter()
        .map(|v| v.expect("typed objects serialize"))
        .collect()
    }
}

fn parse<K: serde::de::DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).expect("built from a typed object")
}

/// Builds the standby's objects from the source's VolumeReplication, its class, claim and
/// volume. Pure; refuses what cannot be mirrored, saying why.
pub fn standby(
    vr: &VolumeReplication,
    class: &VolumeReplicationClass,
    claim: &PersistentVolumeClaim,
    volume: &PersistentVolume,
) -> Result<Standby, Error> {
    let namespace = vr.namespace().unwrap_or_default();
    let refuse = |why: String| Error::Refused(format!("{namespace}/{}: {why}", vr.name_any()));
    if vr.spec.data_source.kind != "PersistentVolumeClaim" {
        return Err(refuse(format!(
            "its dataSource is a {}; protect mirrors PersistentVolumeClaims only",
            vr.spec.data_source.kind
        )));
    }
    let pv_spec = volume.spec.clone().unwrap_or_default();
    if pv_spec.csi.is_none() {
        return Err(refuse(format!(
            "PersistentVolume {} is not a CSI volume; its volumeHandle cannot be reused at the standby",
            volume.name_any()
        )));
    }
    let claim_spec = claim.spec.clone().unwrap_or_default();
    let mut pv_spec = serde_json::to_value(&pv_spec).expect("serializes");
    pv_spec["persistentVolumeReclaimPolicy"] = json!("Retain");
    // Reserved for the standby's claim of the same name; no uid: that claim is new.
    pv_spec["claimRef"] = json!({"kind": "PersistentVolumeClaim", "apiVersion": "v1",
        "namespace": namespace, "name": claim.name_any()});
    let parameters = class.spec.parameters();
    let secret = match (
        parameters.get(&ReservedKey::SecretName.key()),
        parameters.get(&ReservedKey::SecretNamespace.key()),
    ) {
        (Some(name), Some(ns)) => Some((ns.clone(), name.clone())),
        _ => None,
    };
    Ok(Standby {
        class: parse(json!({
            "apiVersion": "replication.storage.openshift.io/v1alpha1",
            "kind": "VolumeReplicationClass",
            "metadata": {"name": class.name_any(), "labels": class.labels()},
            "spec": class.spec,
        })),
        volume: parse(json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": volume.name_any(), "labels": volume.labels()},
            "spec": pv_spec,
        })),
        claim: parse(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim.name_any(), "namespace": namespace, "labels": claim.labels()},
            "spec": {
                "accessModes": claim_spec.access_modes,
                "resources": claim_spec.resources,
                "storageClassName": claim_spec.storage_class_name,
                "volumeMode": claim_spec.volume_mode,
                "volumeName": volume.name_any(),
            },
        })),
        replication: parse(json!({
            "apiVersion": "replication.storage.openshift.io/v1alpha1",
            "kind": "VolumeReplication",
            "metadata": {"name": vr.name_any(), "namespace": namespace, "labels": vr.labels()},
            "spec": {
                "volumeReplicationClass": vr.spec.volume_replication_class,
                "replicationState": "secondary",
                "dataSource": vr.spec.data_source,
                "autoResync": vr.spec.auto_resync,
                "replicationHandle": vr.spec.replication_handle,
            },
        })),
        secret,
    })
}

/// Reads every VolumeReplication in `namespace` at the source, with what it refers to.
pub async fn plan(source: &Client, site: &str, namespace: &str) -> Result<Vec<Standby>, Error> {
    let api = Error::api(site);
    let vrs = Api::<VolumeReplication>::namespaced(source.clone(), namespace)
        .list(&Default::default())
        .await
        .map_err(api)?;
    let mut out = Vec::new();
    for vr in &vrs.items {
        let missing = |what: String| {
            Error::Refused(format!(
                "{namespace}/{} at site {site}: {what} does not exist; protect copies what the source has",
                vr.name_any()
            ))
        };
        let class = Api::<VolumeReplicationClass>::all(source.clone())
            .get_opt(&vr.spec.volume_replication_class)
            .await
            .map_err(Error::api(site))?
            .ok_or_else(|| {
                missing(format!(
                    "VolumeReplicationClass {}",
                    vr.spec.volume_replication_class
                ))
            })?;
        let claim = Api::<PersistentVolumeClaim>::namespaced(source.clone(), namespace)
            .get_opt(&vr.spec.data_source.name)
            .await
            .map_err(Error::api(site))?
            .ok_or_else(|| {
                missing(format!(
                    "PersistentVolumeClaim {}",
                    vr.spec.data_source.name
                ))
            })?;
        let volume_name = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .ok_or_else(|| missing(format!("a volume bound to claim {}", claim.name_any())))?;
        let volume = Api::<PersistentVolume>::all(source.clone())
            .get_opt(&volume_name)
            .await
            .map_err(Error::api(site))?
            .ok_or_else(|| missing(format!("PersistentVolume {volume_name}")))?;
        out.push(standby(vr, &class, &claim, &volume)?);
    }
    Ok(out)
}

/// What happened to one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The site it is at.
    pub site: String,
    pub kind: String,
    pub name: String,
    pub created: bool,
}

/// Creates the object unless one of that name exists; returns whether it did (with `dry_run`,
/// whether it would). Also the VolSync pairs' ([`crate::volsync`]).
pub(crate) async fn create_or_keep<K>(
    api: &Api<K>,
    object: &K,
    dry_run: bool,
) -> Result<bool, kube::Error>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let params = PostParams {
        dry_run,
        ..PostParams::default()
    };
    match api.create(&params, object).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates what is missing at the standby (idempotent: an existing object is kept as it is).
/// Refuses before creating anything when a Secret a class names is missing there. With
/// `dry_run` the API server checks each creation and stores nothing (server-side dry run), so
/// the answer says what exists already and what would be created.
pub async fn apply(
    target: &Client,
    site: &str,
    plans: &[Standby],
    dry_run: bool,
) -> Result<Vec<Applied>, Error> {
    for plan in plans {
        if let Some((ns, name)) = &plan.secret {
            let found = Api::<Secret>::namespaced(target.clone(), ns)
                .get_metadata_opt(name)
                .await
                .map_err(Error::api(site))?;
            if found.is_none() {
                return Err(Error::Refused(format!(
                    "VolumeReplicationClass {} names Secret {ns}/{name}, which does not exist at site {site}; create it there (the driver's credentials for that site) and run protect again",
                    plan.class.name_any()
                )));
            }
        }
    }
    let mut out = Vec::new();
    for plan in plans {
        let ns = plan.claim.namespace().unwrap_or_default();
        let results = [
            (
                "VolumeReplicationClass",
                plan.class.name_any(),
                create_or_keep(&Api::all(target.clone()), &plan.class, dry_run).await,
            ),
            (
                "PersistentVolume",
                plan.volume.name_any(),
                create_or_keep(&Api::all(target.clone()), &plan.volume, dry_run).await,
            ),
            (
                "PersistentVolumeClaim",
                plan.claim.name_any(),
                create_or_keep(&Api::namespaced(target.clone(), &ns), &plan.claim, dry_run).await,
            ),
            (
                "VolumeReplication",
                plan.replication.name_any(),
                create_or_keep(
                    &Api::namespaced(target.clone(), &ns),
                    &plan.replication,
                    dry_run,
                )
                .await,
            ),
        ];
        for (kind, name, result) in results {
            out.push(Applied {
                site: site.to_owned(),
                kind: kind.to_owned(),
                name,
                created: result.map_err(Error::api(site))?,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_yaml<K: serde::de::DeserializeOwned>(yaml: &str) -> K {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn source() -> (
        VolumeReplication,
        VolumeReplicationClass,
        PersistentVolumeClaim,
        PersistentVolume,
    ) {
        (
            from_yaml(
                "apiVersion: replication.storage.openshift.io/v1alpha1\nkind: VolumeReplication\nmetadata: {name: db-replication, namespace: shop, uid: u1, resourceVersion: '7'}\nspec: {volumeReplicationClass: mirror, replicationState: primary, dataSource: {kind: PersistentVolumeClaim, name: db}, autoResync: true}\nstatus: {state: Primary}",
            ),
            from_yaml(
                "apiVersion: replication.storage.openshift.io/v1alpha1\nkind: VolumeReplicationClass\nmetadata: {name: mirror, uid: u2}\nspec: {provisioner: rbd.csi.ceph.com, parameters: {schedulingInterval: 1m, replication.storage.openshift.io/replication-secret-name: rbd, replication.storage.openshift.io/replication-secret-namespace: ceph}}",
            ),
            from_yaml(
                "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: db, namespace: shop, uid: u3, finalizers: [kubernetes.io/pvc-protection]}\nspec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 10Gi}}, storageClassName: rbd, volumeName: pvc-u3}\nstatus: {phase: Bound}",
            ),
            from_yaml(
                "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: pvc-u3, uid: u4}\nspec: {capacity: {storage: 10Gi}, accessModes: [ReadWriteOnce], persistentVolumeReclaimPolicy: Delete, storageClassName: rbd, csi: {driver: rbd.csi.ceph.com, volumeHandle: '0001-abc'}, claimRef: {kind: PersistentVolumeClaim, namespace: shop, name: db, uid: u3, resourceVersion: '5'}}\nstatus: {phase: Bound}",
            ),
        )
    }

    #[test]
    fn the_standby_reuses_the_volume_handle_retains_it_and_is_secondary() {
        let (vr, class, claim, volume) = source();
        let s = standby(&vr, &class, &claim, &volume).unwrap();
        let pv = s.volume.spec.clone().unwrap();
        assert_eq!(pv.csi.as_ref().unwrap().volume_handle, "0001-abc");
        assert_eq!(pv.csi.unwrap().driver, "rbd.csi.ceph.com");
        assert_eq!(
            pv.persistent_volume_reclaim_policy.as_deref(),
            Some("Retain")
        );
        let claim_ref = pv.claim_ref.unwrap();
        assert_eq!(
            (claim_ref.namespace.as_deref(), claim_ref.name.as_deref()),
            (Some("shop"), Some("db"))
        );
        assert_eq!(
            claim_ref.uid, None,
            "the source's claim uid means nothing at the standby"
        );
        assert!(s.volume.status.is_none() && s.volume.metadata.uid.is_none());
        let pvc = s.claim.spec.clone().unwrap();
        assert_eq!(pvc.volume_name.as_deref(), Some("pvc-u3"));
        assert!(s.claim.metadata.finalizers.is_none() && s.claim.status.is_none());
        assert_eq!(s.replication.spec.replication_state.as_str(), "secondary");
        assert_eq!(s.replication.spec.auto_resync, Some(true));
        assert!(
            s.replication.status.is_none() && s.replication.metadata.resource_version.is_none()
        );
        assert_eq!(
            serde_json::to_value(&s.class.spec).unwrap(),
            serde_json::to_value(&class.spec).unwrap()
        );
        assert_eq!(s.secret, Some(("ceph".into(), "rbd".into())));
        assert_eq!(s.objects().len(), 4);
    }

    #[test]
    fn what_cannot_be_mirrored_is_refused_with_why() {
        let (mut vr, class, claim, mut volume) = source();
        let mut spec = volume.spec.clone().unwrap();
        spec.csi = None;
        volume.spec = Some(spec);
        let error = standby(&vr, &class, &claim, &volume)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a CSI volume"), "{error}");
        vr.spec.data_source.kind = "VolumeGroupReplication".into();
        let error = standby(&vr, &class, &claim, &source().3)
            .unwrap_err()
            .to_string();
        assert!(error.contains("PersistentVolumeClaims only"), "{error}");
    }
}
