//! Pure checks of what a VolumeReplication refers to. Each step takes what was fetched (or
//! `None` when it does not exist) and returns either the facts the next step needs or an
//! [`Invalid`] that says what to fix. No client here: the reconcile fetches, these decide.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Secret};
use kube::ResourceExt;
use lifeline_api::replication::{
    ClassParameters, DataSourceKind, PVC_OWNER_ANNOTATION, SchedulingInterval, SecretRef,
    VolumeGroupReplication, VolumeGroupReplicationContent, VolumeReplication,
    VolumeReplicationClass,
};
use lifeline_csi_client::Secrets;

use crate::error::Invalid;

/// The usable parts of a VolumeReplicationClass.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidClass {
    pub name: String,
    pub provisioner: String,
    pub parameters: ClassParameters,
    pub interval: Option<SchedulingInterval>,
}

/// What a VolumeReplication replicates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A claim, by name.
    Claim(String),
    /// A VolumeGroupReplication, by name: its group replicates as one unit.
    Group(String),
}

/// `spec.dataSource` must be a core PersistentVolumeClaim or a VolumeGroupReplication.
pub fn data_source(vr: &VolumeReplication) -> Result<Source, Invalid> {
    let source = &vr.spec.data_source;
    match DataSourceKind::of(source) {
        Some(DataSourceKind::PersistentVolumeClaim) => Ok(Source::Claim(source.name.clone())),
        Some(DataSourceKind::VolumeGroupReplication) => Ok(Source::Group(source.name.clone())),
        None => Err(Invalid::UnsupportedDataSource {
            kind: source.kind.clone(),
            group: source.api_group.clone().unwrap_or_default(),
        }),
    }
}

/// The group must exist and its VolumeGroupReplicationContent must record the driver's group;
/// returns the content's name (`None` for `vgr`: not yet named).
pub fn group(
    vr: &VolumeReplication,
    name: &str,
    vgr: Option<&VolumeGroupReplication>,
) -> Result<String, Invalid> {
    let namespace = vr.namespace().unwrap_or_default();
    let Some(vgr) = vgr else {
        return Err(Invalid::GroupMissing {
            namespace,
            name: name.to_owned(),
        });
    };
    vgr.spec
        .volume_group_replication_content_name
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Invalid::GroupNotReady {
            namespace,
            name: name.to_owned(),
            why: "no VolumeGroupReplicationContent yet".into(),
        })
}

/// The content must exist, be the group's, be of the class's provisioner and carry the
/// driver's group handle; returns the handle.
pub fn group_handle(
    vr: &VolumeReplication,
    name: &str,
    content: Option<&VolumeGroupReplicationContent>,
    class: &ValidClass,
) -> Result<String, Invalid> {
    let not_ready = |why: String| Invalid::GroupNotReady {
        namespace: vr.namespace().unwrap_or_default(),
        name: name.to_owned(),
        why,
    };
    let Some(content) = content else {
        return Err(not_ready(
            "its VolumeGroupReplicationContent does not exist".into(),
        ));
    };
    if content.spec.provisioner != class.provisioner {
        return Err(Invalid::DriverMismatch {
            name: content.name_any(),
            driver: content.spec.provisioner.clone(),
            class: class.name.clone(),
            provisioner: class.provisioner.clone(),
        });
    }
    content
        .spec
        .volume_group_replication_handle
        .clone()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| not_ready("the driver has not created the group yet".into()))
}

/// The class must exist and its parameters must parse (reserved keys, secret reference,
/// scheduling interval).
pub fn class(
    vr: &VolumeReplication,
    class: Option<&VolumeReplicationClass>,
) -> Result<ValidClass, Invalid> {
    let name = vr.spec.volume_replication_class.clone();
    let Some(class) = class else {
        return Err(Invalid::ClassMissing { name });
    };
    let parameters =
        ClassParameters::parse(class.spec.parameters()).map_err(|source| Invalid::Parameters {
            class: name.clone(),
            source,
        })?;
    let interval = parameters
        .scheduling_interval()
        .map_err(|source| Invalid::Parameters {
            class: name.clone(),
            source,
        })?;
    Ok(ValidClass {
        name,
        provisioner: class.spec.provisioner.clone(),
        parameters,
        interval,
    })
}

