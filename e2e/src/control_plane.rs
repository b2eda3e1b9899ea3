//! The real control plane: etcd, kube-apiserver and kube-controller-manager on loopback, built
//! from the Go modules pinned in `tools/control-plane/` (`cargo xtask control-plane`) or found
//! through `KUBEBUILDER_ASSETS`, the `TEST_ASSET_*` variables or PATH.
//!
//! - etcd: one member, no fsync (test data).
//! - kube-apiserver: TLS with its self-signed serving certificate (the kubeconfigs trust it),
//!   static tokens — the harness is `system:masters`, each controller and the CLI a user of
//!   its own with no groups, so RBAC (on) grants exactly what the roles bound to it say — and
//!   an audit log of every request at `Metadata` level ([`crate::audit`]).
//! - kube-controller-manager: the controllers the scenarios rely on ([`CONTROLLERS`]), as the
//!   user `system:kube-controller-manager`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::kubeconfig::{self, Auth};
use crate::process::LogFile;

/// kube-controller-manager's controllers the scenarios rely on: claims bound to volumes, the
/// storage protection finalizers removed when nothing uses a claim or volume, owners' objects
/// collected, namespaces emptied when deleted, Jobs' Pods created, a namespace's `default`
/// ServiceAccount.
pub const CONTROLLERS: &[&str] = &[
    "persistentvolume-binder-controller",
    "persistentvolumeclaim-protection-controller",
    "persistentvolume-protection-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "job-controller",
    "serviceaccount-controller",
];

/// Where each program of the control plane is.
#[derive(Clone, Debug)]
pub struct Assets {
    pub etcd: PathBuf,
    pub apiserver: PathBuf,
    pub controller_manager: PathBuf,
}

/// The three ways to provide the control plane, for errors.
pub const WAYS: &str = "the e2e suite runs on a real control plane (etcd, kube-apiserver, \
kube-controller-manager). Provide it one of three ways: (1) `cargo xtask control-plane` builds \
it from the pinned Go modules (Go >= 1.26 and the Go module proxy) and prints the \
`export KUBEBUILDER_ASSETS=…` line to run (`cargo xtask ci` does both); (2) \
KUBEBUILDER_ASSETS naming a folder with the three binaries (or TEST_ASSET_ETCD, \
TEST_ASSET_KUBE_APISERVER, TEST_ASSET_KUBE_CONTROLLER_MANAGER); (3) the three binaries on PATH";

