//! `cargo xtask demo`: sets up what the demo needs (restic, for the data mover), then runs the
//! two-site walk-through in `e2e/src/bin/lifeline-demo.rs`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

#[derive(clap::Args)]
pub struct Args {
    /// Leave both sites running afterwards and print a kubeconfig per site.
    #[arg(long)]
    pub keep: bool,
}

pub fn run(root: &Path, args: Args) -> anyhow::Result<()> {
    let env = crate::tools::ensure(root)
        .context("the demo needs restic and rclone; installing them failed")?;
    let mut command = Command::new(env!("CARGO"));
    command
        .args([
            "run",
            "--quiet",
            "--package",
            "lifeline-e2e",
            "--bin",
            "lifeline-demo",
            "--",
        ])
        .current_dir(root)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if args.keep {
        command.arg("--keep");
    }
    let status = command.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("the demo failed ({status}); the last lines above say where");
    }
    Ok(())
}
