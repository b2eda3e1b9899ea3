//! `cargo xtask bench replication|datamover`: runs `e2e/src/bin/lifeline-bench*.rs` on release builds and
//! writes its JSON under `target/bench/` (`replication-<controller>.json`, `datamover.json`). `--smoke` is a seconds-long debug run that CI uses to
//! keep the benchmark working (no timing is judged there).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

#[derive(clap::Args)]
pub struct Args {
    /// What to measure: `replication` or `datamover`.
    pub what: String,
    /// replication: which controller — `lifeline`, `csi-addons` (its manager and sidecar) or
    /// `vro` (the volume-replication-operator v0.3.0).
    #[arg(long, default_value = "lifeline")]
    pub controller: String,
    /// replication: no controller; the benchmark makes a controller's writes itself, as fast as
    /// the API server takes them (this machine's limit).
    #[arg(long)]
    pub ceiling: bool,
    /// replication: sample the controller with Linux perf on the way to primary and list where
    /// its CPU time went.
    #[arg(long)]
    pub profile: bool,
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
    /// datamover: how many backups move data at once (`--max-concurrent-backups`); default:
    /// all of them. Below `--backups`, the slot-freed → next ReplicationSource time is reported.
    #[arg(long)]
    pub limit: Option<usize>,
    /// A small, quick, debug-build run.
    #[arg(long)]
    pub smoke: bool,
}

/// The benchmark binary of `what` and its arguments (each benchmark has its own flags and
/// its own JSON file under `out`).
fn invocation(args: &Args, out: &Path) -> anyhow::Result<(&'static str, Vec<String>)> {
    let (bin, mut flags) = match args.what.as_str() {
        "replication" => {
            let mut flags = vec!["--controller".to_owned(), args.controller.clone()];
            if args.ceiling {
                flags.push("--ceiling".to_owned());
            }
            if args.profile {
                flags.push("--profile".to_owned());
            }
            ("lifeline-bench", flags)
        }
        "datamover" => (
            "lifeline-bench-datamover",
            vec![
                "--backups".to_owned(),
                args.backups.to_string(),
                "--size".to_owned(),
                args.size.to_string(),
                "--limit".to_owned(),
                args.limit.unwrap_or(args.backups).to_string(),
            ],
        ),
        other => bail!("unknown benchmark {other:?}; available: replication, datamover"),
    };
    match (bin, args.smoke) {
        ("lifeline-bench", true) => flags.push("--smoke".to_owned()),
        ("lifeline-bench", false) => flags.extend([
            "--vrs".to_owned(),
            args.vrs.to_string(),
            "--idle".to_owned(),
            args.idle.to_string(),
        ]),
        (_, true) => flags = vec!["--smoke".to_owned()],
        (_, false) => {}
    }
    let file = match bin {
        "lifeline-bench" if args.ceiling => "replication-ceiling".to_owned(),
        "lifeline-bench" => format!("replication-{}", args.controller),
        _ => args.what.clone(),
    };
    flags.push("--output".to_owned());
    flags.push(out.join(format!("{file}.json")).display().to_string());
    Ok((bin, flags))
}

pub fn run(root: &Path, args: Args) -> anyhow::Result<()> {
    let out = root.join("target/bench");
    let (bin, flags) = invocation(&args, &out)?;
    std::fs::create_dir_all(&out)?;
    let mut env = crate::tools::for_demo(root)?;
    let control_plane = crate::control_plane::ensure(root, true)?;
    env.push((
        "KUBEBUILDER_ASSETS".into(),
        control_plane.display().to_string(),
    ));
    let release = !args.smoke;
    println!("==> building the benchmark and the binaries it runs");
    let bins = crate::build_bins(root, release)?;
    let mut command = Command::new(bins.join(bin));
    if release {
        command.env("LIFELINE_E2E_RELEASE", "1");
    }
    command
        .args(&flags)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(root);
    let status = command
        .status()
        .with_context(|| format!("cannot run {bin}"))?;
    if !status.success() {
        bail!("the benchmark failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn invoked(line: &[&str]) -> (&'static str, Vec<String>) {
        let cli =
            Cli::try_parse_from(std::iter::once("bench").chain(line.iter().copied())).unwrap();
        invocation(&cli.args, Path::new("/out")).unwrap()
    }

    #[test]
    fn each_benchmark_gets_its_own_flags_and_json_file() {
        assert_eq!(
            invoked(&["replication", "--vrs", "50", "--idle", "3"]),
            (
                "lifeline-bench",
                [
                    "--controller",
                    "lifeline",
                    "--vrs",
                    "50",
                    "--idle",
                    "3",
                    "--output",
                    "/out/replication-lifeline.json"
                ]
                .map(String::from)
                .to_vec()
            )
        );
        assert_eq!(
            invoked(&["replication", "--controller", "csi-addons", "--smoke"]).1,
            [
                "--controller",
                "csi-addons",
                "--smoke",
                "--output",
                "/out/replication-csi-addons.json"
            ]
            .map(String::from)
            .to_vec()
        );
        assert_eq!(
            invoked(&["replication", "--ceiling", "--vrs", "10"]).1,
            [
                "--controller",
                "lifeline",
                "--ceiling",
                "--vrs",
                "10",
                "--idle",
                "180",
                "--output",
                "/out/replication-ceiling.json"
            ]
            .map(String::from)
            .to_vec()
        );
        assert_eq!(
            invoked(&["datamover", "--backups", "4", "--size", "1024"]),
            (
                "lifeline-bench-datamover",
                [
                    "--backups",
                    "4",
                    "--size",
                    "1024",
                    "--limit",
                    "4",
                    "--output",
                    "/out/datamover.json"
                ]
                .map(String::from)
                .to_vec()
            )
        );
        assert_eq!(
            invoked(&["datamover", "--backups", "20", "--limit", "4"]).1[4..6],
            ["--limit", "4"].map(String::from)
        );
        assert_eq!(
            invoked(&["datamover", "--smoke"]).1,
            ["--smoke", "--output", "/out/datamover.json"]
                .map(String::from)
                .to_vec()
        );
        let cli = Cli::try_parse_from(["bench", "bogus"]).unwrap();
        assert!(
            invocation(&cli.args, Path::new("/out"))
                .unwrap_err()
                .to_string()
                .contains("available")
        );
    }
}
