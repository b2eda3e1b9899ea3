//! The Pods bound to the stand-in's Node: each is prepared ([`super::volumes`]), its init
//! containers run in order, then its containers together ([`super::container`]), and its
//! status written as a kubelet writes it (phase, container states, exit codes, termination
//! messages). A Pod being deleted has its processes killed and is then removed (`grace 0`), as
//! a kubelet confirms a deletion.
//!
//! Knowingly simpler than a kubelet: containers are never restarted (`restartPolicy` is
//! treated as `Never`: every Pod the scenarios run is a Job's), no probes, no resource limits.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::container::{self, Running};
use super::volumes::{self, Prepared, Waiting};
use super::{Images, NODE, Storage};

/// How often a Pod that cannot start yet (an unbound claim, a missing Secret) is looked at.
const RETRY: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct Runner {
    client: Client,
    dir: PathBuf,
    logs: PathBuf,
    storage: Storage,
    images: Arc<Images>,
    /// Pod uid → its task (aborting it kills its processes).
    running: Arc<Mutex<HashMap<String, JoinHandle<()>>>>,
}

impl Runner {
    pub fn new(
        client: Client,
        dir: PathBuf,
        logs: PathBuf,
        storage: Storage,
        images: Images,
    ) -> Self {
        Self {
            client,
            dir,
            logs,
            storage,
            images: Arc::new(images),
            running: Arc::default(),
        }
    }

    /// Kills every Pod's processes (the kubelet is going away).
    pub fn stop_all(&self) {
        for (_, task) in self.running.lock().expect("pods lock").drain() {
            task.abort();
        }
    }

    /// Starts the Pods bound here that have not started, stops and removes the deleted ones.
    pub async fn round(self) -> anyhow::Result<()> {
        let pods = Api::<Pod>::all(self.client.clone())
            .list(&ListParams::default().fields(&format!("spec.nodeName={NODE}")))
            .await?
            .items;
        let mut running = self.running.lock().expect("pods lock");
        running.retain(|uid, task| {
            let listed = pods.iter().any(|p| p.metadata.uid.as_deref() == Some(uid));
            if !listed {
                task.abort();
            }
            listed
        });
        for pod in pods {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            if pod.metadata.deletion_timestamp.is_some() {
                if let Some(task) = running.remove(&uid) {
                    task.abort();
                }
                let (client, pod) = (self.client.clone(), pod.clone());
                tokio::spawn(async move { confirm_deletion(&client, &pod).await });
                continue;
            }
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            if running.contains_key(&uid) || matches!(phase, Some("Succeeded" | "Failed")) {
                continue;
            }
            let runner = self.clone();
            running.insert(
                uid,
                tokio::spawn(async move {
                    let name = pod.name_any();
                    if let Err(error) = runner.run(pod).await {
                        tracing::warn!(pod = %name, error = %format!("{error:#}"), "kubelet stand-in: pod failed to run");
                    }
                }),
            );
        }
        Ok(())
    }

    async fn run(&self, pod: Pod) -> anyhow::Result<()> {
        let namespace = pod.namespace().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let dir = self.dir.join(&uid);
        let pods = Api::<Pod>::namespaced(self.client.clone(), &namespace);
        let started = Timestamp::now().to_string();
        // What the Pod was last said to wait for: the status is written when that changes.
        let mut said: Option<Waiting> = None;
        let (init, main) = loop {
            match volumes::prepare(&self.client, &self.storage, &self.images, &pod, &dir).await? {
                Ok(ready) => break ready,
                Err(wait) => {
                    if said.as_ref() != Some(&wait) {
                        patch(&pods, &pod, pending(&pod, &started, &wait)).await?;
                        said = Some(wait);
                    }
                    tokio::time::sleep(RETRY).await;
                }
            }
        };
        let logs = self.logs.join(&namespace).join(pod.name_any());
        let mut init_states = Vec::new();
        for container in &init {
            patch(
                &pods,
                &pod,
                running_status(&started, &init_states, &[container], &[], false),
            )
            .await?;
            let state = self.run_one(container, &dir, &logs).await;
            let failed = state.exit_code != 0;
            init_states.push((container.clone(), state));
            if failed {
                let status = finished(&started, &init_states, &[]);
                return patch(&pods, &pod, status).await;
            }
        }
        patch(
            &pods,
            &pod,
            running_status(
                &started,
                &init_states,
                &[],
                &main.iter().collect::<Vec<_>>(),
                true,
            ),
        )
        .await?;
        let results =
            futures::future::join_all(main.iter().map(|c| self.run_one(c, &dir, &logs))).await;
        let states: Vec<(Prepared, Exited)> = main.into_iter().zip(results).collect();
        patch(&pods, &pod, finished(&started, &init_states, &states)).await
    }

