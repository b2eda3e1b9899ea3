//! What a VolumeGroupReplication needs, decided from what exists: the names of what it owns,
//! the driver call that makes the group match its members, the content and VolumeReplication
//! it should have, which claims to protect or release, and its status. Pure.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::{Resource, ResourceExt};
use lifeline_api::replication::{
    NameRef, VGR_OWNER_ANNOTATION, VGR_PVC_FINALIZER, VolumeGroupReplication,
    VolumeGroupReplicationContent, VolumeGroupReplicationStatus, VolumeReplication,
};
use serde_json::json;

use super::GroupInvalid;
use super::select::Member;

/// The names of what a group owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    /// Its VolumeGroupReplicationContent (cluster-scoped).
    pub content: String,
    /// The name given to CreateVolumeGroup: the same at both sites for the same namespace and
    /// name, so a driver that names groups by it (the reference driver does) pairs them.
    pub driver_group: String,
    /// Its VolumeReplication.
    pub replication: String,
}

pub fn names(vgr: &VolumeGroupReplication) -> Names {
    let namespace = vgr.namespace().unwrap_or_default();
    let name = vgr.name_any();
    Names {
        content: vgr
            .spec
            .volume_group_replication_content_name
            .clone()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| format!("vgrcontent-{namespace}-{name}")),
        driver_group: format!("{namespace}-{name}"),
        replication: vgr
            .spec
            .volume_replication_name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| name.clone()),
    }
}

/// The call that makes the driver's group hold exactly the members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupCall {
    /// No group yet: CreateVolumeGroup (idempotent on the name, so a retry is safe).
    Create {
        name: String,
        volumes: Vec<String>,
    },
    /// The members changed: ModifyVolumeGroupMembership with the complete new list.
    Modify {
        handle: String,
        volumes: Vec<String>,
    },
    None {
        handle: String,
    },
}

pub fn group_call(
    names: &Names,
    content: Option<&VolumeGroupReplicationContent>,
    members: &[Member],
) -> GroupCall {
    let volumes: Vec<String> = members.iter().map(|m| m.handle.clone()).collect();
    let recorded = content.and_then(|c| {
        let handle = c.spec.volume_group_replication_handle.clone()?;
        Some((handle, c.spec.source.volume_handles.clone()))
    });
    match recorded {
        None => GroupCall::Create {
            name: names.driver_group.clone(),
            volumes,
        },
        Some((handle, had)) => {
            let same = had.iter().collect::<BTreeSet<_>>() == volumes.iter().collect();
            if same {
                GroupCall::None { handle }
            } else {
                GroupCall::Modify { handle, volumes }
            }
        }
    }
}

/// The content the group should have once the driver answered with `handle`.
pub fn content(
    vgr: &VolumeGroupReplication,
    names: &Names,
    provisioner: &str,
    handle: &str,
    members: &[Member],
) -> VolumeGroupReplicationContent {
    serde_json::from_value(json!({
        "apiVersion": VolumeGroupReplicationContent::api_version(&()),
        "kind": VolumeGroupReplicationContent::kind(&()),
        "metadata": {"name": names.content},
        "spec": {
            "provisioner": provisioner,
            "volumeGroupReplicationClassName": vgr.spec.volume_group_replication_class_name,
            "volumeGroupReplicationHandle": handle,
            "source": {"volumeHandles": members.iter().map(|m| &m.handle).collect::<Vec<_>>()},
            "volumeGroupReplicationRef": {
                "apiVersion": VolumeGroupReplication::api_version(&()),
                "kind": VolumeGroupReplication::kind(&()),
                "name": vgr.name_any(),
                "namespace": vgr.namespace(),
                "uid": vgr.uid(),
            },
        },
    }))
    .expect("a valid content")
}

