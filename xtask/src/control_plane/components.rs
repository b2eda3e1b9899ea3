//! What `cargo xtask control-plane` builds: each program, the tools module that pins it, and
//! the files of that module copied beside it.

/// One program of the control plane: the tools module that pins it and the package to build.
pub struct Component {
    /// The binary's name (and its name in `KUBEBUILDER_ASSETS`).
    pub name: &'static str,
    /// The tools module under `tools/control-plane/`.
    pub module: &'static str,
    /// The module whose version keys the cache, and the main package built from it.
    pub pinned: &'static str,
    pub package: &'static str,
    /// What `<binary> --version` prints at the pinned version, given that version; `None`:
    /// never taken from PATH (the storage controllers are not found installed).
    pub version_line: Option<fn(&str) -> String>,
    /// Files of the pinned module copied beside the binary (source path → name in the cache):
    /// the CRDs and scripts that belong to that release.
    pub files: &'static [(&'static str, &'static str)],
}

pub const COMPONENTS: &[Component] = &[
    Component {
        name: "etcd",
        module: "etcd",
        pinned: "go.etcd.io/etcd/server/v3",
        package: "go.etcd.io/etcd/server/v3",
        version_line: Some(|v| format!("etcd Version: {}", v.trim_start_matches('v'))),
        files: &[],
    },
    Component {
        name: "kube-apiserver",
        module: "kubernetes",
        pinned: "k8s.io/kubernetes",
        package: "k8s.io/kubernetes/cmd/kube-apiserver",
        version_line: Some(|v| format!("Kubernetes {v}")),
        files: &[],
    },
    Component {
        name: "kube-controller-manager",
        module: "kubernetes",
        pinned: "k8s.io/kubernetes",
        package: "k8s.io/kubernetes/cmd/kube-controller-manager",
        version_line: Some(|v| format!("Kubernetes {v}")),
        files: &[],
    },
    Component {
        name: "kubectl",
        module: "kubernetes",
        pinned: "k8s.io/kubernetes",
        package: "k8s.io/kubernetes/cmd/kubectl",
        version_line: Some(|v| format!("Client Version: {v}")),
        files: &[],
    },
    // Binds Pods to the kubelet stand-in's Node, as in a cluster.
    Component {
        name: "kube-scheduler",
        module: "kubernetes",
        pinned: "k8s.io/kubernetes",
        package: "k8s.io/kubernetes/cmd/kube-scheduler",
        version_line: None,
        files: &[],
    },
    Component {
        name: "csi-provisioner",
        module: "external-provisioner",
        pinned: "github.com/kubernetes-csi/external-provisioner/v5",
        package: "github.com/kubernetes-csi/external-provisioner/v5/cmd/csi-provisioner",
        version_line: None,
        files: &[],
    },
    Component {
        name: "csi-snapshotter",
        module: "external-snapshotter",
        pinned: "github.com/kubernetes-csi/external-snapshotter/v8",
        package: "github.com/kubernetes-csi/external-snapshotter/v8/cmd/csi-snapshotter",
        version_line: None,
        files: &[],
    },
    Component {
        name: "snapshot-controller",
        module: "external-snapshotter",
        pinned: "github.com/kubernetes-csi/external-snapshotter/v8",
        package: "github.com/kubernetes-csi/external-snapshotter/v8/cmd/snapshot-controller",
        version_line: None,
        files: &[],
    },
    Component {
        name: "volsync",
        module: "volsync",
        pinned: "github.com/backube/volsync",
        package: "github.com/backube/volsync/cmd",
        version_line: None,
        files: &[
            (
                "config/crd/bases/volsync.backube_replicationsources.yaml",
                "volsync.backube_replicationsources.yaml",
            ),
            (
                "config/crd/bases/volsync.backube_replicationdestinations.yaml",
                "volsync.backube_replicationdestinations.yaml",
            ),
            // The restic and rsync-TLS movers' scripts, run by the kubelet stand-in.
            ("mover-restic/entry.sh", "mover-restic-entry.sh"),
            ("mover-rsync-tls/server.sh", "mover-rsync-tls-server.sh"),
            ("mover-rsync-tls/client.sh", "mover-rsync-tls-client.sh"),
        ],
    },
    // The restic VolSync's mover image carries, for the script above.
    Component {
        name: "restic",
        module: "restic",
        pinned: "github.com/restic/restic",
        package: "github.com/restic/restic/cmd/restic",
        version_line: None,
        files: &[],
    },
    // Velero's server and CLI (one binary), driving the data mover's DataUploads and
    // DataDownloads in the e2e suite as it does in a cluster, and the AWS object-store plugin
    // it keeps backups in the test's S3 server with.
    Component {
        name: "velero",
        module: "velero",
        pinned: "github.com/vmware-tanzu/velero",
        package: "github.com/vmware-tanzu/velero/cmd/velero",
        version_line: None,
        files: &[],
    },
    Component {
        name: "velero-plugin-for-aws",
        module: "velero",
        pinned: "github.com/vmware-tanzu/velero-plugin-for-aws",
        package: "github.com/vmware-tanzu/velero-plugin-for-aws/velero-plugin-for-aws",
        version_line: None,
        files: &[],
    },
    // The peers `cargo xtask bench replication --controller` measures Lifeline against:
    // csi-addons' controller and the sidecar it reaches drivers through, with the release's
    // CRDs and RBAC ...
    Component {
        name: "csi-addons-manager",
        module: "kubernetes-csi-addons",
        pinned: "github.com/csi-addons/kubernetes-csi-addons",
        package: "github.com/csi-addons/kubernetes-csi-addons/cmd/manager",
        version_line: None,
        files: &[
            ("deploy/controller/crds.yaml", "csi-addons-crds.yaml"),
            ("deploy/controller/rbac.yaml", "csi-addons-rbac.yaml"),
        ],
    },
    Component {
        name: "csi-addons-sidecar",
        module: "kubernetes-csi-addons",
        pinned: "github.com/csi-addons/kubernetes-csi-addons",
        package: "github.com/csi-addons/kubernetes-csi-addons/sidecar",
        version_line: None,
        files: &[],
    },
    // ... and the volume-replication-operator as shipped, with its RBAC role.
    Component {
        name: "volume-replication-operator",
        module: "volume-replication-operator",
        pinned: "github.com/csi-addons/volume-replication-operator",
        package: "github.com/csi-addons/volume-replication-operator",
        version_line: None,
        files: &[(
            "config/rbac/role.yaml",
            "volume-replication-operator-role.yaml",
        )],
    },
];
