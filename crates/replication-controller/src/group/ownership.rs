//! Whether the objects a VolumeGroupReplication names are its own. Pure.
//!
//! `spec.volumeGroupReplicationContentName` and `spec.volumeReplicationName` are the user's to
//! set, so a group could name another group's content (cluster-scoped: another tenant's) or an
//! unrelated VolumeReplication, and the controller would then regroup, repoint or delete them
//! on that user's behalf. It acts only on objects that belong to the group both ways: the
//! group names the object, and the object points back at the group.

use kube::ResourceExt;
use lifeline_api::replication::{
    VolumeGroupReplication, VolumeGroupReplicationContent, VolumeReplication,
};

use super::GroupInvalid;

/// A content belongs to the group when its `volumeGroupReplicationRef` names the group (its
/// namespace and name, and its uid when both are known: a group recreated under the same name
/// adopts its predecessor's content only if that content recorded no uid).
pub fn content_is_ours(
    vgr: &VolumeGroupReplication,
    content: &VolumeGroupReplicationContent,
) -> bool {
    let Some(reference) = &content.spec.volume_group_replication_ref else {
        return false;
    };
    let kind_ok = reference
        .kind
        .as_deref()
        .is_none_or(|k| k == "VolumeGroupReplication");
    let uid_ok = match (&reference.uid, vgr.uid()) {
        (Some(theirs), Some(ours)) => *theirs == ours,
        _ => true,
    };
    kind_ok
        && uid_ok
        && reference.name.as_deref() == Some(vgr.name_any().as_str())
        && reference.namespace == vgr.namespace()
}

/// A VolumeReplication belongs to the group when the group is its controller (owner reference
/// by uid) and its dataSource is the group.
pub fn replication_is_ours(vgr: &VolumeGroupReplication, vr: &VolumeReplication) -> bool {
    let owned = vr
        .owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && Some(&o.uid) == vgr.uid().as_ref());
    let source = &vr.spec.data_source;
    owned && source.kind == "VolumeGroupReplication" && source.name == vgr.name_any()
}

/// The refusal for a named content that is another's.
pub fn content_taken(
    vgr: &VolumeGroupReplication,
    content: &VolumeGroupReplicationContent,
) -> GroupInvalid {
    let owner = content
        .spec
        .volume_group_replication_ref
        .as_ref()
        .map(|r| {
            format!(
                "{}/{}",
                r.namespace.as_deref().unwrap_or_default(),
                r.name.as_deref().unwrap_or_default()
            )
        })
        .unwrap_or_else(|| "no group".into());
    GroupInvalid::NotOurs {
        what: format!(
            "VolumeGroupReplicationContent {} (it belongs to {owner})",
            content.name_any()
        ),
        field: "spec.volumeGroupReplicationContentName",
        group: format!("{}/{}", vgr.namespace().unwrap_or_default(), vgr.name_any()),
    }
}

/// The refusal for a named VolumeReplication that is not the group's.
pub fn replication_taken(vgr: &VolumeGroupReplication, vr: &VolumeReplication) -> GroupInvalid {
    GroupInvalid::NotOurs {
        what: format!("VolumeReplication {}", vr.name_any()),
        field: "spec.volumeReplicationName",
        group: format!("{}/{}", vgr.namespace().unwrap_or_default(), vgr.name_any()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vgr(name: &str, uid: &str) -> VolumeGroupReplication {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "replication.storage.openshift.io/v1alpha1",
            "kind": "VolumeGroupReplication",
            "metadata": {"name": name, "namespace": "shop", "uid": uid},
            "spec": {"volumeGroupReplicationClassName": "g", "replicationState": "primary", "source": {"selector": {}}},
        }))
        .unwrap()
    }

    fn content(reference: serde_json::Value) -> VolumeGroupReplicationContent {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "replication.storage.openshift.io/v1alpha1",
            "kind": "VolumeGroupReplicationContent",
            "metadata": {"name": "c"},
            "spec": {"provisioner": "p", "volumeGroupReplicationClassName": "g",
                     "source": {"volumeHandles": []}, "volumeGroupReplicationRef": reference},
        }))
        .unwrap()
    }

    fn vr(owner_uid: &str, source: &str) -> VolumeReplication {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "replication.storage.openshift.io/v1alpha1",
            "kind": "VolumeReplication",
            "metadata": {"name": "vr", "namespace": "shop", "ownerReferences": [{
                "apiVersion": "replication.storage.openshift.io/v1alpha1",
                "kind": "VolumeGroupReplication", "name": source, "uid": owner_uid, "controller": true}]},
            "spec": {"volumeReplicationClass": "m", "replicationState": "primary",
                     "dataSource": {"apiGroup": "replication.storage.openshift.io", "kind": "VolumeGroupReplication", "name": source}},
        }))
        .unwrap()
    }

    #[test]
    fn a_content_is_ours_only_when_it_points_back_at_this_group() {
        let ours = vgr("vm", "u-1");
        let reference = |ns: &str, name: &str, uid: Option<&str>| serde_json::json!({"kind": "VolumeGroupReplication", "namespace": ns, "name": name, "uid": uid});
        assert!(content_is_ours(
            &ours,
            &content(reference("shop", "vm", Some("u-1")))
        ));
        assert!(content_is_ours(
            &ours,
            &content(reference("shop", "vm", None))
        ));
        for theirs in [
            reference("bank", "vm", Some("u-1")),
            reference("shop", "other", None),
            reference("shop", "vm", Some("u-2")),
            serde_json::json!({"kind": "Pod", "namespace": "shop", "name": "vm"}),
        ] {
            let c = content(theirs.clone());
            assert!(!content_is_ours(&ours, &c), "{theirs}");
            let e = content_taken(&ours, &c).to_string();
            assert!(e.contains("spec.volumeGroupReplicationContentName"), "{e}");
        }
        let mut unowned = content(serde_json::Value::Null);
        unowned.spec.volume_group_replication_ref = None;
        assert!(!content_is_ours(&ours, &unowned));
    }

    #[test]
    fn a_replication_is_ours_only_when_we_own_it_and_it_replicates_the_group() {
        let ours = vgr("vm", "u-1");
        assert!(replication_is_ours(&ours, &vr("u-1", "vm")));
        assert!(
            !replication_is_ours(&ours, &vr("u-2", "vm")),
            "another owner"
        );
        assert!(
            !replication_is_ours(&ours, &vr("u-1", "other")),
            "another source"
        );
        let e = replication_taken(&ours, &vr("u-2", "vm")).to_string();
        assert!(e.contains("spec.volumeReplicationName"), "{e}");
    }
}
