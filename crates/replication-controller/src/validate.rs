//! Pure checks of what a VolumeReplication refers to. Each step takes what was fetched (or
//! `None` when it does not exist) and returns either the facts the next step needs or an
//! [`Invalid`] that says what to fix. No client here: the reconcile fetches, these decide.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Secret};
use kube::ResourceExt;
use lifeline_api::replication::{
    ClassParameters, DataSourceKind, PVC_OWNER_ANNOTATION, SchedulingInterval, SecretRef,
    VolumeReplication, VolumeReplicationClass,
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

/// `spec.dataSource` must be a core PersistentVolumeClaim; returns the claim's name.
pub fn data_source(vr: &VolumeReplication) -> Result<String, Invalid> {
    let source = &vr.spec.data_source;
    match DataSourceKind::of(source) {
        Some(DataSourceKind::PersistentVolumeClaim) => Ok(source.name.clone()),
        Some(DataSourceKind::VolumeGroupReplication) => Err(Invalid::VolumeGroupUnsupported),
        None => Err(Invalid::UnsupportedDataSource {
            kind: source.kind.clone(),
            group: source.api_group.clone().unwrap_or_default(),
        }),
    }
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
