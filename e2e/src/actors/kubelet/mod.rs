//! The kubelet stand-in: the one part of a cluster no real program can play here (a real
//! kubelet needs a container runtime and images). It registers a Node ([`NODE`]) that is Ready,
//! runs the Pods the real kube-scheduler binds to it as local processes ([`pods`],
//! [`container`]) and serves their logs to `pods/log` ([`logs`]).
//!
//! A Pod's containers run each in a mount namespace of its own, under a root made of the
//! host's read-only system folders (`/usr`, `/etc`, …: the "image" is the host's programs, so
//! the restic VolSync's script calls is Debian's), with the Pod's volumes at their
//! `mountPath`s: claims through the CSI driver's directory for the bound volume, `emptyDir`,
//! Secrets and ConfigMaps as files. Scripts an image would carry (VolSync's mover scripts)
//! are mounted where the image has them ([`Images`]). What it does not do that a kubelet does
//! is listed in `e2e/README.md`.

pub mod container;
pub mod logs;
pub mod pods;
pub mod volumes;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use super::Actors;

/// The Node the harness's Pods run on.
pub const NODE: &str = "lifeline-e2e-node";

/// Files an image would carry, by their path in the image: what the kubelet mounts there (the
/// rest of the "image" is the host's programs). VolSync's restic mover image carries its
/// script at `/mover-restic/entry.sh` and restic v0.18.0 at `/usr/local/bin/restic`; its
/// rsync-TLS mover image its scripts at `/mover-rsync-tls/{server,client}.sh` and Debian's
/// rsync and stunnel in `/usr` ([`Images::usr_layers`]); csi-addons' sidecar is at
/// `/usr/local/bin/csi-addons-sidecar` (the benchmark runs it as a Pod). The image's
/// `/usr/local` replaces the host's in every container.
#[derive(Clone, Debug, Default)]
pub struct Images {
    pub files: HashMap<String, PathBuf>,
    /// Folders whose files an image has in `/usr` beyond the host's (Debian packages unpacked
    /// by `cargo xtask ci`: rsync, stunnel and their libraries), `:`-separated, upper first:
    /// overlaid on the host's `/usr` in every container (overlayfs, read-only). From
    /// `LIFELINE_MOVER_USR_LAYERS`.
    pub usr_layers: Option<String>,
}

impl Images {
    /// The upstream scripts `cargo xtask control-plane` puts beside the binaries.
    pub fn from_assets(assets: Option<&Path>) -> Self {
        let mut files = HashMap::new();
        if let Some(dir) = assets {
            for (path, name) in [
                ("/mover-restic/entry.sh", "mover-restic-entry.sh"),
                ("/mover-rsync-tls/server.sh", "mover-rsync-tls-server.sh"),
                ("/mover-rsync-tls/client.sh", "mover-rsync-tls-client.sh"),
                ("/usr/local/bin/restic", "restic"),
                ("/usr/local/bin/csi-addons-sidecar", "csi-addons-sidecar"),
            ] {
                let file = dir.join(name);
                if file.is_file() {
                    files.insert(path.to_owned(), file);
                }
            }
        }
        let usr_layers = std::env::var("LIFELINE_MOVER_USR_LAYERS")
            .ok()
            .filter(|l| !l.is_empty());
        Self { files, usr_layers }
    }
}

/// What the kubelet shares with the sites that start after it: where each CSI driver keeps
/// its volumes (`<root>/volumes/<volume handle>`), registered by the site that runs the driver.
#[derive(Clone, Default)]
pub struct Storage {
    roots: Arc<Mutex<HashMap<String, PathBuf>>>,
}

impl Storage {
    pub fn add_driver(&self, driver: &str, root: &Path) {
        self.roots
            .lock()
            .expect("storage lock")
            .insert(driver.to_owned(), root.to_owned());
    }

    /// The directory of a CSI volume, if its driver is registered.
    pub fn volume_dir(&self, driver: &str, handle: &str) -> Option<PathBuf> {
        let roots = self.roots.lock().expect("storage lock");
        Some(roots.get(driver)?.join("volumes").join(handle))
    }
}

/// A running kubelet stand-in; stops serving and kills its Pods' processes when dropped.
pub struct Kubelet {
    _logs: logs::LogServer,
    _pods: Actors,
    runner: pods::Runner,
    pub storage: Storage,
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.runner.stop_all();
    }
}

/// This process's effective user id (`/proc/self/status`).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Registers [`NODE`] (Ready, with room for the scenarios' Pods) with the log endpoint served
/// here, and runs the Pods bound to it. `dir` holds the Pods' scratch files and `logs` their
/// containers' logs (`<namespace>/<pod>/<container>.log`).
pub async fn start(
    client: &Client,
    dir: &Path,
    logs: PathBuf,
    images: Images,
) -> anyhow::Result<Kubelet> {
    anyhow::ensure!(
        effective_uid() == Some(0),
        "the kubelet stand-in runs Pods in mount namespaces of their own (unshare, mount), which needs root: run the e2e suite and the demo as root, as CI does"
    );
    let server = logs::serve(dir, logs.clone()).await?;
    let nodes = Api::<Node>::all(client.clone());
    let apply = PatchParams::apply("lifeline-e2e-kubelet").force();
    nodes
        .patch(
            NODE,
            &apply,
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE,
                "labels": {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux"}}}),
            ),
        )
        .await
        .context("cannot register the kubelet stand-in's Node")?;
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let room = json!({"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    nodes
        .patch_status(
            NODE,
            &apply,
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Node", "status": {
                // The API server reaches the kubelet at its first address: an IP, not a name
                // no resolver knows.
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": server.port}},
                "capacity": room, "allocatable": room,
                // No node lifecycle controller runs, so this stays as written.
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "message": "the e2e kubelet stand-in runs Pods as local processes",
                    "lastHeartbeatTime": now, "lastTransitionTime": now}],
            }})),
        )
        .await
        .context("cannot publish the kubelet stand-in's status")?;
    // The API server taints a new Node not-ready; the node lifecycle controller (not run: it
    // would want the kubelet's heartbeat Lease) lifts the taint once the Node is Ready.
    nodes
        .patch(
            NODE,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": []}})),
        )
        .await
        .context("cannot lift the new Node's not-ready taint")?;
    let storage = Storage::default();
    let runner = pods::Runner::new(
        client.clone(),
        dir.join("pods"),
        logs,
        storage.clone(),
        images,
    );
    let mut actors = Actors::default();
    actors.spawn("kubelet", {
        let runner = runner.clone();
        move || runner.clone().round()
    });
    Ok(Kubelet {
        _logs: server,
        _pods: actors,
        runner,
        storage,
    })
}
