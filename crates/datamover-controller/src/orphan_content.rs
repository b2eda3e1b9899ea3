//! A working VolumeSnapshotContent left behind by the snapshot-controller. It puts its
//! bound-protection finalizer on a content when it binds it to a VolumeSnapshot, and removes
//! it only on that snapshot's deletion path; when the snapshot goes before the controller has
//! finished binding it (a request cancelled within a second of starting: its status write
//! conflicted, the snapshot was deleted without its own finalizers), nothing removes it and the
//! content stays forever. The data mover's working copy is `Retain` (deleting it never deletes
//! the user's snapshot) and its VolumeSnapshot is gone, so that finalizer protects nothing:
//! the data mover takes it off. Pure.

use kube::ResourceExt;
use lifeline_api::foreign::snapshot::{DeletionPolicy, VolumeSnapshotContent};

/// The snapshot-controller's finalizer on a bound content.
pub const BOUND_PROTECTION: &str =
    "snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection";

/// The finalizers to leave on a deleted `Retain` content whose VolumeSnapshot is gone, when the
/// bound protection is among them; `None` when there is nothing to release.
pub fn release(content: &VolumeSnapshotContent) -> Option<Vec<String>> {
    let deleting = content.metadata.deletion_timestamp.is_some();
    let retained = content.spec.deletion_policy == DeletionPolicy::Retain;
    let finalizers = content.finalizers();
    if !deleting || !retained || !finalizers.iter().any(|f| f == BOUND_PROTECTION) {
        return None;
    }
    Some(
        finalizers
            .iter()
            .filter(|f| *f != BOUND_PROTECTION)
            .cloned()
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(deleting: bool, policy: &str, finalizers: &[&str]) -> VolumeSnapshotContent {
        let deletion = if deleting {
            ", deletionTimestamp: '2026-12-03T10:06:14Z'"
        } else {
            ""
        };
        serde_saphyr::from_str(&format!(
            "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshotContent\nmetadata: {{name: vsb-x-content, finalizers: {finalizers:?}{deletion}}}\nspec: {{deletionPolicy: {policy}, driver: d, source: {{snapshotHandle: h}}, volumeSnapshotRef: {{namespace: p, name: vsb-x-snapshot}}}}"
        ))
        .unwrap()
    }

    #[test]
    fn only_the_bound_protection_of_a_deleted_retained_content_is_released() {
        let other = "example.com/keep";
        assert_eq!(
            release(&content(true, "Retain", &[BOUND_PROTECTION, other])),
            Some(vec![other.to_owned()])
        );
        assert_eq!(
            release(&content(true, "Retain", &[BOUND_PROTECTION])),
            Some(vec![])
        );
        // Not being deleted, a Delete content (its physical snapshot goes with it), or no
        // bound protection: left to the snapshot-controller and the sidecar.
        assert_eq!(
            release(&content(false, "Retain", &[BOUND_PROTECTION])),
            None
        );
        assert_eq!(release(&content(true, "Delete", &[BOUND_PROTECTION])), None);
        assert_eq!(release(&content(true, "Retain", &[other])), None);
    }
}