    /// Runs one container to its end.
    async fn run_one(
        &self,
        container: &Prepared,
        dir: &std::path::Path,
        logs: &std::path::Path,
    ) -> Exited {
        let started = Timestamp::now().to_string();
        let log = logs.join(format!("{}.log", container.name));
        let mut running: Running =
            match container::start(container, &dir.join(&container.name), &log) {
                Ok(running) => running,
                Err(error) => {
                    return Exited {
                        exit_code: 128,
                        reason: "StartError",
                        message: Some(format!("{error:#}")),
                        started: started.clone(),
                        finished: started,
                    };
                }
            };
        let code = match running.child.wait().await {
            Ok(status) => status.code().unwrap_or_else(|| {
                128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(9)
            }),
            Err(_) => 128,
        };
        let message =
            container::termination_message(&running, container.termination_from_log, code != 0);
        Exited {
            exit_code: code,
            reason: if code == 0 { "Completed" } else { "Error" },
            message,
            started,
            finished: Timestamp::now().to_string(),
        }
    }
}

/// How a container ended.
#[derive(Clone, Debug)]
pub struct Exited {
    pub exit_code: i32,
    pub reason: &'static str,
    pub message: Option<String>,
    pub started: String,
    pub finished: String,
}

fn status_of(container: &Prepared, state: Value, ready: bool) -> Value {
    json!({"name": container.name, "image": container.image, "imageID": "", "ready": ready,
           "restartCount": 0, "started": state.get("running").is_some(), "state": state})
}

fn terminated(container: &Prepared, exited: &Exited) -> Value {
    let mut state = json!({"exitCode": exited.exit_code, "reason": exited.reason,
        "startedAt": exited.started, "finishedAt": exited.finished});
    if let Some(message) = &exited.message {
        state["message"] = json!(message);
    }
    status_of(container, json!({"terminated": state}), false)
}

fn conditions(ready: bool, initialized: bool) -> Value {
    let now = Timestamp::now().to_string();
    let flag = |b: bool| if b { "True" } else { "False" };
    json!([
        {"type": "Initialized", "status": flag(initialized), "lastTransitionTime": now},
        {"type": "ContainersReady", "status": flag(ready), "lastTransitionTime": now},
        {"type": "Ready", "status": flag(ready), "lastTransitionTime": now},
    ])
}

fn base(phase: &str, started: &str) -> Value {
    json!({"phase": phase, "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
           "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}], "startTime": started})
}

/// Pending: the Pod's containers wait for what they need.
fn pending(pod: &Pod, started: &str, wait: &Waiting) -> Value {
    let mut status = base("Pending", started);
    let spec = pod.spec.clone().unwrap_or_default();
    let waiting = |c: &k8s_openapi::api::core::v1::Container| {
        json!({"name": c.name, "image": c.image, "imageID": "", "ready": false, "restartCount": 0,
               "started": false, "state": {"waiting": {"reason": wait.reason, "message": wait.message}}})
    };
    status["containerStatuses"] = spec.containers.iter().map(waiting).collect();
    status["conditions"] = conditions(false, false);
    json!({"status": status})
}

fn running_status(
    started: &str,
    init: &[(Prepared, Exited)],
    init_running: &[&Prepared],
    main: &[&Prepared],
    initialized: bool,
) -> Value {
    let mut status = base(if initialized { "Running" } else { "Pending" }, started);
    let now = Timestamp::now().to_string();
    let mut inits: Vec<Value> = init.iter().map(|(c, e)| terminated(c, e)).collect();
    inits.extend(
        init_running
            .iter()
            .map(|c| status_of(c, json!({"running": {"startedAt": now}}), false)),
    );
    if !inits.is_empty() {
        status["initContainerStatuses"] = Value::Array(inits);
    }
    status["containerStatuses"] = main
        .iter()
        .map(|c| status_of(c, json!({"running": {"startedAt": now}}), true))
        .collect();
    status["conditions"] = conditions(initialized, initialized);
    json!({"status": status})
}

/// Succeeded when every container exited 0 (and every init container did), else Failed.
fn finished(started: &str, init: &[(Prepared, Exited)], main: &[(Prepared, Exited)]) -> Value {
    let ok = init.iter().chain(main).all(|(_, e)| e.exit_code == 0) && !main.is_empty();
    let phase = if ok { "Succeeded" } else { "Failed" };
    let mut status = base(phase, started);
    if !init.is_empty() {
        status["initContainerStatuses"] = init.iter().map(|(c, e)| terminated(c, e)).collect();
    }
    status["containerStatuses"] = main.iter().map(|(c, e)| terminated(c, e)).collect();
    status["conditions"] = conditions(false, init.iter().all(|(_, e)| e.exit_code == 0));
    json!({"status": status})
}

async fn patch(pods: &Api<Pod>, pod: &Pod, status: Value) -> anyhow::Result<()> {
    pods.patch_status(
        &pod.name_any(),
        &PatchParams::default(),
        &Patch::Strategic(status),
    )
    .await?;
    Ok(())
}

/// Removes a deleted Pod once its processes are gone, as a kubelet does (grace 0, this uid only).
async fn confirm_deletion(client: &Client, pod: &Pod) {
    let pods = Api::<Pod>::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let _ = pods.delete(&pod.name_any(), &params).await;
}
