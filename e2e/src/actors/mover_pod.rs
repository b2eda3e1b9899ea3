//! The Pod of VolSync's mover Job, as the Job controller and a kubelet leave it: named after
//! its Job (`volsync-src-<name>-<suffix>`), labelled `batch.kubernetes.io/job-name`, Running on
//! a node, its `restic` container's output in the node's log directory (served as `pods/log`
//! by the local backend). Deleted when the run ends, as VolSync's cleanup deletes the Job.
//!
//! Knowingly simpler: no Job object, nothing runs in the Pod (restic runs in the harness), a
//! failed run's Pod goes too (a real Job keeps failed Pods until it gives up).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use super::Site;

/// The Job controller's label on a Job's Pods.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// The node the stand-in's Pods run on.
pub use super::kubelet::NODE;

static RUNS: AtomicU32 = AtomicU32::new(0);

pub struct MoverPod {
    api: Api<Pod>,
    name: String,
    /// Where the mover's output goes.
    pub log: PathBuf,
}

/// VolSync's Job name for a ReplicationSource (`src`) or ReplicationDestination (`dst`).
pub fn job_name(side: &str, owner: &str) -> String {
    format!("volsync-{side}-{owner}")
}

impl MoverPod {
    /// Creates the Running Pod of `job` (its mover runs `action`).
    pub async fn start(
        client: &Client,
        site: &Site,
        namespace: &str,
        job: &str,
        action: &str,
        scratch: &Path,
    ) -> anyhow::Result<Self> {
        let api = Api::<Pod>::namespaced(client.clone(), namespace);
        let name = format!(
            "{job}-{:05}",
            RUNS.fetch_add(1, Ordering::Relaxed) % 100_000
        );
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {
                JOB_NAME_LABEL: job, "job-name": job, "app.kubernetes.io/created-by": "volsync"}},
            "spec": {"nodeName": NODE, "restartPolicy": "Never", "containers": [{
                "name": "restic", "image": "quay.io/backube/volsync:0.12.0",
                "command": ["/mover-restic/entry.sh"], "args": [action]}]},
        }))?;
        api.create(&PostParams::default(), &pod).await?;
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Running"}})),
        )
        .await?;
        let log = match &site.pod_logs {
            Some(dir) => dir.join(namespace).join(&name).join("restic.log"),
            None => scratch.join(format!("{name}.log")),
        };
        Ok(Self { api, name, log })
    }

    /// The run ended: the Pod goes.
    pub async fn finish(self) {
        if let Err(e) = self.api.delete(&self.name, &DeleteParams::default()).await {
            tracing::warn!(pod = self.name, error = %e, "cannot delete the mover Pod");
        }
    }
}
