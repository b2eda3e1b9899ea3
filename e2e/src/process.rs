//! Running the real Lifeline binaries as child processes: logs captured to a file and printed
//! into the test output when a test fails, kill and restart, waiting for an announced line.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// A log file that several writers (stdout, stderr, restarts) append to.
pub struct LogFile {
    path: PathBuf,
}

impl LogFile {
    pub fn create(dir: &Path, name: &str) -> std::io::Result<Self> {
        let path = dir.join(format!("{name}.log"));
        File::create(&path)?;
        Ok(Self { path })
    }

    pub fn stdio(&self) -> std::io::Result<Stdio> {
        Ok(OpenOptions::new().append(true).open(&self.path)?.into())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn contents(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap_or_default()
    }

    /// The last `lines` lines.
    pub fn tail(&self, lines: usize) -> String {
        let text = self.contents();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// The path of a workspace binary, built once per test process if missing or stale.
pub fn binary(package: &str, name: &str) -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<std::sync::Mutex<Vec<String>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().expect("lock");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let path = target.join("debug").join(name);
    if !built.iter().any(|b| b == name) {
        // Cargo decides whether anything is stale; this is quick when nothing is.
        let status =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["build", "--quiet", "--package", package, "--bin", name])
                .current_dir(&workspace)
                .status()
                .context("cannot run cargo build")?;
        if !status.success() {
            bail!("cargo build of {name} failed");
        }
        built.push(name.to_owned());
    }
    Ok(path)
}

/// A child process with captured logs.
pub struct Process {
    pub name: String,
    program: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    log: LogFile,
    child: Option<Child>,
}

impl Process {
    pub fn spawn(
        dir: &Path,
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let mut process = Self {
            name: name.to_owned(),
            program: program.to_owned(),
            args: args.to_vec(),
            envs: envs.to_vec(),
            log: LogFile::create(dir, name)?,
            child: None,
        };
        process.start()?;
        Ok(process)
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(self.log.stdio()?)
            .stderr(self.log.stdio()?)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {} ({})", self.name, self.program.display()))?;
        self.child = Some(child);
        Ok(())
    }

    pub fn logs(&self) -> String {
        self.log.contents()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Waits until the log has a line starting with `prefix`; returns the rest of the line.
    pub async fn wait_for_line(&self, prefix: &str, timeout: Duration) -> anyhow::Result<String> {
        let found = crate::wait::until(
            timeout,
            &format!("{} to print {prefix:?}", self.name),
            || async {
                self.logs()
                    .lines()
                    .find_map(|l| l.strip_prefix(prefix).map(|rest| rest.trim().to_owned()))
            },
        )
        .await;
        found.with_context(|| format!("{} log:\n{}", self.name, self.log.tail(50)))
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Asks the process to stop (SIGTERM) and waits for it.
    pub async fn terminate(
        &mut self,
        timeout: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        let Some(mut child) = self.child.take() else {
            bail!("{} is not running", self.name);
        };
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                let _ = child.kill().await;
                bail!(
                    "{} did not stop within {timeout:?} after SIGTERM",
                    self.name
                )
            }
        }
    }

    /// Starts it again with the same arguments, appending to the same log.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await;
        self.start()
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- {} log ({}) -----\n{}",
                self.name,
                self.log.path().display(),
                self.log.tail(200)
            );
        }
    }
}

/// `POST path` to an HTTP admin endpoint (e.g. the hostpath driver's `/link/sever`).
pub async fn admin_post(address: &str, path: &str) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {address}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    if !response.starts_with("HTTP/1.1 2") {
        bail!(
            "POST {path} to {address}: {}",
            response.lines().next().unwrap_or_default()
        );
    }
    Ok(response)
}
