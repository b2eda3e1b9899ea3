//! Cluster actors: the controllers Lifeline relies on that a bare API server does not run — a
//! CSI provisioner/binder for the hostpath driver, a snapshot controller, and a VolSync restic
//! mover. They act only through the API, as the real ones do, and each acts only on objects
//! that are its own (its StorageClass provisioner, its VolumeSnapshotClass driver, VolSync
//! kinds while the cluster has only our stand-in CRDs), so on a cluster with the real
//! controllers they stay out of the way.
//!
//! Knowingly simpler than the real controllers: they are level-triggered loops that list
//! their objects every [`TICK`] instead of watching, and they add no finalizers.

pub mod files;
pub mod kubelet;
pub mod mover_pod;
pub mod provisioner;
pub mod restic;
pub mod snapshots;
pub mod volsync;
pub mod workloads;

use std::path::PathBuf;
use std::time::Duration;

use kube::Client;
use tokio::task::JoinHandle;

/// How often each actor looks at its objects.
pub const TICK: Duration = Duration::from_millis(200);

/// One site's storage: the hostpath driver's name and root, as its actors see them.
#[derive(Clone, Debug)]
pub struct Site {
    pub driver: String,
    /// The hostpath driver's `--root`: volumes in `volumes/<id>`, snapshots in `snapshots/<id>`.
    pub root: PathBuf,
    /// Test-only: the restic mover accepts a local-path repository (the real one cannot write
    /// outside its volume, cache and /tmp, so by default it refuses one).
    pub allow_local_repository: bool,
    /// Where the mover writes its Pod's log so that `pods/log` serves it
    /// ([`crate::TestCluster::pod_logs`]); `None`: kept beside the mover's scratch files only.
    pub pod_logs: Option<PathBuf>,
    /// Test-only: the mover uploads at most this many KiB/s (restic's `--limit-upload`), so a
    /// test can watch a backup in flight, as over a slow link to the object store.
    pub upload_limit_kib: Option<u32>,
}

impl Site {
    pub fn volume_dir(&self, id: &str) -> PathBuf {
        self.root.join("volumes").join(id)
    }

    pub fn snapshot_dir(&self, handle: &str) -> PathBuf {
        self.root.join("snapshots").join(handle)
    }
}

/// Running actors; stopped when dropped.
#[derive(Default)]
pub struct Actors {
    tasks: Vec<JoinHandle<()>>,
}

impl Actors {
    /// Starts the provisioner and the snapshot controller for `site`.
    pub fn storage(client: Client, site: Site) -> Self {
        let mut actors = Self::default();
        actors.spawn("provisioner", {
            let (client, site) = (client.clone(), site.clone());
            move || provisioner::reconcile_all(client.clone(), site.clone())
        });
        actors.spawn("snapshots", move || {
            snapshots::reconcile_all(client.clone(), site.clone())
        });
        actors
    }

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
