//! `cargo xtask bench replication|datamover`: runs `e2e/src/bin/lifeline-bench*.rs` on release builds and
//! writes its JSON under `target/bench/`. `--smoke` is a seconds-long debug run that CI uses to
//! keep the benchmark working (no timing is judged there).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

#[derive(clap::Args)]
pub struct Args {
    /// What to measure: `replication` or `datamover`.
    pub what: String,
    /// How many VolumeReplications.
    #[arg(long, default_value_t = 1000)]
    pub vrs: usize,
    /// Seconds to stay idle after convergence, counting RPCs and writes.
    #[arg(long, default_value_t = 180)]
    pub idle: u64,
    /// datamover: how many backups.
    #[arg(long, default_value_t = 4)]
    pub backups: usize,
    /// datamover: bytes per volume.
    #[arg(long, default_value_t = 64 << 20)]
    pub size: u64,
    /// A small, quick, debug-build run.
    #[arg(long)]
    pub smoke: bool,
}

pub fn run(root: &Path, args: Args) -> anyhow::Result<()> {
    let bin = match args.what.as_str() {
        "replication" => "lifeline-bench",
        "datamover" => "lifeline-bench-datamover",
        other => bail!("unknown benchmark {other:?}; available: replication, datamover"),
    };
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out)?;
    let mut command = Command::new(env!("CARGO"));
    command.args(["run", "--quiet"]);
    if !args.smoke {
        command.arg("--release").env("LIFELINE_E2E_RELEASE", "1");
    }
    command
        .args(["--package", "lifeline-e2e", "--bin", bin, "--"])
        .current_dir(root);
    if args.smoke {
        command.arg("--smoke");
    } else {
        command.args([
            "--vrs",
            &args.vrs.to_string(),
            "--idle",
            &args.idle.to_string(),
        ]);
    }
    command.args([
        "--output",
        &out.join("replication.json").display().to_string(),
    ]);
    let status = command.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("the benchmark failed ({status})");
    }
    Ok(())
}