/// The claim must exist, be Bound, not be deleting, and not belong to another
/// VolumeReplication. Returns the name of its PersistentVolume.
pub fn claim(
    vr: &VolumeReplication,
    name: &str,
    pvc: Option<&PersistentVolumeClaim>,
) -> Result<String, Invalid> {
    let namespace = vr.namespace().unwrap_or_default();
    let Some(pvc) = pvc else {
        return Err(Invalid::PvcMissing {
            namespace,
            name: name.to_owned(),
        });
    };
    if let Some(owner) = pvc.annotations().get(PVC_OWNER_ANNOTATION)
        && owner != &vr.name_any()
    {
        return Err(Invalid::PvcClaimed {
            namespace,
            name: name.to_owned(),
            owner: owner.clone(),
        });
    }
    if pvc.metadata.deletion_timestamp.is_some() && vr.metadata.deletion_timestamp.is_none() {
        return Err(Invalid::PvcDeleting {
            namespace,
            name: name.to_owned(),
        });
    }
    let phase = pvc
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Pending".to_owned());
    let volume = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .filter(|v| !v.is_empty());
    match volume {
        Some(volume) if phase == "Bound" => Ok(volume),
        _ => Err(Invalid::PvcNotBound {
            namespace,
            name: name.to_owned(),
            phase,
        }),
    }
}

/// The volume must be a CSI volume of the class's provisioner; returns its volume handle.
pub fn volume(
    name: &str,
    pv: Option<&PersistentVolume>,
    class: &ValidClass,
) -> Result<String, Invalid> {
    let Some(pv) = pv else {
        return Err(Invalid::PvMissing {
            name: name.to_owned(),
        });
    };
    let Some(csi) = pv.spec.as_ref().and_then(|s| s.csi.as_ref()) else {
        return Err(Invalid::PvNotCsi {
            name: name.to_owned(),
        });
    };
    if csi.driver != class.provisioner {
        return Err(Invalid::DriverMismatch {
            name: name.to_owned(),
            driver: csi.driver.clone(),
            class: class.name.clone(),
            provisioner: class.provisioner.clone(),
        });
    }
    Ok(csi.volume_handle.clone())
}

