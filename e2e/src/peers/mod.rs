//! The replication controllers the benchmark runs side by side on the same control plane and
//! the same fake driver: Lifeline's, csi-addons' (its manager and the sidecar it reaches
//! drivers through) and the volume-replication-operator as shipped — each the binary of its
//! release (`cargo xtask control-plane` builds the Go ones from their pinned modules), with
//! that release's CRDs and RBAC, as its own identity.

mod csi_addons;
mod lifeline;
mod vro;

use std::path::Path;
use std::str::FromStr;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use crate::cluster::TestCluster;
use crate::process::Process;

/// Which controller reconciles the VolumeReplications.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    Lifeline,
    CsiAddons,
    Vro,
}

impl FromStr for Peer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "lifeline" => Ok(Peer::Lifeline),
            "csi-addons" => Ok(Peer::CsiAddons),
            "vro" => Ok(Peer::Vro),
            other => Err(format!(
                "unknown controller {other:?}; available: lifeline, csi-addons, vro"
            )),
        }
    }
}

/// What the benchmark needs to know of the driver it runs against.
pub struct Driver<'a> {
    pub name: &'a str,
    /// The driver's Unix socket; its folder is what a sidecar Pod mounts.
    pub socket: &'a Path,
}

/// A controller, running.
pub struct Running {
    /// Kept alive for the run; stopped when dropped.
    pub processes: Vec<Process>,
    /// The programs to measure (CPU, peak RSS), by name.
    pub pids: Vec<(&'static str, u32)>,
    /// The users whose API requests are the controller's (a sidecar's included).
    pub users: Vec<String>,
    /// What it is, for the report: name and version.
    pub release: &'static str,
}

impl Peer {
    pub fn name(self) -> &'static str {
        match self {
            Peer::Lifeline => "lifeline",
            Peer::CsiAddons => "csi-addons",
            Peer::Vro => "vro",
        }
    }

    /// The CRDs that replace the cluster's own for this controller: its release's.
    pub fn crds(self) -> anyhow::Result<Vec<CustomResourceDefinition>> {
        match self {
            Peer::Lifeline => Ok(Vec::new()),
            Peer::CsiAddons => csi_addons::crds(),
            Peer::Vro => vro::crds(),
        }
    }

    /// Starts the controller for the VolumeReplications in `namespace` and waits until it can
    /// reach the driver. `concurrency`: Lifeline's `--concurrency` (the Go controllers run
    /// with their releases' defaults).
    pub async fn start(
        self,
        cluster: &TestCluster,
        namespace: &str,
        driver: &Driver<'_>,
        concurrency: usize,
    ) -> anyhow::Result<Running> {
        match self {
            Peer::Lifeline => lifeline::start(cluster, namespace, driver, concurrency).await,
            Peer::CsiAddons => csi_addons::start(cluster, namespace, driver).await,
            Peer::Vro => vro::start(cluster, namespace, driver).await,
        }
    }
}

/// Applies an upstream manifest (one file, maybe several documents) as the admin, with the
/// control plane's kubectl, as its project's install instructions do.
async fn apply_manifest(cluster: &TestCluster, file: &Path) -> anyhow::Result<()> {
    let kubectl = crate::control_plane::kubectl()
        .ok_or_else(|| anyhow::anyhow!("no kubectl: run `cargo xtask control-plane`"))?;
    let output = tokio::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .args(["apply", "--server-side", "-f"])
        .arg(file)
        .output()
        .await?;
    anyhow::ensure!(
        output.status.success(),
        "kubectl apply -f {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// A free TCP port on loopback (for a server whose port must be given in advance).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_are_named_as_the_flag_takes_them() {
        for peer in [Peer::Lifeline, Peer::CsiAddons, Peer::Vro] {
            assert_eq!(peer.name().parse::<Peer>(), Ok(peer));
        }
        let refused = "rook".parse::<Peer>().unwrap_err();
        assert!(
            refused.contains("available: lifeline, csi-addons, vro"),
            "{refused}"
        );
    }
}
