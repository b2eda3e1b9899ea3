//! The `envtest` backend: a real etcd and kube-apiserver on loopback, started from
//! `KUBEBUILDER_ASSETS` (or `TEST_ASSET_ETCD` / `TEST_ASSET_KUBE_APISERVER`) the way
//! controller-runtime's envtest does. Credentials are made in a temp dir: a service-account
//! key (openssl), a static admin token, and the API server's self-signed serving certificate,
//! which the kubeconfig trusts. Nothing is downloaded.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::kubeconfig::{self, Auth};
use crate::process::LogFile;

/// Where the binaries are, if this environment has them.
pub fn assets() -> Option<(PathBuf, PathBuf)> {
    let from_dir = std::env::var_os("KUBEBUILDER_ASSETS").map(PathBuf::from);
    let etcd = std::env::var_os("TEST_ASSET_ETCD")
        .map(PathBuf::from)
        .or_else(|| from_dir.as_ref().map(|d| d.join("etcd")))?;
    let apiserver = std::env::var_os("TEST_ASSET_KUBE_APISERVER")
        .map(PathBuf::from)
        .or_else(|| from_dir.as_ref().map(|d| d.join("kube-apiserver")))?;
    Some((etcd, apiserver))
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub struct Envtest {
    etcd: Child,
    apiserver: Child,
    pub kubeconfig: PathBuf,
    server: String,
    serving_cert: PathBuf,
    token: String,
}

impl Envtest {
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        let Some((etcd_bin, apiserver_bin)) = assets() else {
            bail!(
                "envtest needs KUBEBUILDER_ASSETS (with etcd and kube-apiserver) or TEST_ASSET_ETCD and TEST_ASSET_KUBE_APISERVER"
            );
        };
        let (client_port, peer_port, api_port) = (free_port()?, free_port()?, free_port()?);
        let etcd_url = format!("http://127.0.0.1:{client_port}");
        let etcd_log = LogFile::create(dir, "etcd")?;
        let etcd = orphan_safe(&etcd_bin)
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
            .stdout(etcd_log.stdio()?)
            .stderr(etcd_log.stdio()?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", etcd_bin.display()))?;

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
        // The admin (system:masters) for the harness, and one user per controller with no
        // groups, so each controller has exactly what RBAC grants it.
        let mut lines = format!("{token},admin,admin-uid,\"system:masters\"\n");
        for controller in crate::rbac::Controller::ALL {
            let user = controller.user();
            lines.push_str(&format!("{token}-{user},{user},{user}-uid\n"));
        }
        std::fs::write(&tokens, lines)?;
        let api_log = LogFile::create(dir, "kube-apiserver")?;
        let apiserver = orphan_safe(&apiserver_bin)
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
            .arg("--disable-admission-plugins=ServiceAccount")
            .stdout(api_log.stdio()?)
            .stderr(api_log.stdio()?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", apiserver_bin.display()))?;

        // The serving certificate is self-signed; it is its own CA.
        let serving_cert = certs.join("apiserver.crt");
        let kubeconfig = dir.join("kubeconfig");
        let server = format!("https://127.0.0.1:{api_port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
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
                    "kube-apiserver did not become ready within 60s; its log:\n{}",
                    api_log.tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(Self {
            etcd,
            apiserver,
            kubeconfig,
            server,
            serving_cert,
            token,
        })
    }

    /// A kubeconfig that authenticates as `user` (one of the controllers' users).
    pub fn user_kubeconfig(&self, user: &str) -> anyhow::Result<PathBuf> {
        let path = self.kubeconfig.with_file_name(format!("kubeconfig-{user}"));
        let token = format!("{}-{user}", self.token);
        kubeconfig::write(
            &path,
            &self.server,
            Some(&self.serving_cert),
            Auth::Token(&token),
        )?;
        Ok(path)
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
/// killed itself (`setpriv --pdeathsig`, util-linux), not only when [`Envtest`] is dropped.
fn orphan_safe(program: &Path) -> Command {
    let mut command = Command::new("setpriv");
    command.args(["--pdeathsig", "KILL", "--"]).arg(program);
    command
}

impl Drop for Envtest {
    fn drop(&mut self) {
        let _ = self.apiserver.start_kill();
        let _ = self.etcd.start_kill();
    }
}