/// The class's Secret, if it names one, as the `secrets` of replication calls.
pub fn secrets(
    class: &ValidClass,
    reference: Option<&SecretRef>,
    secret: Option<&Secret>,
) -> Result<Secrets, Invalid> {
    let Some(reference) = reference else {
        return Ok(Secrets::default());
    };
    let Some(secret) = secret else {
        return Err(Invalid::SecretMissing {
            class: class.name.clone(),
            namespace: reference.namespace.clone(),
            name: reference.name.clone(),
        });
    };
    let mut values = Vec::new();
    for (key, value) in secret.data.iter().flatten() {
        let text = String::from_utf8(value.0.clone()).map_err(|_| Invalid::SecretNotText {
            namespace: reference.namespace.clone(),
            name: reference.name.clone(),
            key: key.clone(),
        })?;
        values.push((key.clone(), text));
    }
    // stringData is write-only in Kubernetes, but a Secret built in memory may carry it.
    for (key, value) in secret.string_data.iter().flatten() {
        values.push((key.clone(), value.clone()));
    }
    Ok(Secrets::from_iter(values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::vr_yaml;
    use k8s_openapi::ByteString;
    use lifeline_api::replication::VolumeReplicationClassSpec;

    fn class_with(parameters: &[(&str, &str)]) -> VolumeReplicationClass {
        VolumeReplicationClass::new(
            "gold",
            VolumeReplicationClassSpec {
                provisioner: "hostpath.lifeline.dev".into(),
                parameters: Some(
                    parameters
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
            },
        )
    }

    fn pvc(yaml: &str) -> PersistentVolumeClaim {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn pv(yaml: &str) -> PersistentVolume {
        serde_saphyr::from_str(yaml).unwrap()
    }

    const BOUND: &str = "metadata: {name: db-data, namespace: shop}\nspec: {volumeName: pv-1}\nstatus: {phase: Bound}";

    #[test]
    fn data_source_must_be_a_core_claim() {
        assert_eq!(
            data_source(&vr_yaml("")),
            Ok(Source::Claim("db-data".into()))
        );
        let other = vr_yaml("spec: {dataSource: {kind: ConfigMap, name: x}}");
        let err = data_source(&other).unwrap_err();
        assert_eq!(err.category(), "unsupported_data_source");
        assert!(err.to_string().contains("\"ConfigMap\""), "{err}");
        let apps =
            vr_yaml("spec: {dataSource: {apiGroup: apps, kind: PersistentVolumeClaim, name: x}}");
        assert!(matches!(
            data_source(&apps),
            Err(Invalid::UnsupportedDataSource { .. })
        ));
        let group = vr_yaml(
            "spec: {dataSource: {apiGroup: replication.storage.openshift.io, kind: VolumeGroupReplication, name: g}}",
        );
        assert_eq!(data_source(&group), Ok(Source::Group("g".into())));
    }

    #[test]
    fn a_group_needs_its_content_and_the_drivers_handle() {
        let vr = vr_yaml(
            "spec: {dataSource: {apiGroup: replication.storage.openshift.io, kind: VolumeGroupReplication, name: vm}}",
        );
        assert!(matches!(
            group(&vr, "vm", None),
            Err(Invalid::GroupMissing { .. })
        ));
        let mut vgr: VolumeGroupReplication = serde_saphyr::from_str(
            "apiVersion: replication.storage.openshift.io/v1alpha1\nkind: VolumeGroupReplication\nmetadata: {name: vm, namespace: shop}\nspec: {volumeGroupReplicationClassName: g, replicationState: primary, autoResync: false, source: {selector: {matchLabels: {vm: a}}}}",
        )
        .unwrap();
        let err = group(&vr, "vm", Some(&vgr)).unwrap_err();
        assert_eq!(err.category(), "group_not_ready");
        vgr.spec.volume_group_replication_content_name = Some("vgrcontent-1".into());
        assert_eq!(group(&vr, "vm", Some(&vgr)).unwrap(), "vgrcontent-1");

        let valid = class(&vr, Some(&class_with(&[]))).unwrap();
        let err = group_handle(&vr, "vm", None, &valid).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        let mut content: VolumeGroupReplicationContent = serde_saphyr::from_str(
            "apiVersion: replication.storage.openshift.io/v1alpha1\nkind: VolumeGroupReplicationContent\nmetadata: {name: vgrcontent-1}\nspec: {provisioner: hostpath.lifeline.dev, volumeGroupReplicationClassName: g, source: {volumeHandles: [v1, v2]}}",
        )
        .unwrap();
        let err = group_handle(&vr, "vm", Some(&content), &valid).unwrap_err();
        assert!(err.to_string().contains("not created the group"), "{err}");
        content.spec.volume_group_replication_handle = Some("vg-vm".into());
        assert_eq!(
            group_handle(&vr, "vm", Some(&content), &valid).unwrap(),
            "vg-vm"
        );
        content.spec.provisioner = "other.csi".into();
        assert!(matches!(
            group_handle(&vr, "vm", Some(&content), &valid),
            Err(Invalid::DriverMismatch { .. })
        ));
    }

    #[test]
    fn class_must_exist_and_parse() {
        let vr = vr_yaml("");
        let err = class(&vr, None).unwrap_err();
        assert!(
            err.to_string()
                .contains("VolumeReplicationClass \"gold\" not found"),
            "{err}"
        );

        let unknown = class_with(&[(
            "replication.storage.openshift.io/replication-secret-nmae",
            "x",
        )]);
        let err = class(&vr, Some(&unknown)).unwrap_err();
        assert_eq!(err.category(), "invalid_parameters");
        assert!(err.to_string().contains("replication-secret-nmae"), "{err}");

        for (key, what) in [
            (
                "replication.storage.openshift.io/replication-secret-name",
                "name",
            ),
            (
                "replication.storage.openshift.io/replication-secret-namespace",
                "namespace",
            ),
        ] {
            let empty = class_with(&[
                (
                    "replication.storage.openshift.io/replication-secret-name",
                    "s",
                ),
                (
                    "replication.storage.openshift.io/replication-secret-namespace",
                    "ns",
                ),
                (key, ""),
            ]);
            let err = class(&vr, Some(&empty)).unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("secret {what} cannot be empty")),
                "{err}"
            );
        }

        let bad_interval = class_with(&[("schedulingInterval", "5s")]);
        assert!(
            class(&vr, Some(&bad_interval))
                .unwrap_err()
                .to_string()
                .contains("schedulingInterval")
        );

        let good = class(
            &vr,
            Some(&class_with(&[
                ("schedulingInterval", "1d"),
                ("mirroringMode", "snapshot"),
            ])),
        )
        .unwrap();
        assert_eq!(good.provisioner, "hostpath.lifeline.dev");
        let interval = good.interval.unwrap();
        // One day means a day (the Go operator falls back to an hour), refreshed at half of it.
        assert_eq!(
            interval.as_duration(),
            std::time::Duration::from_secs(86_400)
        );
        assert_eq!(
            interval.refresh_interval(),
            std::time::Duration::from_secs(43_200)
        );
        assert_eq!(
            good.parameters
                .driver
                .get("mirroringMode")
                .map(String::as_str),
            Some("snapshot")
        );
    }

    #[test]
    fn claim_must_exist_be_bound_unclaimed_and_alive() {
        let vr = vr_yaml("");
        assert_eq!(claim(&vr, "db-data", Some(&pvc(BOUND))), Ok("pv-1".into()));
        assert_eq!(
            claim(&vr, "db-data", None).unwrap_err().category(),
            "pvc_missing"
        );

        let pending = pvc("metadata: {name: db-data}\nstatus: {phase: Pending}");
        let err = claim(&vr, "db-data", Some(&pending)).unwrap_err();
        assert!(err.to_string().contains("is Pending, not Bound"), "{err}");

        let deleting = pvc(&BOUND.replace(
            "namespace: shop}",
            "namespace: shop, deletionTimestamp: \"2026-01-01T00:00:00Z\"}",
        ));
        assert_eq!(
            claim(&vr, "db-data", Some(&deleting))
                .unwrap_err()
                .category(),
            "pvc_deleting"
        );
        // While the VolumeReplication itself is being deleted, a deleting claim is expected.
        let leaving = vr_yaml("metadata: {deletionTimestamp: \"2026-01-01T00:00:00Z\"}");
        assert!(claim(&leaving, "db-data", Some(&deleting)).is_ok());

        let other = pvc(&BOUND.replace(
            "namespace: shop}",
            "namespace: shop, annotations: {replication.storage.openshift.io/volume-replication-name: first}}",
        ));
        let err = claim(&vr, "db-data", Some(&other)).unwrap_err();
        assert!(
            err.to_string()
                .contains("already replicated by VolumeReplication \"first\""),
            "{err}"
        );
        let mine = pvc(&BOUND.replace(
            "namespace: shop}",
            "namespace: shop, annotations: {replication.storage.openshift.io/volume-replication-name: db-replication}}",
        ));
        assert!(claim(&vr, "db-data", Some(&mine)).is_ok());
    }

    #[test]
    fn volume_must_be_csi_of_the_class_provisioner() {
        let vr = vr_yaml("");
        let valid = class(&vr, Some(&class_with(&[]))).unwrap();
        let csi = pv(
            "metadata: {name: pv-1}\nspec: {csi: {driver: hostpath.lifeline.dev, volumeHandle: vol-9}}",
        );
        assert_eq!(volume("pv-1", Some(&csi), &valid), Ok("vol-9".into()));
        assert_eq!(
            volume("pv-1", None, &valid).unwrap_err().category(),
            "pv_invalid"
        );
        let nfs = pv("metadata: {name: pv-1}\nspec: {nfs: {server: s, path: /x}}");
        assert!(
            volume("pv-1", Some(&nfs), &valid)
                .unwrap_err()
                .to_string()
                .contains("not a CSI volume")
        );
        let other =
            pv("metadata: {name: pv-1}\nspec: {csi: {driver: ebs.csi.aws.com, volumeHandle: v}}");
        let err = volume("pv-1", Some(&other), &valid).unwrap_err();
        assert!(
            err.to_string().contains("\"ebs.csi.aws.com\"")
                && err.to_string().contains("\"hostpath.lifeline.dev\""),
            "{err}"
        );
    }

    #[test]
    fn secret_must_exist_and_be_text() {
        let vr = vr_yaml("");
        let valid = class(&vr, Some(&class_with(&[]))).unwrap();
        assert_eq!(secrets(&valid, None, None), Ok(Secrets::default()));
        let reference = SecretRef {
            name: "creds".into(),
            namespace: "storage".into(),
        };
        let err = secrets(&valid, Some(&reference), None).unwrap_err();
        assert!(err.to_string().contains("Secret storage/creds"), "{err}");
        let mut secret = Secret {
            data: Some([("key".to_owned(), ByteString(b"hunter2".to_vec()))].into()),
            ..Secret::default()
        };
        let got = secrets(&valid, Some(&reference), Some(&secret)).unwrap();
        assert_eq!(got, Secrets::from_iter([("key", "hunter2")]));
        secret.data = Some([("key".to_owned(), ByteString(vec![0xff, 0xfe]))].into());
        let err = secrets(&valid, Some(&reference), Some(&secret)).unwrap_err();
        assert!(
            err.to_string().contains("not valid UTF-8") && !err.to_string().contains('\u{fffd}'),
            "{err}"
        );
    }
}