/// The group's VolumeReplication: the group as its dataSource, the group's role, owned by it.
pub fn replication(
    vgr: &VolumeGroupReplication,
    names: &Names,
) -> Result<VolumeReplication, GroupInvalid> {
    let class = vgr
        .spec
        .volume_replication_class_name
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or(GroupInvalid::NoReplicationClass)?;
    Ok(serde_json::from_value(json!({
        "apiVersion": VolumeReplication::api_version(&()),
        "kind": VolumeReplication::kind(&()),
        "metadata": {
            "name": names.replication,
            "namespace": vgr.namespace(),
            "ownerReferences": [{
                "apiVersion": VolumeGroupReplication::api_version(&()),
                "kind": VolumeGroupReplication::kind(&()),
                "name": vgr.name_any(),
                "uid": vgr.uid(),
                "controller": true,
            }],
        },
        "spec": {
            "volumeReplicationClass": class,
            "replicationState": vgr.spec.replication_state.as_str(),
            "autoResync": vgr.spec.auto_resync,
            "dataSource": {
                "apiGroup": lifeline_api::replication::GROUP,
                "kind": VolumeGroupReplication::kind(&()),
                "name": vgr.name_any(),
            },
        },
    }))
    .expect("a valid VolumeReplication"))
}

/// Claims to protect (members without the finalizer) and to release (claims this group
/// protected that are no longer members).
pub fn protection(
    group: &str,
    claims: &[PersistentVolumeClaim],
    members: &[Member],
) -> (Vec<String>, Vec<String>) {
    let is_member = |c: &PersistentVolumeClaim| members.iter().any(|m| m.claim == c.name_any());
    let protected = |c: &PersistentVolumeClaim| {
        c.finalizers().iter().any(|f| f == VGR_PVC_FINALIZER)
            && c.annotations()
                .get(VGR_OWNER_ANNOTATION)
                .map(String::as_str)
                == Some(group)
    };
    let add = claims
        .iter()
        .filter(|c| is_member(c) && !protected(c))
        .map(ResourceExt::name_any)
        .collect();
    let remove = claims
        .iter()
        .filter(|c| !is_member(c) && protected(c))
        .map(ResourceExt::name_any)
        .collect();
    (add, remove)
}

