//! Every Kubernetes permission this controller uses, in one place. The Helm chart's ClusterRole
//! and Roles are exactly these rules (checked by `tests/rbac_chart.rs` against the rendered
//! chart) and the e2e suite checks every request it makes is allowed by them. Working objects
//! (Secrets, claims, snapshots, VolSync objects) are written only in the protected namespace.

use lifeline_runtime::rbac::{EVENTS, LEASE, Rule, Scope};

pub const RULES: &[Rule] = &[
    Rule {
        scope: Scope::Cluster,
        group: "datamover.oadp.openshift.io",
        resources: &["volumesnapshotbackups", "volumesnapshotrestores"],
        verbs: &["list", "watch", "patch"],
        resource_names: &[],
        why: "the requests it serves; list counts running ones for the concurrency limits; patch sets its finalizer and annotations",
    },
    Rule {
        scope: Scope::Cluster,
        group: "datamover.oadp.openshift.io",
        resources: &[
            "volumesnapshotbackups/status",
            "volumesnapshotrestores/status",
        ],
        verbs: &["patch"],
        resource_names: &[],
        why: "phases and conditions",
    },
    Rule {
        scope: Scope::Cluster,
        group: "snapshot.storage.k8s.io",
        resources: &["volumesnapshotcontents"],
        verbs: &["get", "list", "watch", "create", "patch", "delete"],
        resource_names: &[],
        why: "reads the user's snapshot content; creates and deletes the working copy (contents are cluster-scoped); patch keeps a restored content (deletionPolicy Retain)",
    },
    Rule {
        scope: Scope::Cluster,
        group: "snapshot.storage.k8s.io",
        resources: &["volumesnapshotclasses"],
        verbs: &["get"],
        resource_names: &[],
        why: "checks the snapshot's class exists before copying it",
    },
    Rule {
        scope: Scope::Cluster,
        group: "snapshot.storage.k8s.io",
        resources: &["volumesnapshots"],
        verbs: &["get"],
        resource_names: &[],
        why: "the user's snapshot, to find the claim it was taken of (which picks the repository)",
    },
    Rule {
        scope: Scope::Cluster,
        group: "",
        resources: &["persistentvolumeclaims"],
        verbs: &["get"],
        resource_names: &[],
        why: "the user's source claim: its size, storage class and access modes",
    },
    Rule {
        scope: Scope::Cluster,
        group: "",
        resources: &["pods"],
        verbs: &["list"],
        resource_names: &[],
        why: "the workload Pod mounting the source claim, whose security context the mover takes when OADP's ConfigMap says SourceMoverSecurityContext: \"true\"",
    },
    Rule {
        scope: Scope::Cluster,
        group: "",
        resources: &["namespaces"],
        verbs: &["get"],
        resource_names: &[],
        why: "reports a missing protected namespace instead of failing on it",
    },
    Rule {
        scope: Scope::Cluster,
        group: "apiextensions.k8s.io",
        resources: &["customresourcedefinitions"],
        verbs: &["get"],
        resource_names: &[
            "replicationsources.volsync.backube",
            "replicationdestinations.volsync.backube",
        ],
        why: "reports VolSync missing instead of failing on it (only VolSync's two CRDs)",
    },
    EVENTS,
    Rule {
        scope: Scope::ProtectedNamespace,
        group: "",
        resources: &["secrets"],
        verbs: &["get", "list", "watch", "create", "delete"],
        resource_names: &[],
        why: "reads the user's restic Secret; writes and removes the per-request restic Secret; watches their metadata (never values) so a fixed Secret is noticed at once",
    },
    Rule {
        scope: Scope::ProtectedNamespace,
        group: "",
        resources: &["configmaps"],
        verbs: &["get", "list", "watch"],
        resource_names: &[],
        why: "OADP's per-StorageClass settings (<storageclass>-config); watched (metadata) so a fixed one is noticed at once",
    },
    Rule {
        scope: Scope::ProtectedNamespace,
        group: "",
        resources: &["persistentvolumeclaims"],
        verbs: &["get", "create", "delete"],
        resource_names: &[],
        why: "the working claim restic reads from or restores into",
    },
    Rule {
        scope: Scope::ProtectedNamespace,
        group: "snapshot.storage.k8s.io",
        resources: &["volumesnapshots"],
        verbs: &["get", "create", "delete"],
        resource_names: &[],
        why: "the working snapshot: a copy of the user's, and the restored one",
    },
    Rule {
        scope: Scope::ProtectedNamespace,
        group: "volsync.backube",
        resources: &["replicationsources", "replicationdestinations"],
        verbs: &["get", "list", "watch", "create", "delete"],
        resource_names: &[],
        why: "the VolSync restic movers it creates, watches for completion and removes",
    },
    LEASE,
];
