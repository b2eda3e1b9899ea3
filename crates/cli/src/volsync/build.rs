//! The objects of a VolSync rsync-TLS pair, and which claims get one. Pure: each refusal and
//! each field has a unit test on fixtures.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use lifeline_api::foreign::snapshot::VolumeSnapshotClass;
use lifeline_api::foreign::volsync::{ReplicationDestination, ReplicationSource};
use serde_json::{Value, json};

use super::settings::{Settings, schedule};
use super::{MANAGED_BY, PSK_KEY, PSK_SECRET, ROLE, ROLE_SINCE, Role, VOLSYNC_CREATED};
use crate::error::Error;

/// The annotation CSI's snapshot classes use to name the default of a driver.
const DEFAULT_SNAPSHOT_CLASS: &str = "snapshot.storage.kubernetes.io/is-default-class";

fn parse<K: serde::de::DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).expect("built from a typed object")
}

fn labels() -> Value {
    json!({ MANAGED_BY.0: MANAGED_BY.1 })
}

/// A claim's annotations for `role` at its site, set `now`.
pub fn role_annotations(
    role: Role,
    settings: &Settings,
    now: Timestamp,
) -> BTreeMap<String, String> {
    let mut out = settings.annotations();
    out.insert(ROLE.into(), role.as_str().into());
    out.insert(ROLE_SINCE.into(), now.to_string());
    out
}

/// The CSI driver of a claim VolSync can protect, or why it cannot be.
pub fn driver(
    claim: &PersistentVolumeClaim,
    volume: Option<&PersistentVolume>,
) -> Result<String, Error> {
    let what = format!(
        "{}/{}",
        claim.namespace().unwrap_or_default(),
        claim.name_any()
    );
    let spec = claim.spec.clone().unwrap_or_default();
    if spec.volume_mode.as_deref() == Some("Block") {
        return Err(Error::Refused(format!(
            "{what}: a block-mode claim; VolSync's rsync-TLS mover moves files, so --method volsync cannot protect it (replicate it with its storage's VolumeReplication)"
        )));
    }
    let Some(volume) = volume else {
        return Err(Error::Refused(format!(
            "{what}: not bound to a volume yet; protect it once it is Bound"
        )));
    };
    volume
        .spec
        .as_ref()
        .and_then(|s| s.csi.as_ref())
        .map(|c| c.driver.clone())
        .ok_or_else(|| {
            Error::Refused(format!(
                "{what}: its PersistentVolume {} is not a CSI volume; VolSync snapshots the claim through its CSI driver",
                volume.name_any()
            ))
        })
}

/// The VolumeSnapshotClass a source snapshots with: the driver's default, else its only (or
/// first by name) class.
pub fn snapshot_class(driver: &str, classes: &[VolumeSnapshotClass]) -> Option<String> {
    let mut mine: Vec<&VolumeSnapshotClass> =
        classes.iter().filter(|c| c.spec.driver == driver).collect();
    mine.sort_by_key(|c| c.name_any());
    mine.iter()
        .find(|c| {
            c.annotations()
                .get(DEFAULT_SNAPSHOT_CLASS)
                .map(String::as_str)
                == Some("true")
        })
        .or(mine.first())
        .map(|c| c.name_any())
}

/// The standby's claim: the primary's size, access and volume mode and class, written only by
/// the destination until a switch.
pub fn standby_claim(
    claim: &PersistentVolumeClaim,
    settings: &Settings,
    now: Timestamp,
) -> PersistentVolumeClaim {
    let spec = claim.spec.clone().unwrap_or_default();
    parse(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": claim.name_any(),
            "namespace": claim.namespace(),
            "labels": claim.labels(),
            "annotations": role_annotations(Role::Secondary, settings, now),
        },
        "spec": {
            "accessModes": spec.access_modes,
            "resources": spec.resources,
            "storageClassName": spec.storage_class_name,
            "volumeMode": spec.volume_mode,
        },
    }))
}

/// The destination at the secondary: writes the claim itself (`Direct`: the claim the
/// application mounts after a switch), runs again after each sync, listens behind a Service.
pub fn destination(namespace: &str, claim: &str, settings: &Settings) -> ReplicationDestination {
    parse(json!({
        "apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationDestination",
        "metadata": {"name": claim, "namespace": namespace, "labels": labels()},
        "spec": {"rsyncTLS": {
            "keySecret": PSK_SECRET,
            "serviceType": settings.service_type.as_str(),
            "destinationPVC": claim,
            "copyMethod": "Direct",
        }},
    }))
}

/// The source at the primary: on the interval's schedule, a snapshot of the claim pushed to
/// the destination's address.
pub fn source(
    namespace: &str,
    claim: &str,
    settings: &Settings,
    snapshot_class: &str,
    address: &str,
    port: Option<i32>,
) -> Result<ReplicationSource, Error> {
    let schedule = schedule(settings.interval).map_err(Error::Usage)?;
    let mut tls = json!({
        "keySecret": PSK_SECRET,
        "address": address,
        "copyMethod": "Snapshot",
        "volumeSnapshotClassName": snapshot_class,
    });
    if let Some(port) = port {
        tls["port"] = json!(port);
    }
    Ok(parse(json!({
        "apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationSource",
        "metadata": {"name": claim, "namespace": namespace, "labels": labels()},
        "spec": {"sourcePVC": claim, "trigger": {"schedule": schedule}, "rsyncTLS": tls},
    })))
}

