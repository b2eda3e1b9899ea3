//! `cargo xtask`: Lifeline's project tasks. Thin dispatch; each task lives in its own module.

mod bench;
mod charts;
mod ci;
mod control_plane;
mod crds;
mod demo;
mod generated;
mod tools;

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Lifeline's project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Write the CRD YAML generated from crates/api into charts/lifeline-crds/templates/.
    Crds {
        /// Write nothing; fail with a diff when the committed YAML differs from the types.
        #[arg(long)]
        check: bool,
    },
    /// Render, lint and validate the Helm charts; write the renders to docs/examples/helm/.
    Charts {
        /// Write nothing; fail with a diff when the committed renders differ.
        #[arg(long)]
        check: bool,
    },
    /// Build the real control plane (etcd, kube-apiserver, kube-controller-manager, kubectl)
    /// from the Go modules pinned in tools/control-plane/ into a cache outside the work tree.
    ControlPlane(control_plane::Args),
    /// Run every check CI runs: set-up, fmt, clippy, CRD drift, all tests.
    Ci(ci::Args),
    /// The main job: two DR sites on this machine, walked through migration, disaster and failback.
    Demo(demo::Args),
    /// Benchmarks, on release builds (`--smoke` for a quick debug run).
    Bench(bench::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Crds { check } => crds::run(&workspace_root(), check),
        Task::Charts { check } => charts::run(&workspace_root(), check),
        Task::ControlPlane(args) => control_plane::run(&workspace_root(), args),
        Task::Ci(args) => ci::run(&workspace_root(), args),
        Task::Demo(args) => demo::run(&workspace_root(), args),
        Task::Bench(args) => bench::run(&workspace_root(), args),
    }
}

/// The workspace root: xtask lives one level below it.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

/// A `cargo` command for a child build. `cargo run` gives xtask its own package's variables
/// (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, …); passed on, they make build scripts that watch
/// them (ring's) rerun, so every `cargo xtask …` rebuilt ~15 crates. They are removed here.
pub fn cargo() -> Command {
    let mut command = Command::new(env!("CARGO"));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || matches!(
                name.as_ref(),
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_MANIFEST_LINKS"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_RUSTC_CURRENT_DIR"
            )
        {
            command.env_remove(name.as_ref());
        }
    }
    command
}

/// Builds every binary of the workspace but xtask (`--release` when asked) with the command
/// the e2e harness runs (`e2e/src/process.rs`), so neither rebuilds what the other built;
/// returns the folder the binaries are in.
pub fn build_bins(root: &Path, release: bool) -> anyhow::Result<PathBuf> {
    let mut command = cargo();
    command.args(["build", "--workspace", "--exclude", "xtask", "--bins"]);
    if release {
        command.arg("--release");
    }
    let status = command
        .current_dir(root)
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run cargo: {e}"))?;
    anyhow::ensure!(status.success(), "cargo build failed ({status})");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join(if release { "release" } else { "debug" }))
}
