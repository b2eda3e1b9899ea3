//! Running the real `restic` binary the way VolSync's restic mover does: repository and
//! credentials as environment (the mover decides which keys), `--cacert` only from the
//! resource's `customCA`, `--host volsync`, summary lines kept for `latestMoverStatus.logs`.
//! Secret values are passed only as environment of the child and never logged.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

use anyhow::{Context, bail};
use serde::Deserialize;
use tokio::process::Command;

/// The restic binary: `$RESTIC` or `restic` on PATH.
pub fn program() -> String {
    std::env::var("RESTIC").unwrap_or_else(|_| "restic".into())
}

/// What a restic run printed, split into the lines VolSync keeps and everything.
pub struct Output {
    pub summary: String,
    pub all: String,
}

/// Lines VolSync keeps from the mover's output.
fn is_summary(line: &str) -> bool {
    [
        "Files:",
        "Dirs:",
        "Added to the repository:",
        "processed ",
        "snapshot ",
        "restoring ",
        "Summary:",
        "Fatal:",
        "unable to",
        "wrong password",
    ]
    .iter()
    .any(|p| line.trim_start().starts_with(p))
        || line.contains("no key found")
}

/// How often restic prints its status line in the mover's log. VolSync's mover sets 0.1 (every
/// 10 s); the stand-in prints every second so that tests see progress in seconds-long backups.
pub const PROGRESS_FPS: &str = "1";

/// What restic is run with: its environment, the CA file VolSync hands it as `--cacert`, and
/// where its output goes as it runs (the mover Pod's log).
#[derive(Clone, Default)]
pub struct Repository {
    pub env: BTreeMap<String, String>,
    pub cacert: Option<std::path::PathBuf>,
    /// The mover's log file: restic's output is appended as it prints it.
    pub log: Option<std::path::PathBuf>,
    /// restic's `--limit-upload` (KiB/s), for tests that watch a backup in flight.
    pub upload_limit_kib: Option<u32>,
}

impl From<BTreeMap<String, String>> for Repository {
    fn from(env: BTreeMap<String, String>) -> Self {
        Self {
            env,
            ..Self::default()
        }
    }
}

impl Repository {
    /// A line of the mover script's own in its log (`=== Starting backup ===`, …).
    pub fn say(&self, line: &str) {
        use std::io::Write;
        if let Some(path) = &self.log
            && let Ok(mut file) = append(path)
        {
            let _ = writeln!(file, "{line}");
        }
    }
}

fn append(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

async fn run(repository: &Repository, cwd: &Path, args: &[&str]) -> anyhow::Result<Output> {
    let mut command = Command::new(program());
    if let Some(ca) = &repository.cacert {
        command.arg("--cacert").arg(ca);
    }
    if let Some(limit) = repository.upload_limit_kib {
        command.arg("--limit-upload").arg(limit.to_string());
    }
    // restic's output goes to the log as it prints it (both streams, as a container's do);
    // without a log, to a scratch file read back at the end.
    let scratch;
    let log = match &repository.log {
        Some(path) => path.clone(),
        None => {
            scratch = tempfile::NamedTempFile::new()?;
            scratch.path().to_owned()
        }
    };
    let file = append(&log)?;
    let from = file.metadata()?.len();
    let status = command
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "HOME",
            std::env::var("HOME").unwrap_or_else(|_| "/tmp".into()),
        )
        .env("RESTIC_PROGRESS_FPS", PROGRESS_FPS)
        .envs(&repository.env)
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .await
        .with_context(|| format!("cannot run {} (install restic, or set RESTIC)", program()))?;
    let written = std::fs::read(&log)?;
    let all =
        String::from_utf8_lossy(written.get(from as usize..).unwrap_or_default()).into_owned();
    let summary = all
        .lines()
        .filter(|l| is_summary(l))
        .collect::<Vec<_>>()
        .join("\n");
    if !status.success() {
        // restic's own one-line reason: its "Fatal:" line, else its last words.
        let reason = all
            .lines()
            .find(|l| l.starts_with("Fatal:"))
            .or_else(|| all.lines().rev().find(|l| !l.trim().is_empty()))
            .unwrap_or("restic failed")
            .trim()
            .to_owned();
        bail!(ResticFailed {
            summary: if summary.is_empty() {
                reason.clone()
            } else {
                summary
            },
            reason,
            output: all
        });
    }
    Ok(Output { summary, all })
}

/// A failed restic run, with restic's own words.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct ResticFailed {
    pub reason: String,
    pub summary: String,
    /// Everything restic printed.
    pub output: String,
}

