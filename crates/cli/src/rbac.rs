//! What the person running `kubectl lifeline` needs on each site, one rule per line with why.
//! `docs/runbook.md` shows them as a ClusterRole; the e2e suite checks every request the CLI
//! makes is allowed by them (the API server's audit log), and its tests run as a user bound to
//! exactly these rules.

/// (API group, resources, verbs, why); all cluster-wide, since the CLI reads across namespaces.
pub const RULES: &[(&str, &[&str], &[&str], &str)] = &[
    (
        "replication.storage.openshift.io",
        &["volumereplications"],
        &["list"],
        "status: every replicated claim and what its site says of it",
    ),
    (
        "replication.storage.openshift.io",
        &["volumereplicationclasses"],
        &["get", "create"],
        "status: the schedulingInterval in the RPO bound; protect: reads it at the source, creates it at the standby",
    ),
    (
        "replication.storage.openshift.io",
        &["volumereplications"],
        &["create"],
        "protect: the standby's secondary VolumeReplication",
    ),
    (
        "replication.storage.openshift.io",
        &["volumereplications"],
        &["get", "patch"],
        "migrate, failover, failback: ask for primary or secondary (spec.replicationState) and wait for the status",
    ),
    (
        "replication.storage.openshift.io",
        &["volumegroupreplications"],
        &["get", "patch"],
        "status: a group's member claims; migrate, failover, failback: a group is asked for its role (its VolumeReplication follows)",
    ),
    (
        "apps",
        &["deployments", "statefulsets"],
        &["list", "patch"],
        "status: whether the application that mounts each volume runs anywhere; migrate, failover, failback: find the workloads that mount the claims, scale them (spec.replicas and the lifeline.dev/replicas annotation)",
    ),
    (
        "",
        &["pods"],
        &["list"],
        "migrate, failback: wait until no Pod mounts the claims before a demote",
    ),
    (
        "",
        &["persistentvolumeclaims", "persistentvolumes"],
        &["get", "create"],
        "protect: reads the source's claim and volume, creates the standby's static pair",
    ),
    (
        "",
        &["secrets"],
        &["get"],
        "protect: checks the Secret a class names exists at the standby (its metadata only); reads the VolSync pre-shared key at one site to give the other the same",
    ),
    (
        "replication.storage.openshift.io",
        &["volumereplicationclasses"],
        &["list"],
        "protect: which CSI drivers replicate (auto picks VolSync for the claims of those that do not)",
    ),
    (
        "",
        &["persistentvolumeclaims"],
        &["list", "patch"],
        "status: the claims VolSync pairs protect; protect, migrate, failover, failback: a claim's VolSync role (its lifeline.dev/volsync-* annotations)",
    ),
    (
        "",
        &["secrets"],
        &["create"],
        "protect: the VolSync pre-shared key Secret, the same at both sites",
    ),
    (
        "volsync.backube",
        &["replicationsources", "replicationdestinations"],
        &["list", "get", "create", "patch", "delete"],
        "status: the VolSync pairs' syncs; protect: makes them; migrate, failover, failback: a final manual sync, removes and reverses them",
    ),
    (
        "snapshot.storage.k8s.io",
        &["volumesnapshotclasses"],
        &["list"],
        "protect, migrate, failback: the snapshot class a VolSync source snapshots its claim with",
    ),
];

/// The ClusterRole an SRE needs on each site, as YAML with each rule's why; the README shows
/// exactly this (a test keeps them the same).
pub fn cluster_role(name: &str) -> String {
    let list = |items: &[&str]| {
        items
            .iter()
            .map(|i| format!("\"{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {name}\nrules:\n"
    );
    for (group, resources, verbs, why) in RULES {
        out.push_str(&format!(
            "  # {why}\n  - apiGroups: [\"{group}\"]\n    resources: [{}]\n    verbs: [{}]\n",
            list(resources),
            list(verbs)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_readme_shows_the_cluster_role_the_code_checks() {
        let readme = include_str!("../README.md");
        let role = super::cluster_role("lifeline-sre");
        assert!(
            readme.contains(&role),
            "crates/cli/README.md must show this ClusterRole:\n{role}"
        );
        let parsed: serde_json::Value = serde_saphyr::from_str(&role).unwrap();
        assert_eq!(
            parsed["rules"].as_array().unwrap().len(),
            super::RULES.len()
        );
    }
}
