//! `--profile`: Linux `perf` samples the controller's stacks while VolumeReplications become
//! primary, and the report lists where its CPU time went — what docs/performance.md shows when
//! Lifeline is not at the ceiling. perf is the machine's (`linux-perf`); without it the
//! benchmark says so and runs unprofiled.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context;
use tokio::process::{Child, Command};

/// Samples per second: enough for a phase of seconds, little overhead.
const FREQUENCY: &str = "499";

pub struct Recording {
    child: Child,
    data: PathBuf,
}

/// Starts sampling `pid` into `dir/perf.data`; `None` (said on stderr) when perf cannot run.
pub async fn start(pid: u32, dir: &Path) -> Option<Recording> {
    let data = dir.join("perf.data");
    let spawned = Command::new("perf")
        .args(["record", "-F", FREQUENCY, "-g", "-o"])
        .arg(&data)
        .args(["-p", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    match spawned {
        Ok(child) => Some(Recording { child, data }),
        Err(e) => {
            eprintln!("--profile: cannot run perf ({e}); install linux-perf to profile");
            None
        }
    }
}

impl Recording {
    /// Stops sampling (SIGINT, as perf expects) and returns the hottest functions by the
    /// share of samples spent in them, as `perf report` lists them.
    pub async fn finish(mut self, top: usize) -> anyhow::Result<Vec<(f64, String)>> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status();
        }
        self.child.wait().await?;
        let output = Command::new("perf")
            .args([
                "report",
                "--stdio",
                "--no-children",
                "--sort",
                "symbol",
                "-g",
                "none",
                "-i",
            ])
            .arg(&self.data)
            .output()
            .await
            .context("cannot run perf report")?;
        Ok(hottest(&String::from_utf8_lossy(&output.stdout), top))
    }
}

/// The first `top` "NN.NN%  [.] symbol" lines of a `perf report --stdio` listing.
pub fn hottest(report: &str, top: usize) -> Vec<(f64, String)> {
    report
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let (share, rest) = l.trim().split_once('%')?;
            let share: f64 = share.trim().parse().ok()?;
            let symbol = rest
                .trim()
                .trim_start_matches("[.]")
                .trim_start_matches("[k]");
            Some((share, symbol.trim().to_owned()))
        })
        .take(top)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hottest_symbols_are_read_from_perfs_listing() {
        let report = "# Samples: 9K of event 'cpu-clock'\n#\n# Overhead  Symbol\n\
                      # ........  ......\n#\n    12.50%  [.] serde_json::de::from_slice\n\
                      \x20    3.25%  [k] _raw_spin_unlock_irqrestore\n\n#\n# (Tip)\n";
        assert_eq!(
            hottest(report, 5),
            [
                (12.5, "serde_json::de::from_slice".to_owned()),
                (3.25, "_raw_spin_unlock_irqrestore".to_owned())
            ]
        );
        assert_eq!(hottest(report, 1).len(), 1);
        assert!(hottest("", 3).is_empty());
    }
}