/// The binaries, if this environment names them: `TEST_ASSET_*` each, else in
/// `KUBEBUILDER_ASSETS`, else on PATH.
pub fn assets() -> Option<Assets> {
    let from_dir = std::env::var_os("KUBEBUILDER_ASSETS").map(PathBuf::from);
    let find = |variable: &str, name: &str| -> Option<PathBuf> {
        if let Some(path) = std::env::var_os(variable) {
            return Some(PathBuf::from(path));
        }
        if let Some(dir) = &from_dir {
            return Some(dir.join(name)).filter(|p| p.is_file());
        }
        on_path(name)
    };
    Some(Assets {
        etcd: find("TEST_ASSET_ETCD", "etcd")?,
        apiserver: find("TEST_ASSET_KUBE_APISERVER", "kube-apiserver")?,
        controller_manager: find(
            "TEST_ASSET_KUBE_CONTROLLER_MANAGER",
            "kube-controller-manager",
        )?,
    })
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The user kube-scheduler authenticates as.
pub const SCHEDULER_USER: &str = "system:kube-scheduler";

/// The user kube-controller-manager authenticates as.
const CONTROLLER_MANAGER_USER: &str = "system:kube-controller-manager";

pub struct ControlPlane {
    etcd: Child,
    apiserver: Child,
    controller_manager: Child,
    pub kubeconfig: PathBuf,
    /// The API server's audit log (JSON lines).
    pub audit_log: PathBuf,
    server: String,
    serving_cert: PathBuf,
    token: String,
}

impl ControlPlane {
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        let Some(assets) = assets() else {
            bail!("{WAYS}");
        };
        let (client_port, peer_port, mut api_port) = (free_port()?, free_port()?, free_port()?);
        let etcd_url = format!("http://127.0.0.1:{client_port}");
        let etcd_log = LogFile::create(dir, "etcd")?;
        let mut command = orphan_safe(&assets.etcd);
        command
            .arg("--data-dir")
            .arg(dir.join("etcd-data"))
            .arg(format!("--listen-client-urls={etcd_url}"))
            .arg(format!("--advertise-client-urls={etcd_url}"))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"))
            .arg(format!(
                "--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"
            ))
            .arg(format!(
                "--initial-cluster=default=http://127.0.0.1:{peer_port}"
            ))
            .arg("--unsafe-no-fsync=true")
            .arg("--log-level=warn");
        let etcd = spawn_logged(command, &etcd_log, &assets.etcd)?;

        let certs = dir.join("certs");
        std::fs::create_dir_all(&certs)?;
        let sa_key = certs.join("sa.key");
        let status = Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&sa_key)
            .arg("2048")
            .stderr(std::process::Stdio::null())
            .status()
            .await
            .context("cannot run openssl to make a service-account key")?;
        if !status.success() {
            bail!("openssl genrsa failed");
        }
        let token = format!("lifeline-e2e-{}", std::process::id());
        let tokens = certs.join("tokens.csv");
        // The admin (system:masters) for the harness; kube-controller-manager, which acts for
        // every controller it runs; and one user per Lifeline client with no groups, so each
        // has exactly what RBAC grants it.
        let mut lines = format!("{token},admin,admin-uid,\"system:masters\"\n");
        lines.push_str(&format!(
            "{token}-kcm,{CONTROLLER_MANAGER_USER},kcm-uid,\"system:masters\"\n"
        ));
        // kube-scheduler, bound to its roles by the API server's bootstrap RBAC.
        lines.push_str(&format!(
            "{token}-{SCHEDULER_USER},{SCHEDULER_USER},scheduler-uid\n"
        ));
        for user in crate::rbac::users() {
            lines.push_str(&format!("{token}-{user},{user},{user}-uid\n"));
        }
        std::fs::write(&tokens, lines)?;
        let policy = certs.join("audit-policy.yaml");
        std::fs::write(&policy, crate::audit::POLICY)?;
        let audit_log = dir.join("audit.log");
        let api_log = LogFile::create(dir, "kube-apiserver")?;
        let apiserver_command = |api_port: u16| {
            let mut command = orphan_safe(&assets.apiserver);
            command
                .arg(format!("--etcd-servers={etcd_url}"))
                // Compacts etcd soon and often, so versions become "too old" (410) within seconds,
                // as they do on a long-running cluster.
                .arg("--etcd-compaction-interval=5s")
                .arg(format!("--secure-port={api_port}"))
                .arg("--bind-address=127.0.0.1")
                .arg(format!("--cert-dir={}", certs.display()))
                .arg(format!("--token-auth-file={}", tokens.display()))
                .arg(format!("--service-account-key-file={}", sa_key.display()))
                .arg(format!(
                    "--service-account-signing-key-file={}",
                    sa_key.display()
                ))
                .arg("--service-account-issuer=https://lifeline-e2e.local")
                .arg("--authorization-mode=RBAC")
                .arg("--service-cluster-ip-range=10.0.0.0/24")
                // No token controller runs to give Pods' ServiceAccounts tokens to mount.
                .arg("--disable-admission-plugins=ServiceAccount")
                .arg(format!("--audit-policy-file={}", policy.display()))
                .arg(format!("--audit-log-path={}", audit_log.display()))
                .arg("--audit-log-format=json")
                // Written as each request ends, so a check reads every request made before it.
                .arg("--audit-log-mode=blocking");
            command
        };
        let mut apiserver = spawn_logged(apiserver_command(api_port), &api_log, &assets.apiserver)?;

        // The serving certificate is self-signed; it is its own CA.
        let serving_cert = certs.join("apiserver.crt");
        let kubeconfig = dir.join("kubeconfig");
        let mut server = format!("https://127.0.0.1:{api_port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        let mut port_retries = 0;
        loop {
            // The port was free when picked, but another test's server may bind it first
            // (seen in CI): pick another and start again, a few times.
            if port_retries < 3
                && matches!(apiserver.try_wait(), Ok(Some(_)))
                && api_log.contents().contains("address already in use")
            {
                port_retries += 1;
                api_port = free_port()?;
                server = format!("https://127.0.0.1:{api_port}");
                apiserver = spawn_logged(apiserver_command(api_port), &api_log, &assets.apiserver)?;
                continue;
            }
            if serving_cert.exists() {
                kubeconfig::write(
                    &kubeconfig,
                    &server,
                    Some(&serving_cert),
                    Auth::Token(&token),
                )?;
                // Ready means bootstrapped (default namespaces, RBAC roles, priority classes):
                // /readyz, not /version, which answers before any of that exists.
                if let Ok(client) = kubeconfig::client(&kubeconfig).await
                    && ready(&client).await
                {
                    break;
                }
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "kube-apiserver did not become ready within 90s; its log:\n{}\netcd's log:\n{}",
                    api_log.tail(40),
                    etcd_log.tail(20)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        let kcm_kubeconfig = dir.join("kubeconfig-kube-controller-manager");
        kubeconfig::write(
            &kcm_kubeconfig,
            &server,
            Some(&serving_cert),
            Auth::Token(&format!("{token}-kcm")),
        )?;
        let kcm_log = LogFile::create(dir, "kube-controller-manager")?;
        let mut command = orphan_safe(&assets.controller_manager);
        command
            .arg(format!("--kubeconfig={}", kcm_kubeconfig.display()))
            .arg(format!("--controllers={}", CONTROLLERS.join(",")))
            .arg("--leader-elect=false")
            // It serves nothing the tests read (no health or metrics port to collide).
            .arg("--secure-port=0")
            .arg("--use-service-account-credentials=false")
            // React at test speed: collect garbage and retry bindings promptly.
            .arg("--pvclaimbinder-sync-period=1s");
        let controller_manager = spawn_logged(command, &kcm_log, &assets.controller_manager)?;
        Ok(Self {
            etcd,
            apiserver,
            controller_manager,
            kubeconfig,
            audit_log,
            server,
            serving_cert,
            token,
        })
    }

    /// The control plane's processes, by program (for CPU and memory measurements).
    pub fn pids(&self) -> Vec<(&'static str, u32)> {
        [
            ("etcd", &self.etcd),
            ("kube-apiserver", &self.apiserver),
            ("kube-controller-manager", &self.controller_manager),
        ]
        .into_iter()
        .filter_map(|(name, child)| Some((name, child.id()?)))
        .collect()
    }

    /// A kubeconfig named `name` (beside the admin's) that authenticates with `token` (a
    /// ServiceAccount's, from a TokenRequest).
    pub fn token_kubeconfig(&self, name: &str, token: &str) -> anyhow::Result<PathBuf> {
        let path = self.kubeconfig.with_file_name(format!("kubeconfig-{name}"));
        kubeconfig::write(
            &path,
            &self.server,
            Some(&self.serving_cert),
            Auth::Token(token),
        )?;
        Ok(path)
    }

    /// The API server's URL and the certificate it serves (what a Pod's in-cluster
    /// configuration trusts as `ca.crt`).
    pub fn server(&self) -> (&str, &Path) {
        (&self.server, &self.serving_cert)
    }

    /// A kubeconfig that authenticates as `user` (one of [`crate::rbac::users`]).
    pub fn user_kubeconfig(&self, user: &str) -> anyhow::Result<PathBuf> {
        self.token_kubeconfig(user, &format!("{}-{user}", self.token))
    }
}

/// `GET /readyz` answers 200 "ok".
async fn ready(client: &kube::Client) -> bool {
    let Ok(request) = http::Request::get("/readyz").body(Vec::new()) else {
        return false;
    };
    client
        .request_text(request)
        .await
        .is_ok_and(|body| body.trim() == "ok")
}

/// A command for a server the tests start: killed with the test process even when that is
/// killed itself (`setpriv --pdeathsig`, util-linux), not only when [`ControlPlane`] is
/// dropped.
fn orphan_safe(program: &Path) -> Command {
    let mut command = Command::new("setpriv");
    command.args(["--pdeathsig", "KILL", "--"]).arg(program);
    command
}

/// Starts `command` with its output in `log`, killed when dropped.
fn spawn_logged(mut command: Command, log: &LogFile, program: &Path) -> anyhow::Result<Child> {
    command
        .stdout(log.stdio()?)
        .stderr(log.stdio()?)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = self.controller_manager.start_kill();
        let _ = self.apiserver.start_kill();
        let _ = self.etcd.start_kill();
    }
}

/// A program `cargo xtask control-plane` builds (`KUBEBUILDER_ASSETS/<name>`), else on PATH.
pub fn asset(name: &str) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("KUBEBUILDER_ASSETS") {
        let path = PathBuf::from(dir).join(name);
        if path.is_file() {
            return Some(path);
        }
    }
    on_path(name)
}

/// The kubectl that comes with the control plane (`KUBEBUILDER_ASSETS/kubectl`, as `cargo
/// xtask control-plane` builds it), else the first on PATH.
pub fn kubectl() -> Option<PathBuf> {
    asset("kubectl")
}

/// The first `name` on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|p| p.join(name))
        .find(|p| p.is_file())
}
