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

/// Whether to run release builds (`LIFELINE_E2E_RELEASE=1`, for benchmarks).
fn release() -> bool {
    std::env::var("LIFELINE_E2E_RELEASE").is_ok_and(|v| v == "1")
}

/// The workspace binaries the harness runs, by package.
pub const BINARIES: &[(&str, &str)] = &[
    ("lifeline-cli", "kubectl-lifeline"),
    ("lifeline-hostpath-driver", "lifeline-hostpath-driver"),
    (
        "lifeline-replication-controller",
        "lifeline-replication-controller",
    ),
    (
        "lifeline-datamover-controller",
        "lifeline-datamover-controller",
    ),
];

/// The path of a workspace binary. The first call in a test process runs one `cargo build
/// --workspace --exclude xtask --bins` (the same command `cargo xtask demo|bench` runs, so
/// neither rebuilds what the other built: cargo unifies features per command), so a test never
/// runs a stale binary (cargo decides what is stale).
pub fn binary(package: &str, name: &str) -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned();
    let built = BUILT.get_or_init(|| {
        let mut command =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        command
            .args([
                "build",
                "--quiet",
                "--workspace",
                "--exclude",
                "xtask",
                "--bins",
            ])
            .current_dir(&workspace);
        if release() {
            command.arg("--release");
        }
        // The variables cargo sets for this test process would make build scripts that
        // watch the environment rerun, rebuilding half the tree on every test run.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_TARGET_DIR" {
                command.env_remove(&key);
            }
        }
        match command.status() {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(format!("cargo build of the e2e binaries failed ({status})")),
            Err(e) => Err(format!("cannot run cargo build: {e}")),
        }
    });
    if let Err(e) = built {
        bail!("{e}");
    }
    if !BINARIES.contains(&(package, name)) {
        bail!("{package}/{name} is not in process::BINARIES");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    Ok(target
        .join(if release() { "release" } else { "debug" })
        .join(name))
}

/// A hostpath driver with no peer site, named `name` (its log and its socket `<name>.sock` in
/// `dir`), keeping its volumes under `root`; and its endpoint, once it serves.
pub async fn lone_hostpath_driver(
    dir: &Path,
    name: &str,
    root: &Path,
    timeout: Duration,
) -> anyhow::Result<(Process, String)> {
    let endpoint = format!("unix://{}", dir.join(format!("{name}.sock")).display());
    let mut driver = Process::spawn(
        dir,
        name,
        &binary("lifeline-hostpath-driver", "lifeline-hostpath-driver")?,
        &[
            "--endpoint".into(),
            endpoint.clone(),
            "--root".into(),
            root.display().to_string(),
        ],
        &[],
    )?;
    driver.wait_for_line("peer-listen", timeout).await?;
    Ok((driver, endpoint))
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

    /// Where the process's stdout and stderr go.
    pub fn log_path(&self) -> &Path {
        self.log.path()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Waits until the log has a line starting with `prefix`; returns the rest of the line.
    /// Fails at once if the process exits first.
    pub async fn wait_for_line(
        &mut self,
        prefix: &str,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        self.wait_logged(prefix, timeout, |l| {
            l.strip_prefix(prefix).map(|rest| rest.trim().to_owned())
        })
        .await
    }

    /// Waits until the log has a line containing `text` (a program whose lines start with a
    /// timestamp); returns that line. Fails at once if the process exits first.
    pub async fn wait_for_text(&mut self, text: &str, timeout: Duration) -> anyhow::Result<String> {
        self.wait_logged(text, timeout, |l| l.contains(text).then(|| l.to_owned()))
            .await
    }

    async fn wait_logged(
        &mut self,
        what: &str,
        timeout: Duration,
        found: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let logs = self.logs();
            if let Some(rest) = logs.lines().find_map(&found) {
                return Ok(rest);
            }
            if !self.is_running() {
                bail!(
                    "{} exited before printing {what:?}; log:\n{}",
                    self.name,
                    self.log.tail(50)
                );
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "{} did not print {what:?} within {timeout:?}; log:\n{}",
                    self.name,
                    self.log.tail(50)
                );
            }
            tokio::time::sleep(crate::wait::POLL).await;
        }
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
