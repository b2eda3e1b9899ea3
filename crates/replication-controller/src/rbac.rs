//! Every Kubernetes permission this controller uses, in one place. The Helm chart's ClusterRole
//! and Role are exactly these rules (checked by `tests/rbac_chart.rs` against the rendered chart)
//! and the e2e suite checks every request it makes is allowed by them.

use lifeline_runtime::rbac::{EVENTS, LEASE, Rule, Scope};

pub const RULES: &[Rule] = &[
    Rule {
        scope: Scope::Cluster,
        group: "replication.storage.openshift.io",
        resources: &["volumereplications"],
        verbs: &["list", "watch", "patch"],
        resource_names: &[],
        why: "the objects it reconciles (from its watch cache, never fetched one by one); patch adds and removes its finalizer",
    },
    Rule {
        scope: Scope::Cluster,
        group: "replication.storage.openshift.io",
        resources: &["volumereplications/status"],
        verbs: &["patch"],
        resource_names: &[],
        why: "writes state, conditions and sync times (server-side apply)",
    },
    Rule {
        scope: Scope::Cluster,
        group: "replication.storage.openshift.io",
        resources: &["volumereplicationclasses"],
        verbs: &["get", "list", "watch"],
        resource_names: &[],
        why: "the driver and parameters of each VolumeReplication; changes re-reconcile",
    },
    Rule {
        scope: Scope::Cluster,
        group: "replication.storage.openshift.io",
        resources: &["volumegroupreplications"],
        verbs: &["get", "list", "watch", "patch"],
        resource_names: &[],
        why: "the groups it reconciles, and a group VolumeReplication's source; patch adds and removes its finalizer and records the content's name",
    },
    Rule {
        scope: Scope::Cluster,
        group: "replication.storage.openshift.io",
        resources: &["volumegroupreplications/status"],
        verbs: &["patch"],
        resource_names: &[],
        why: "a group's state, conditions, sync facts and members (server-side apply)",
    },
    Rule {
        scope: Scope::Cluster,
        group: "replication.storage.openshift.io",
        resources: &["volumegroupreplicationclasses"],
        verbs: &["get"],
        resource_names: &[],
        why: "a group's driver and group parameters",
    },
    Rule {
        scope: Scope::Cluster,
        group: "replication.storage.openshift.io",
        resources: &["volumegroupreplicationcontents"],
        verbs: &["get", "create", "patch", "delete"],
        resource_names: &[],
        why: "records the driver's group and its member volumes; deleted with the group",
    },
    Rule {
        scope: Scope::Cluster,
        group: "replication.storage.openshift.io",
        resources: &["volumereplications"],
        verbs: &["get", "create", "delete"],
        resource_names: &[],
        why: "a group's own VolumeReplication: created with the group's role, deleted first when the group is",
    },
    Rule {
        scope: Scope::Cluster,
        group: "",
        resources: &["persistentvolumeclaims"],
        verbs: &["get", "list", "watch", "patch"],
        resource_names: &[],
        why: "the replicated claims; patch marks a claim as owned by one VolumeReplication and protects it while replicated",
    },
    Rule {
        scope: Scope::Cluster,
        group: "",
        resources: &["persistentvolumes"],
        verbs: &["get", "list", "watch"],
        resource_names: &[],
        why: "the CSI volume handle of a bound claim, which the driver replicates; watched into a cache (name and CSI source only) so a reconcile does not GET it",
    },
    Rule {
        scope: Scope::Cluster,
        group: "",
        resources: &["secrets"],
        verbs: &["get"],
        resource_names: &[],
        why: "driver credentials named by a VolumeReplicationClass (replication.storage.openshift.io/replication-secret-*)",
    },
    EVENTS,
    LEASE,
];
