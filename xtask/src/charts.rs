//! `cargo xtask charts [--check]`: renders the Helm charts with Helm's own engine for the
//! default values and each `charts/lifeline/ci/*.yaml`, lints them strictly, validates every
//! object against Kubernetes' schemas and checks values.schema.json refuses bad values (all in
//! `xtask/charts.py`). The renders are committed under docs/examples/helm/ — the tests of the
//! chart's shape and of each controller's RBAC read them — and `--check` fails when they drift.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::generated::Generated;

/// Where the renders are committed.
pub const RENDER_DIR: &str = "docs/examples/helm";

pub fn run(root: &Path, check: bool) -> anyhow::Result<()> {
    let python = crate::tools::python(root)?;
    let out = root.join("target/charts/rendered");
    if out.exists() {
        fs::remove_dir_all(&out)?;
    }
    println!("==> rendering the charts with Helm's engine");
    let status = Command::new(&python)
        .arg(root.join("xtask/charts.py"))
        .arg(root)
        .arg(&out)
        .status()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !status.success() {
        bail!("the chart checks failed ({status})");
    }
    let mut wanted = BTreeMap::new();
    for entry in fs::read_dir(&out)? {
        let entry = entry?;
        wanted.insert(
            entry.file_name().to_string_lossy().into_owned(),
            fs::read_to_string(entry.path())?,
        );
    }
    let generated = Generated {
        dir: &root.join(RENDER_DIR),
        what: "chart renders",
        command: "cargo xtask charts",
        ours: &|name, _| name.ends_with(".yaml") || name.ends_with(".notes.txt"),
    };
    if check {
        generated.check(&wanted)
    } else {
        generated.write(&wanted)
    }
}