/// The group's status: its VolumeReplication's (state, conditions, sync facts) with the
/// members, for the group's generation.
pub fn status(
    vgr: &VolumeGroupReplication,
    vr: Option<&VolumeReplication>,
    members: &[Member],
) -> VolumeGroupReplicationStatus {
    let mut replication = vr.and_then(|v| v.status.clone()).unwrap_or_default();
    // The VolumeReplication's generation is its own; the group's status describes the group's.
    let vr_current = vr.is_some_and(|v| {
        v.status.as_ref().and_then(|s| s.observed_generation) == v.metadata.generation
    });
    replication.observed_generation = if vr_current {
        vgr.metadata.generation
    } else {
        vgr.status
            .as_ref()
            .and_then(|s| s.replication.observed_generation)
    };
    VolumeGroupReplicationStatus {
        replication,
        persistent_volume_claims_ref_list: members
            .iter()
            .map(|m| NameRef {
                name: m.claim.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vgr(extra: &str) -> VolumeGroupReplication {
        serde_saphyr::from_str(&format!(
            "apiVersion: replication.storage.openshift.io/v1alpha1\nkind: VolumeGroupReplication\nmetadata: {{name: vm, namespace: shop, uid: u-1, generation: 3}}\nspec:\n  volumeGroupReplicationClassName: groups\n  volumeReplicationClassName: mirror\n  replicationState: primary\n  autoResync: true\n  source: {{selector: {{matchLabels: {{vm: a}}}}}}\n{extra}"
        ))
        .unwrap()
    }

    fn member(claim: &str) -> Member {
        Member {
            claim: claim.into(),
            volume: format!("pv-{claim}"),
            handle: format!("vol-{claim}"),
        }
    }

    #[test]
    fn names_are_the_specs_or_the_same_at_both_sites() {
        let n = names(&vgr(""));
        assert_eq!(n.content, "vgrcontent-shop-vm");
        assert_eq!(n.driver_group, "shop-vm");
        assert_eq!(n.replication, "vm");
        let n = names(&vgr(
            "  volumeReplicationName: vm-vr\n  volumeGroupReplicationContentName: c-1",
        ));
        assert_eq!(
            (n.content.as_str(), n.replication.as_str()),
            ("c-1", "vm-vr")
        );
    }

    #[test]
    fn the_driver_is_asked_to_create_then_only_when_members_change() {
        let g = vgr("");
        let n = names(&g);
        let members = [member("boot"), member("data")];
        assert_eq!(
            group_call(&n, None, &members),
            GroupCall::Create {
                name: "shop-vm".into(),
                volumes: vec!["vol-boot".into(), "vol-data".into()]
            }
        );
        let made = content(&g, &n, "hostpath.lifeline.dev", "vg-shop-vm", &members);
        assert_eq!(
            made.spec
                .volume_group_replication_ref
                .as_ref()
                .unwrap()
                .uid
                .as_deref(),
            Some("u-1")
        );
        assert_eq!(
            group_call(&n, Some(&made), &[member("data"), member("boot")]),
            GroupCall::None {
                handle: "vg-shop-vm".into()
            },
            "the same members in another order"
        );
        let more = [member("boot"), member("data"), member("logs")];
        assert!(matches!(
            group_call(&n, Some(&made), &more),
            GroupCall::Modify { volumes, .. } if volumes.len() == 3
        ));
    }

    #[test]
    fn the_replication_has_the_groups_role_and_the_group_as_source() {
        let g = vgr("");
        let vr = replication(&g, &names(&g)).unwrap();
        assert_eq!(vr.spec.replication_state.as_str(), "primary");
        assert_eq!(vr.spec.auto_resync, Some(true));
        assert_eq!(vr.spec.data_source.kind, "VolumeGroupReplication");
        assert_eq!(
            vr.spec.data_source.api_group.as_deref(),
            Some("replication.storage.openshift.io")
        );
        assert_eq!(vr.owner_references()[0].uid, "u-1");
        let mut no_class = vgr("");
        no_class.spec.volume_replication_class_name = None;
        assert_eq!(
            replication(&no_class, &names(&no_class)).unwrap_err(),
            GroupInvalid::NoReplicationClass
        );
    }

    #[test]
    fn members_are_protected_and_leavers_released() {
        let claim = |yaml: &str| -> PersistentVolumeClaim { serde_saphyr::from_str(yaml).unwrap() };
        let claims = [
            claim("metadata: {name: boot}"),
            claim(
                "metadata: {name: data, finalizers: [replication.storage.openshift.io/vgr-protection], annotations: {replication.storage.openshift.io/volume-group-replication-name: vm}}",
            ),
            claim(
                "metadata: {name: old, finalizers: [replication.storage.openshift.io/vgr-protection], annotations: {replication.storage.openshift.io/volume-group-replication-name: vm}}",
            ),
            claim(
                "metadata: {name: theirs, finalizers: [replication.storage.openshift.io/vgr-protection], annotations: {replication.storage.openshift.io/volume-group-replication-name: other}}",
            ),
        ];
        let (add, remove) = protection("vm", &claims, &[member("boot"), member("data")]);
        assert_eq!(add, ["boot"]);
        assert_eq!(
            remove,
            ["old"],
            "another group's claim is not ours to release"
        );
    }

    #[test]
    fn the_status_is_the_replications_for_the_groups_generation() {
        let g = vgr("");
        let mut vr = replication(&g, &names(&g)).unwrap();
        vr.metadata.generation = Some(1);
        vr.status = Some(
            serde_saphyr::from_str("{state: Primary, observedGeneration: 1, lastSyncDuration: 1s}")
                .unwrap(),
        );
        let s = status(&g, Some(&vr), &[member("boot"), member("data")]);
        assert_eq!(s.replication.observed_generation, Some(3));
        assert_eq!(s.replication.last_sync_duration.as_deref(), Some("1s"));
        assert_eq!(s.persistent_volume_claims_ref_list.len(), 2);
        vr.metadata.generation = Some(2);
        let s = status(&g, Some(&vr), &[member("boot")]);
        assert_eq!(
            s.replication.observed_generation, None,
            "not yet the group's generation"
        );
        assert_eq!(status(&g, None, &[]).replication.state, None);
    }
}
