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
    let control_plane = crate::control_plane::ensure(root, true)?;
    println!("==> control plane: {}", control_plane.display());
    let mut env = crate::tools::for_ci(root, &control_plane)?;
    env.push((
        "KUBEBUILDER_ASSETS".into(),
        control_plane.display().to_string(),
    ));
    // Before the tests: they read the committed renders this proves current.
    crate::charts::run(root, true)?;
    let promtool = env
        .iter()
        .find(|(k, _)| k == "LIFELINE_PROMTOOL")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "promtool".into());
    monitoring(root, &promtool)?;
    step_with_env(
        root,
        "tests",
        &["test", "--workspace", "--no-fail-fast"],
        &env,
    )?;
    // Keeps the benchmarks working; no timing is judged here.
    let bins = crate::build_bins(root, false)?;
    // csi-addons too: its manager, its sidecar in a Pod and their RBAC keep working here.
    for (bench, flags) in [
        ("lifeline-bench", &[][..]),
        ("lifeline-bench", &["--controller", "csi-addons"][..]),
        ("lifeline-bench-datamover", &[][..]),
    ] {
        let mut command = Command::new(bins.join(bench));
        command.args(flags).arg("--smoke");
        let name = format!("{bench} {} --smoke", flags.join(" "));
        timed(root, &name, command, &env)?;
    }
    println!("==> all checks passed in {:.0?}", started.elapsed());
    Ok(())
}

/// The chart's alerts: valid rules, and their unit tests (series that fire each alert and
/// series that do not) pass.
fn monitoring(root: &Path, promtool: &str) -> anyhow::Result<()> {
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
        let status = Command::new(promtool)
            .args(args)
            .current_dir(root)
            .status()
            .with_context(|| format!("cannot run {promtool}"))?;
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
    let mut command = crate::cargo();
    command.args(cargo_args);
    timed(
        root,
        &format!("{name}: cargo {}", cargo_args.join(" ")),
        command,
        env,
    )
}

/// Runs one step in the workspace with `env`, saying what and how long; fails when it does.
fn timed(
    root: &Path,
    name: &str,
    mut command: Command,
    env: &[(String, String)],
) -> anyhow::Result<()> {
    println!("==> {name}");
    let started = Instant::now();
    let status = command
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(root)
        .status()
        .with_context(|| format!("cannot run {name}"))?;
    if !status.success() {
        bail!("{name} failed ({status})");
    }
    println!("==> {name}: ok in {:.0?}", started.elapsed());
    Ok(())
}
