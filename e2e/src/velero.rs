//! Velero's own server and CLI (v1.18.1, built by `cargo xtask control-plane` with Velero's
//! AWS object-store plugin), run against a test cluster the way `velero install` deploys them:
//! Velero's CRDs from its own installer (`velero install --crds-only`), the server in Velero's
//! namespace with the plugin in its plugin folder and the credentials file in
//! `AWS_SHARED_CREDENTIALS_FILE` (what `velero install --secret-file` mounts). Backups and
//! restores are made with `velero backup create` / `velero restore create` and waited for
//! through the API.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ApiResource, DynamicObject, PostParams};
use kube::{Api, Client};

use crate::process::Process;

/// How long the server may take to start (it checks its CRDs through discovery first).
const START: Duration = Duration::from_secs(90);

/// Velero's server, running, and its CLI.
pub struct Velero {
    server: Process,
    cli: PathBuf,
    kubeconfig: PathBuf,
    namespace: String,
}

impl Velero {
    /// Installs Velero's CRDs and its Deployment (no replicas) and starts its server in
    /// `namespace` (which must exist), with `credentials` as the AWS credentials file. Its
    /// logs go to `dir`.
    pub async fn start(
        client: &Client,
        dir: &Path,
        kubeconfig: &Path,
        namespace: &str,
        credentials: &str,
    ) -> anyhow::Result<Self> {
        let cli = program("velero")?;
        let plugin = program("velero-plugin-for-aws")?;
        run(&cli, kubeconfig, namespace, &["install", "--crds-only"]).await?;
        deployment(client, namespace).await?;
        // Its own folder: Velero runs every executable in its plugin folder as a plugin.
        let plugins = dir.join("velero-plugins");
        std::fs::create_dir_all(&plugins)?;
        std::os::unix::fs::symlink(&plugin, plugins.join("velero-plugin-for-aws"))
            .context("cannot link Velero's AWS plugin into its plugin folder")?;
        let secret_file = dir.join("velero-credentials");
        std::fs::write(&secret_file, credentials)?;
        std::fs::set_permissions(
            &secret_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )?;
        let args: Vec<String> = [
            "server",
            "--kubeconfig",
            &kubeconfig.display().to_string(),
            "--namespace",
            namespace,
            "--plugin-dir",
            &plugins.display().to_string(),
            // Velero's CSI actions (snapshot, then DataUpload) run only with this feature, as
            // `velero install --features=EnableCSI` sets it.
            "--features",
            "EnableCSI",
            // Its metrics on a free port (default :8085); its profiler off.
            "--metrics-address",
            "127.0.0.1:0",
            "--profiler-address",
            "",
            // How often it looks at the DataUploads/DataDownloads a backup/restore waits for
            // (10 s by default) and checks its storage location (1 min).
            "--item-operation-sync-frequency",
            "1s",
            "--store-validation-frequency",
            "5s",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        let mut server = Process::spawn(
            dir,
            "velero",
            &cli,
            &args,
            &[(
                "AWS_SHARED_CREDENTIALS_FILE".into(),
                secret_file.display().to_string(),
            )],
        )?;
        server.wait_for_text("Server starting...", START).await?;
        Ok(Self {
            server,
            cli,
            kubeconfig: kubeconfig.to_owned(),
            namespace: namespace.to_owned(),
        })
    }

    /// Runs the CLI with `args` (and this cluster's kubeconfig and Velero's namespace); what
    /// it printed, or an error with all of it.
    pub async fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        run(&self.cli, &self.kubeconfig, &self.namespace, args).await
    }

    /// Runs `velero <kind> create <name> <args…>` and waits until that Backup or Restore ends;
    /// the object when it ends `Completed`, else an error with its status and the server's
    /// log.
    pub async fn complete(
        &self,
        client: &Client,
        kind: &str,
        name: &str,
        args: &[&str],
        timeout: Duration,
    ) -> anyhow::Result<DynamicObject> {
        let verb = kind.to_lowercase();
        let command: Vec<&str> = [verb.as_str(), "create", name]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        self.run(&command).await?;
        let resource = ApiResource {
            group: "velero.io".into(),
            version: "v1".into(),
            api_version: "velero.io/v1".into(),
            kind: kind.into(),
            plural: format!("{verb}s"),
        };
        let api = Api::<DynamicObject>::namespaced_with(client.clone(), &self.namespace, &resource);
        let object = crate::wait::for_object(&api, name, timeout, "a final phase", |o| {
            FINAL.contains(&phase(o).as_str())
        })
        .await
        .with_context(|| format!("Velero's server log:\n{}", self.tail(40)))?;
        if phase(&object) != "Completed" {
            bail!(
                "{kind} {name} ended {}: {}\nVelero's server log:\n{}",
                phase(&object),
                object.data["status"],
                self.tail(40)
            );
        }
        Ok(object)
    }

    /// The last `lines` lines of the server's log.
    pub fn tail(&self, lines: usize) -> String {
        let logs = self.server.logs();
        let all: Vec<&str> = logs.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Stops the server as Kubernetes would (SIGTERM), so it stops its plugins too.
    pub async fn stop(mut self) {
        let _ = self.server.terminate(Duration::from_secs(30)).await;
    }
}

/// Velero's Deployment, at no replicas: the server runs as a process here, but its restore
/// reads its own Deployment (the image a pod-volume restore helper would run) and fails every
/// restore without one.
async fn deployment(client: &Client, namespace: &str) -> anyhow::Result<()> {
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "velero", "labels": {"component": "velero"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"deploy": "velero"}},
            "template": {
                "metadata": {"labels": {"deploy": "velero", "component": "velero"}},
                "spec": {"containers": [{
                    "name": "velero",
                    "image": "velero/velero:v1.18.1",
                    "command": ["/velero"],
                    "args": ["server", "--features=EnableCSI"],
                }]},
            },
        },
    }))?;
    Api::<Deployment>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &deployment)
        .await
        .context("cannot create Velero's Deployment")?;
    Ok(())
}

/// The phases a Backup or Restore ends in.
const FINAL: &[&str] = &["Completed", "PartiallyFailed", "Failed", "FailedValidation"];

fn phase(object: &DynamicObject) -> String {
    object.data["status"]["phase"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A Velero binary `cargo xtask control-plane` builds.
fn program(name: &str) -> anyhow::Result<PathBuf> {
    crate::control_plane::asset(name).with_context(|| {
        format!("no {name}: `cargo xtask control-plane` builds it (set KUBEBUILDER_ASSETS to its folder)")
    })
}

async fn run(
    cli: &Path,
    kubeconfig: &Path,
    namespace: &str,
    args: &[&str],
) -> anyhow::Result<String> {
    let output = tokio::process::Command::new(cli)
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--namespace", namespace])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run {}", cli.display()))?;
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        bail!(
            "velero {} failed ({}):\n{printed}",
            args.join(" "),
            output.status
        );
    }
    Ok(printed)
}
