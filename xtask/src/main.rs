//! `cargo xtask`: Lifeline's project tasks. Thin dispatch; each task lives in its own module.

mod bench;
mod charts;
mod ci;
mod crds;
mod demo;
mod generated;
mod tools;

use std::path::{Path, PathBuf};

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