/// Creates the repository if it does not exist yet.
pub async fn ensure_repository(env: &Repository, cwd: &Path) -> anyhow::Result<()> {
    match run(env, cwd, &["cat", "config"]).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let text = e
                .downcast_ref::<ResticFailed>()
                .map(|f| f.output.clone())
                .unwrap_or_else(|| format!("{e:#}"));
            let missing = text.contains("Is there a repository")
                || text.contains("does not exist")
                || text.contains("unable to open config file");
            if !missing {
                return Err(e);
            }
            run(env, cwd, &["init"]).await.map(|_| ())
        }
    }
}

/// `restic backup .` from `dir`, then forget/prune per the retain flags.
/// The mover script's steps, each announced in its log as VolSync's `entry.sh` does.
pub async fn backup(env: &Repository, dir: &Path, retain: &[String]) -> anyhow::Result<String> {
    let started = std::time::Instant::now();
    env.say("=== Check for dir initialized ===");
    ensure_repository(env, dir).await?;
    env.say("=== Starting backup ===");
    let backup = run(env, dir, &["backup", "--host", "volsync", "."]).await?;
    let mut summary = backup.summary;
    if !retain.is_empty() {
        env.say("=== Starting forget ===");
        let mut args = vec!["forget", "--host", "volsync", "--prune"];
        args.extend(retain.iter().map(String::as_str));
        let forget = run(env, dir, &args).await?;
        let _ = forget.all;
        summary.push_str("\nforget and prune done");
    }
    let done = format!("Restic completed in {}s", started.elapsed().as_secs());
    env.say(&done);
    env.say("=== Done ===");
    summary.push('\n');
    summary.push_str(&done);
    Ok(summary)
}

#[derive(Debug, Deserialize)]
pub struct Snapshot {
    pub id: String,
    pub short_id: String,
    pub time: String,
    pub paths: Vec<String>,
}

pub async fn snapshots(env: &Repository, cwd: &Path) -> anyhow::Result<Vec<Snapshot>> {
    let output = run(env, cwd, &["snapshots", "--host", "volsync", "--json"]).await?;
    let json = output
        .all
        .lines()
        .find(|l| l.trim_start().starts_with('['))
        .unwrap_or("[]");
    Ok(serde_json::from_str(json)?)
}

/// Restores `snapshot` so that its backed-up directory's contents land in `target`.
pub async fn restore(
    env: &Repository,
    snapshot: &Snapshot,
    target: &Path,
    staging: &Path,
) -> anyhow::Result<String> {
    let _ = std::fs::remove_dir_all(staging);
    std::fs::create_dir_all(staging)?;
    env.say("=== Starting restore ===");
    let output = run(
        env,
        staging,
        &[
            "restore",
            &snapshot.id,
            "--target",
            &staging.display().to_string(),
        ],
    )
    .await?;
    // Depending on its version, restic puts a single backed-up directory's contents at the
    // target itself or under the directory's absolute path there.
    let backed_up = snapshot.paths.first().map(String::as_str).unwrap_or("/");
    let nested = staging.join(backed_up.trim_start_matches('/'));
    let restored = if snapshot.paths.len() == 1 && nested.is_dir() {
        nested
    } else {
        staging.to_owned()
    };
    std::fs::create_dir_all(target)?;
    for entry in std::fs::read_dir(&restored)? {
        let entry = entry?;
        let to = target.join(entry.file_name());
        if to.is_dir() {
            std::fs::remove_dir_all(&to)?;
        } else if to.exists() {
            std::fs::remove_file(&to)?;
        }
        std::fs::rename(entry.path(), to)?;
    }
    let _ = std::fs::remove_dir_all(staging);
    Ok(if output.summary.is_empty() {
        format!("restored snapshot {}", snapshot.short_id)
    } else {
        output.summary
    })
}

/// `restic forget` flags for a VolSync `retain` policy. Without one, nothing is forgotten.
pub fn retain_flags(
    retain: Option<&lifeline_api::foreign::volsync::ResticRetainPolicy>,
) -> Vec<String> {
    let Some(r) = retain else { return Vec::new() };
    let mut flags = Vec::new();
    for (flag, value) in [
        // `last` is a string in VolSync's schema, handed to restic as it is.
        ("--keep-last", r.last.clone()),
        ("--keep-hourly", r.hourly.map(|n| n.to_string())),
        ("--keep-daily", r.daily.map(|n| n.to_string())),
        ("--keep-weekly", r.weekly.map(|n| n.to_string())),
        ("--keep-monthly", r.monthly.map(|n| n.to_string())),
        ("--keep-yearly", r.yearly.map(|n| n.to_string())),
    ] {
        if let Some(n) = value {
            flags.push(flag.to_owned());
            flags.push(n.to_string());
        }
    }
    if let Some(within) = &r.within {
        flags.push("--keep-within".into());
        flags.push(within.clone());
    }
    flags
}
