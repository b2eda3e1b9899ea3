//! `cargo xtask ci`: every check, in the order that fails fastest. `.ci/run` calls exactly this.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

#[derive(clap::Args)]
pub struct Args {
    /// Skip `cargo fmt --check` and clippy (for a quick local test run).
    #[arg(long)]
    pub tests_only: bool,
}

pub fn run(root: &Path, args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    if !args.tests_only {
        step(root, "format", &["fmt", "--all", "--check"])?;
        step(
            root,
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        )?;
    }
    println!("==> CRD drift");
    crate::crds::run(root, true)?;
    let env = crate::tools::ensure(root)?;
    // Before the tests: they read the committed renders this proves current.
    crate::charts::run(root, true)?;
    monitoring(root)?;
    step_with_env(
        root,
        "tests",
        &["test", "--workspace", "--no-fail-fast"],
        &env,
    )?;
    // Keeps the benchmark working; no timing is judged here.
    step(
        root,
        "benchmark smoke",
        &[
            "run",
            "--quiet",
            "--package",
            "lifeline-e2e",
            "--bin",
            "lifeline-bench",
            "--",
            "--smoke",
        ],
    )?;
    step_with_env(
        root,
        "data mover benchmark smoke",
        &[
            "run",
            "--quiet",
            "--package",
            "lifeline-e2e",
            "--bin",
            "lifeline-bench-datamover",
            "--",
            "--smoke",
        ],
        &env,
    )?;
    println!("==> all checks passed in {:.0?}", started.elapsed());
    Ok(())
}

/// The chart's alerts: valid rules, and their unit tests (series that fire each alert and
/// series that do not) pass.
fn monitoring(root: &Path) -> anyhow::Result<()> {
    println!("==> alerts: promtool check rules, promtool test rules");
    for args in [
        &[
            "check",
            "rules",
            "charts/lifeline/files/prometheus-rules.yaml",
        ][..],
        &[
            "test",
            "rules",
            "charts/monitoring-tests/prometheus-rules.test.yaml",
        ][..],
    ] {
        let status = Command::new("promtool")
            .args(args)
            .current_dir(root)
            .status()
            .context("cannot run promtool (Debian's prometheus package)")?;
        if !status.success() {
            bail!("promtool {} failed ({status})", args.join(" "));
        }
    }
    Ok(())
}

fn step(root: &Path, name: &str, cargo_args: &[&str]) -> anyhow::Result<()> {
    step_with_env(root, name, cargo_args, &[])
}

fn step_with_env(
    root: &Path,
    name: &str,
    cargo_args: &[&str],
    env: &[(String, String)],
) -> anyhow::Result<()> {
    println!("==> {name}: cargo {}", cargo_args.join(" "));
    let started = Instant::now();
    let status = Command::new(env!("CARGO"))
        .args(cargo_args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(root)
        .status()
        .with_context(|| format!("running cargo for {name}"))?;
    if !status.success() {
        bail!("{name} failed ({status})");
    }
    println!("==> {name} ok in {:.0?}", started.elapsed());
    Ok(())
}
