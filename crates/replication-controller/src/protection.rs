//! Finalizers and the PVC claim. The VolumeReplication keeps [`VR_FINALIZER`] until replication
//! is disabled; the PVC keeps [`PVC_FINALIZER`] and the owner annotation until its
//! VolumeReplication is gone. Patches carry the object's `resourceVersion`, so a concurrent
//! change turns into a 409 and a retry instead of a lost finalizer.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use lifeline_api::replication::{
    PVC_FINALIZER, PVC_OWNER_ANNOTATION, VR_FINALIZER, VolumeReplication,
};
use serde_json::{Value, json};

use crate::FIELD_MANAGER;

/// A merge patch setting `finalizers` (and optionally one annotation) on top of the object's
/// current `resourceVersion`; `None` when nothing would change.
pub fn finalizer_patch(
    object: &impl Resource,
    finalizer: &str,
    present: bool,
    annotation: Option<(&str, Option<&str>)>,
) -> Option<Value> {
    let meta = object.meta();
    let current = meta.finalizers.clone().unwrap_or_default();
    let has = current.iter().any(|f| f == finalizer);
    let annotations = meta.annotations.clone().unwrap_or_default();
    let annotation_change =
        annotation.filter(|(key, value)| annotations.get(*key).map(String::as_str) != *value);
    if has == present && annotation_change.is_none() {
        return None;
    }
    let mut finalizers = current;
    if !present {
        finalizers.retain(|f| f != finalizer);
    } else if !has {
        finalizers.push(finalizer.to_owned());
    }
    let mut metadata = json!({
        "finalizers": finalizers,
        "resourceVersion": meta.resource_version,
    });
    if let Some((key, value)) = annotation_change {
        metadata["annotations"] = json!({ key: value });
    }
    Some(json!({ "metadata": metadata }))
}

fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

/// Adds or removes the VolumeReplication's finalizer.
pub async fn set_vr_finalizer(
    api: &Api<VolumeReplication>,
    vr: &VolumeReplication,
    present: bool,
) -> Result<(), kube::Error> {
    if let Some(patch) = finalizer_patch(vr, VR_FINALIZER, present, None) {
        api.patch(&vr.name_any(), &params(), &Patch::Merge(patch))
            .await?;
    }
    Ok(())
}

/// Marks the PVC as replicated by `vr`: protection finalizer plus owner annotation.
pub async fn claim_pvc(
    api: &Api<PersistentVolumeClaim>,
    pvc: &PersistentVolumeClaim,
    vr: &str,
) -> Result<(), kube::Error> {
    if let Some(patch) = finalizer_patch(
        pvc,
        PVC_FINALIZER,
        true,
        Some((PVC_OWNER_ANNOTATION, Some(vr))),
    ) {
        api.patch(&pvc.name_any(), &params(), &Patch::Merge(patch))
            .await?;
    }
    Ok(())
}

/// Releases the PVC if `vr` holds it (or nobody is named); another VolumeReplication's claim
/// is left alone.
pub async fn release_pvc(
    api: &Api<PersistentVolumeClaim>,
    pvc: &PersistentVolumeClaim,
    vr: &str,
) -> Result<(), kube::Error> {
    if pvc
        .annotations()
        .get(PVC_OWNER_ANNOTATION)
        .is_some_and(|owner| owner != vr)
    {
        return Ok(());
    }
    if let Some(patch) = finalizer_patch(
        pvc,
        PVC_FINALIZER,
        false,
        Some((PVC_OWNER_ANNOTATION, None)),
    ) {
        api.patch(&pvc.name_any(), &params(), &Patch::Merge(patch))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pvc(finalizers: &[&str], owner: Option<&str>) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("data".into()),
                resource_version: Some("7".into()),
                finalizers: Some(finalizers.iter().map(|f| f.to_string()).collect()),
                annotations: owner
                    .map(|o| [(PVC_OWNER_ANNOTATION.to_owned(), o.to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..PersistentVolumeClaim::default()
        }
    }

    #[test]
    fn claim_adds_finalizer_and_owner_once() {
        let patch = finalizer_patch(
            &pvc(&["kubernetes.io/pvc-protection"], None),
            PVC_FINALIZER,
            true,
            Some((PVC_OWNER_ANNOTATION, Some("vr"))),
        )
        .unwrap();
        assert_eq!(
            patch,
            json!({"metadata": {
                "finalizers": ["kubernetes.io/pvc-protection", PVC_FINALIZER],
                "resourceVersion": "7",
                "annotations": {PVC_OWNER_ANNOTATION: "vr"},
            }})
        );
        let claimed = pvc(&[PVC_FINALIZER], Some("vr"));
        assert_eq!(
            finalizer_patch(
                &claimed,
                PVC_FINALIZER,
                true,
                Some((PVC_OWNER_ANNOTATION, Some("vr")))
            ),
            None
        );
    }

    #[test]
    fn release_removes_only_ours_and_nulls_the_annotation() {
        let claimed = pvc(&["kubernetes.io/pvc-protection", PVC_FINALIZER], Some("vr"));
        let patch = finalizer_patch(
            &claimed,
            PVC_FINALIZER,
            false,
            Some((PVC_OWNER_ANNOTATION, None)),
        )
        .unwrap();
        assert_eq!(
            patch,
            json!({"metadata": {
                "finalizers": ["kubernetes.io/pvc-protection"],
                "resourceVersion": "7",
                "annotations": {PVC_OWNER_ANNOTATION: null},
            }})
        );
    }
}
