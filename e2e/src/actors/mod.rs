//! Cluster actors: the stand-ins for what no real program can run here — the kubelet
//! ([`kubelet`]: a Node that runs Pods as local processes), the Deployment and StatefulSet
//! controllers' visible effect ([`workloads`]: replica counts, since the workloads the runbook
//! scales need no process of their own) and a cloud load balancer's ([`load_balancer`]: an
//! ingress address for a `LoadBalancer` Service). Everything else is the real program: the control
//! plane, kube-scheduler, the CSI sidecars, the snapshot-controller and VolSync
//! ([`crate::storage_controllers`]). Each difference from the real thing is in `e2e/README.md`.
//!
//! Knowingly simpler than real controllers: they are level-triggered loops that list their
//! objects every [`TICK`] instead of watching.

pub mod files;
pub mod kubelet;
pub mod load_balancer;
pub mod workloads;

use std::path::PathBuf;
use std::time::Duration;

use tokio::task::JoinHandle;

/// How often each actor looks at its objects.
pub const TICK: Duration = Duration::from_millis(200);

/// One site's storage as the tests look at it: the hostpath driver's name and root.
#[derive(Clone, Debug)]
pub struct Site {
    pub driver: String,
    /// The hostpath driver's `--root`: volumes in `volumes/<id>`, CSI snapshots in
    /// `csi-snapshots/<id>`.
    pub root: PathBuf,
}

impl Site {
    pub fn volume_dir(&self, id: &str) -> PathBuf {
        self.root.join("volumes").join(id)
    }

    pub fn snapshot_dir(&self, handle: &str) -> PathBuf {
        self.root.join("csi-snapshots").join(handle)
    }
}

/// Running actors; stopped when dropped.
#[derive(Default)]
pub struct Actors {
    tasks: Vec<JoinHandle<()>>,
}

impl Actors {
    /// Runs `round` every [`TICK`] until dropped, logging failures.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, mut round: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send,
    {
        self.tasks.push(tokio::spawn(async move {
            let mut last_error = String::new();
            loop {
                if let Err(error) = round().await {
                    let text = format!("{error:#}");
                    if text != last_error {
                        tracing::warn!(actor = name, error = %text, "actor round failed");
                        last_error = text;
                    }
                }
                tokio::time::sleep(TICK).await;
            }
        }));
    }

    pub fn merge(&mut self, other: Actors) {
        let mut other = other;
        self.tasks.append(&mut other.tasks);
    }
}

impl Drop for Actors {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