/// The pre-shared key Secret, in the form VolSync's movers read (`volsync:` and 64 hex digits).
pub fn psk_secret(namespace: &str, key: &[u8; 32]) -> Secret {
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    parse(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": PSK_SECRET, "namespace": namespace, "labels": labels()},
        "type": "Opaque",
        "stringData": {PSK_KEY: format!("volsync:{hex}")},
    }))
}

/// How `protect` chooses what protects each claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// VolumeReplications as they are; a claim whose driver has no VolumeReplicationClass
    /// gets a VolSync pair when --interval is given.
    Auto,
    /// Only the namespace's VolumeReplications.
    Replication,
    /// A VolSync pair for every claim no VolumeReplication covers.
    Volsync,
}

/// The claims of the namespace that get a VolSync pair, and those left alone with why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub volsync: Vec<String>,
    /// Claims no VolumeReplication covers that get no pair either: (claim, why).
    pub left: Vec<(String, String)>,
}

/// Pure: `claims` at the primary (with each one's CSI driver, if bound), the claims the
/// namespace's VolumeReplications cover, the drivers that have a VolumeReplicationClass.
pub fn select(
    method: Method,
    interval_given: bool,
    claims: &[(PersistentVolumeClaim, Option<String>)],
    replicated: &BTreeSet<String>,
    drivers_with_replication: &BTreeSet<String>,
) -> Selection {
    let mut out = Selection::default();
    for (claim, driver) in claims {
        let name = claim.name_any();
        let volsync_own =
            claim.labels().get(VOLSYNC_CREATED.0).map(String::as_str) == Some(VOLSYNC_CREATED.1);
        let secondary =
            claim.annotations().get(ROLE).map(String::as_str) == Some(Role::Secondary.as_str());
        if replicated.contains(&name) || volsync_own || secondary {
            continue;
        }
        match method {
            Method::Replication => {}
            Method::Volsync => out.volsync.push(name),
            Method::Auto => match driver {
                Some(d) if drivers_with_replication.contains(d) => out.left.push((
                    name,
                    format!("driver {d} has a VolumeReplicationClass: create a VolumeReplication for it"),
                )),
                _ if interval_given => out.volsync.push(name),
                _ => out.left.push((
                    name,
                    "its driver has no VolumeReplicationClass: pass --interval to protect it with VolSync".into(),
                )),
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::settings::ServiceType;
    use super::*;

    fn yaml<K: serde::de::DeserializeOwned>(text: &str) -> K {
        serde_saphyr::from_str(text).unwrap()
    }

    fn claim(name: &str, extra: &str) -> PersistentVolumeClaim {
        yaml(&format!(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}, namespace: shop, uid: u1, labels: {{app: db}}{extra}}}\nspec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}, storageClassName: hostpath, volumeName: pv-1}}\nstatus: {{phase: Bound}}"
        ))
    }

    fn volume(csi: bool) -> PersistentVolume {
        let source = if csi {
            "csi: {driver: hostpath.csi, volumeHandle: h1}"
        } else {
            "hostPath: {path: /x}"
        };
        yaml(&format!(
            "apiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: pv-1}}\nspec: {{capacity: {{storage: 1Gi}}, accessModes: [ReadWriteOnce], {source}}}"
        ))
    }

    fn settings() -> Settings {
        Settings {
            interval: Duration::from_secs(300),
            service_type: ServiceType::LoadBalancer,
        }
    }

    #[test]
    fn the_pair_pushes_a_snapshot_on_the_schedule_into_the_standby_claim_itself() {
        let rd = destination("shop", "db", &settings());
        let tls = rd.spec.rsync_tls.clone().unwrap();
        assert_eq!(tls.destination_pvc.as_deref(), Some("db"));
        assert_eq!(
            tls.copy_method.map(|m| m.as_str().to_owned()).as_deref(),
            Some("Direct")
        );
        assert_eq!(tls.service_type.as_deref(), Some("LoadBalancer"));
        assert_eq!(tls.key_secret.as_deref(), Some(PSK_SECRET));
        assert!(
            rd.spec.trigger.is_none(),
            "a destination without a trigger runs again after each sync"
        );
        let rs = source("shop", "db", &settings(), "snaps", "192.0.2.7", Some(8000)).unwrap();
        assert_eq!(rs.spec.source_pvc.as_deref(), Some("db"));
        assert_eq!(
            rs.spec.trigger.clone().unwrap().schedule.as_deref(),
            Some("*/5 * * * *")
        );
        let tls = rs.spec.rsync_tls.clone().unwrap();
        assert_eq!(
            (tls.address.as_deref(), tls.port),
            (Some("192.0.2.7"), Some(8000))
        );
        assert_eq!(
            tls.copy_method.map(|m| m.as_str().to_owned()).as_deref(),
            Some("Snapshot")
        );
        assert_eq!(tls.volume_snapshot_class_name.as_deref(), Some("snaps"));
    }

    #[test]
    fn the_standby_claim_copies_the_shape_not_the_binding_and_is_secondary() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let standby = standby_claim(&claim("db", ""), &settings(), now);
        let spec = standby.spec.clone().unwrap();
        assert_eq!(
            spec.volume_name, None,
            "provisioned at the standby, not bound to the primary's volume"
        );
        assert_eq!(spec.storage_class_name.as_deref(), Some("hostpath"));
        assert!(standby.metadata.uid.is_none() && standby.status.is_none());
        assert_eq!(
            standby.annotations().get(ROLE).map(String::as_str),
            Some("secondary")
        );
        assert_eq!(
            standby.annotations().get(ROLE_SINCE),
            Some(&now.to_string())
        );
        assert_eq!(standby.labels().get("app").map(String::as_str), Some("db"));
    }

    #[test]
    fn the_key_is_in_volsyncs_format() {
        let secret = psk_secret("shop", &[0xab; 32]);
        let text = secret.string_data.clone().unwrap()[PSK_KEY].clone();
        assert_eq!(text, format!("volsync:{}", "ab".repeat(32)));
        assert_eq!(secret.name_any(), PSK_SECRET);
    }

    #[test]
    fn what_volsync_cannot_protect_is_refused_saying_why() {
        assert_eq!(
            driver(&claim("db", ""), Some(&volume(true))).unwrap(),
            "hostpath.csi"
        );
        let block: PersistentVolumeClaim = {
            let mut c = claim("db", "");
            c.spec.as_mut().unwrap().volume_mode = Some("Block".into());
            c
        };
        let error = driver(&block, Some(&volume(true))).unwrap_err().to_string();
        assert!(
            error.contains("block-mode") && error.contains("moves files"),
            "{error}"
        );
        let error = driver(&claim("db", ""), None).unwrap_err().to_string();
        assert!(error.contains("not bound"), "{error}");
        let error = driver(&claim("db", ""), Some(&volume(false)))
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a CSI volume"), "{error}");
    }

    #[test]
    fn the_snapshot_class_is_the_drivers_default_else_its_first() {
        let class = |name: &str, driver: &str, default: bool| -> VolumeSnapshotClass {
            yaml(&format!(
                "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshotClass\nmetadata: {{name: {name}, annotations: {{{DEFAULT_SNAPSHOT_CLASS}: '{default}'}}}}\ndriver: {driver}\ndeletionPolicy: Delete"
            ))
        };
        let classes = [
            class("b", "d1", false),
            class("a", "d1", false),
            class("z", "d2", true),
        ];
        assert_eq!(snapshot_class("d1", &classes).as_deref(), Some("a"));
        assert_eq!(snapshot_class("d2", &classes).as_deref(), Some("z"));
        assert_eq!(snapshot_class("d3", &classes), None);
        let with_default = [class("a", "d1", false), class("b", "d1", true)];
        assert_eq!(snapshot_class("d1", &with_default).as_deref(), Some("b"));
    }

    #[test]
    fn auto_protects_with_volsync_only_claims_whose_driver_cannot_replicate() {
        let mut volsync_own = claim("volsync-db-src", "");
        volsync_own
            .labels_mut()
            .insert(VOLSYNC_CREATED.0.into(), VOLSYNC_CREATED.1.into());
        let claims = vec![
            (claim("vr-covered", ""), Some("ceph".to_owned())),
            (claim("on-ceph", ""), Some("ceph".to_owned())),
            (claim("on-nfs", ""), Some("nfs".to_owned())),
            (volsync_own, Some("nfs".to_owned())),
            (
                claim(
                    "standby",
                    ", annotations: {lifeline.dev/volsync-role: secondary}",
                ),
                Some("nfs".to_owned()),
            ),
        ];
        let replicated = BTreeSet::from(["vr-covered".to_owned()]);
        let drivers = BTreeSet::from(["ceph".to_owned()]);
        let auto = select(Method::Auto, true, &claims, &replicated, &drivers);
        assert_eq!(auto.volsync, ["on-nfs"]);
        assert_eq!(auto.left.len(), 1);
        assert!(auto.left[0].1.contains("create a VolumeReplication"));
        let no_interval = select(Method::Auto, false, &claims, &replicated, &drivers);
        assert!(no_interval.volsync.is_empty());
        assert!(
            no_interval
                .left
                .iter()
                .any(|(c, why)| c == "on-nfs" && why.contains("--interval"))
        );
        let all = select(Method::Volsync, true, &claims, &replicated, &drivers);
        assert_eq!(all.volsync, ["on-ceph", "on-nfs"]);
        assert_eq!(
            select(Method::Replication, true, &claims, &replicated, &drivers),
            Selection::default()
        );
    }
}
