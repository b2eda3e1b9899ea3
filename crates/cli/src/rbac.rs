//! What the person running `kubectl lifeline` needs on each site, one rule per line with why.
//! `docs/runbook.md` shows them as a ClusterRole; the e2e suite checks every request the CLI
//! makes is allowed by them (the local API server's access log).

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
        "apps",
        &["deployments", "statefulsets"],
        &["list", "patch"],
        "migrate, failover, failback: find the workloads that mount the claims, scale them (spec.replicas and the lifeline.dev/replicas annotation)",
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
        "protect: checks the Secret a class names exists at the standby (its metadata only)",
    ),
];
