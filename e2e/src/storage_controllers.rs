//! The real upstream programs a cluster's storage needs besides the control plane, built from
//! the Go modules pinned in `tools/control-plane/` (`cargo xtask control-plane` puts them in
//! `KUBEBUILDER_ASSETS`):
//!
//! - per cluster ([`ClusterControllers`]): kube-scheduler (binds Pods to the kubelet
//!   stand-in's Node), the snapshot-controller (external-snapshotter v8), VolSync v0.14.0;
//! - per CSI driver ([`Sidecars`]): external-provisioner v5 and the csi-snapshotter sidecar on
//!   the driver's socket, as a driver's controller Pod runs them.
//!
//! The scheduler authenticates as `system:kube-scheduler` (bound by the API server's bootstrap
//! roles); the others run with the harness's kubeconfig, as the issue asks of VolSync (their
//! charts' RBAC is theirs to test, not ours).

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::process::Process;

/// One of the upstream programs, from `KUBEBUILDER_ASSETS` or PATH.
pub fn program(name: &str) -> anyhow::Result<PathBuf> {
    crate::control_plane::asset(name).with_context(|| {
        format!(
            "{name} is not in KUBEBUILDER_ASSETS or on PATH: run `cargo xtask control-plane` and export the KUBEBUILDER_ASSETS it prints"
        )
    })
}

/// A file `cargo xtask control-plane` keeps beside the programs (VolSync's CRDs and scripts).
pub fn asset_file(name: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("KUBEBUILDER_ASSETS")
        .map(PathBuf::from)
        .context("KUBEBUILDER_ASSETS is not set: run `cargo xtask control-plane` and export the folder it prints")?;
    let path = dir.join(name);
    anyhow::ensure!(
        path.is_file(),
        "{} is missing: run `cargo xtask control-plane` to fill the folder",
        path.display()
    );
    Ok(path)
}

/// The CRDs of the VolSync release that runs (v0.14.0, from its module).
pub fn volsync_crds()
-> anyhow::Result<Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>>
{
    [
        "volsync.backube_replicationsources.yaml",
        "volsync.backube_replicationdestinations.yaml",
    ]
    .into_iter()
    .map(|name| {
        let path = asset_file(name)?;
        let text = std::fs::read_to_string(&path)?;
        serde_saphyr::from_str(&text).with_context(|| format!("{} is not a CRD", path.display()))
    })
    .collect()
}

/// The cluster-wide controllers; stopped when dropped.
pub struct ClusterControllers {
    _processes: Vec<Process>,
}

impl ClusterControllers {
    /// Starts them with their logs in `dir`. `admin` is the harness's kubeconfig, `scheduler`
    /// one for `system:kube-scheduler`.
    pub fn start(dir: &Path, admin: &Path, scheduler: &Path) -> anyhow::Result<Self> {
        let kubeconfig = |path: &Path| vec![("KUBECONFIG".to_owned(), path.display().to_string())];
        let scheduler = Process::spawn(
            dir,
            "kube-scheduler",
            &program("kube-scheduler")?,
            &[
                format!("--kubeconfig={}", scheduler.display()),
                "--leader-elect=false".into(),
                // It serves nothing the tests read.
                "--secure-port=0".into(),
            ],
            &[],
        )?;
        let snapshots = Process::spawn(
            dir,
            "snapshot-controller",
            &program("snapshot-controller")?,
            &[
                format!("--kubeconfig={}", admin.display()),
                "--leader-election=false".into(),
                "--http-endpoint=".into(),
                // Retry failed work at test speed.
                "--retry-interval-start=1s".into(),
                "--retry-interval-max=5s".into(),
            ],
            &[],
        )?;
        let mut volsync_env = kubeconfig(admin);
        volsync_env.push(("VOLSYNC_NAMESPACE".into(), "volsync-system".into()));
        let volsync = Process::spawn(
            dir,
            "volsync",
            &program("volsync")?,
            &[
                "--leader-elect=false".into(),
                "--metrics-bind-address=0".into(),
                "--health-probe-bind-address=0".into(),
            ],
            &volsync_env,
        )?;
        Ok(Self {
            _processes: vec![scheduler, snapshots, volsync],
        })
    }
}

/// A CSI driver's sidecars; stopped when dropped. A sidecar exits when it loses its driver
/// (the driver restarted, or was killed by a scenario): it is started again, as a kubelet
/// restarts a Pod's container.
pub struct Sidecars {
    supervisor: tokio::task::JoinHandle<()>,
}

impl Drop for Sidecars {
    fn drop(&mut self) {
        // Dropping the task drops the processes, which kills them.
        self.supervisor.abort();
    }
}

/// How often the sidecars are looked at, and at least how long between two starts of one.
const RESTART_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

impl Sidecars {
    /// Starts external-provisioner and csi-snapshotter on the driver's unix socket.
    pub fn start(dir: &Path, admin: &Path, socket: &Path, name: &str) -> anyhow::Result<Self> {
        let common = |extra: &[&str]| -> Vec<String> {
            let mut args = vec![
                format!("--csi-address={}", socket.display()),
                format!("--kubeconfig={}", admin.display()),
                "--leader-election=false".into(),
                "--timeout=60s".into(),
                "--http-endpoint=".into(),
            ];
            args.extend(extra.iter().map(|s| (*s).to_owned()));
            args
        };
        let provisioner = Process::spawn(
            dir,
            &format!("csi-provisioner-{name}"),
            &program("csi-provisioner")?,
            &common(&["--retry-interval-start=1s", "--retry-interval-max=5s"]),
            &[],
        )?;
        let snapshotter = Process::spawn(
            dir,
            &format!("csi-snapshotter-{name}"),
            &program("csi-snapshotter")?,
            &common(&["--retry-interval-start=1s", "--retry-interval-max=5s"]),
            &[],
        )?;
        let mut processes = vec![provisioner, snapshotter];
        let supervisor = tokio::spawn(async move {
            loop {
                tokio::time::sleep(RESTART_CHECK).await;
                for process in &mut processes {
                    if !process.is_running() {
                        tracing::info!(sidecar = %process.name, "sidecar exited; starting it again");
                        if let Err(error) = process.restart().await {
                            tracing::warn!(sidecar = %process.name, error = %format!("{error:#}"), "cannot restart");
                        }
                    }
                }
            }
        });
        Ok(Self { supervisor })
    }
}
