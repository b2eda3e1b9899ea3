//! `cargo xtask control-plane`: the real Kubernetes programs the e2e suite, the demo and the
//! benchmark run on — etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl,
//! and the upstream storage controllers (external-provisioner, csi-snapshotter and the
//! snapshot-controller, VolSync with its CRDs and mover scripts, Velero with its AWS plugin)
//! and the peers the benchmark compares Lifeline with (csi-addons' controller and sidecar, the
//! volume-replication-operator) — built from the Go modules pinned in `tools/control-plane/`
//! into a cache outside the work tree, once per version. `KUBEBUILDER_ASSETS` (a folder with
//! all of them) or the control plane's binaries on PATH at the pinned versions are used
//! instead of building.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

mod components;
use components::{COMPONENTS, Component};

/// The oldest Go that builds the pinned modules (their `go` directive).
const GO_MINIMUM: (u32, u32) = (1, 26);

#[derive(clap::Args)]
pub struct Args {
    /// Print only the folder with the binaries (for `export KUBEBUILDER_ASSETS=$(…)`).
    #[arg(long)]
    pub print_dir: bool,
}

pub fn run(root: &Path, args: Args) -> anyhow::Result<()> {
    let dir = ensure(root, !args.print_dir)?;
    if args.print_dir {
        println!("{}", dir.display());
    } else {
        println!("==> control plane ready in {}", dir.display());
        println!("    export KUBEBUILDER_ASSETS={}", dir.display());
    }
    Ok(())
}

/// The folder holding every component at its pinned version: `KUBEBUILDER_ASSETS` when it has
/// them all, else one folder of links — to the control plane's binaries on PATH when those are
/// the pinned versions, to the cache for the rest, built into first where needed. Progress
/// goes to stderr when `verbose`.
pub fn ensure(root: &Path, verbose: bool) -> anyhow::Result<PathBuf> {
    let pins = pins(root)?;
    if let Some(dir) = std::env::var_os("KUBEBUILDER_ASSETS").map(PathBuf::from) {
        let missing: Vec<&str> = entries().filter(|e| !dir.join(e).is_file()).collect();
        if missing.is_empty() {
            return Ok(dir);
        }
        bail!(
            "KUBEBUILDER_ASSETS={} lacks {}; unset it to build the components here",
            dir.display(),
            missing.join(", ")
        );
    }
    let on_path = from_path(&pins);
    let cache = cache_dir()?;
    for (module, version) in &pins {
        let wanted: Vec<&Component> = components_of(module)
            .into_iter()
            .filter(|c| !on_path.iter().any(|(n, _)| *n == c.name))
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let dir = cache.join(format!("{module}-{version}"));
        let go_sum = std::fs::read(module_dir(root, module).join("go.sum"))?;
        let current = components_of(module).iter().all(|c| {
            dir.join(c.name).is_file() && c.files.iter().all(|(_, f)| dir.join(f).is_file())
        }) && std::fs::read(dir.join("go.sum")).is_ok_and(|s| s == go_sum);
        if !current {
            build(root, module, version, &dir, &go_sum, verbose)?;
        } else if verbose {
            eprintln!(
                "==> {} {version}: cached in {}",
                names(&wanted),
                dir.display()
            );
        }
    }
    // One folder with everything, as KUBEBUILDER_ASSETS wants it.
    let assets = if on_path.is_empty() {
        cache.join(format!(
            "assets-{}",
            pins.iter()
                .map(|(m, v)| format!("{m}-{v}"))
                .collect::<Vec<_>>()
                .join("-")
        ))
    } else {
        root.join("target/control-plane-assets")
    };
    std::fs::create_dir_all(&assets)?;
    for component in COMPONENTS {
        let version = &pins
            .iter()
            .find(|(m, _)| *m == component.module)
            .expect("pinned")
            .1;
        let cached = cache.join(format!("{}-{version}", component.module));
        let binary = on_path
            .iter()
            .find(|(n, _)| *n == component.name)
            .map_or_else(|| cached.join(component.name), |(_, p)| p.clone());
        link(&assets.join(component.name), &binary)?;
        for (_, file) in component.files {
            link(&assets.join(file), &cached.join(file))?;
        }
    }
    Ok(assets)
}

/// Every name the assets folder holds: the binaries and the files copied beside them.
fn entries() -> impl Iterator<Item = &'static str> {
    COMPONENTS
        .iter()
        .flat_map(|c| std::iter::once(c.name).chain(c.files.iter().map(|(_, name)| *name)))
}

/// The pinned version of each tools module: (module folder, version).
fn pins(root: &Path) -> anyhow::Result<Vec<(&'static str, String)>> {
    let mut pins: Vec<(&'static str, String)> = Vec::new();
    for component in COMPONENTS {
        if pins.iter().any(|(m, _)| *m == component.module) {
            continue;
        }
        let go_mod = module_dir(root, component.module).join("go.mod");
        let text = std::fs::read_to_string(&go_mod)
            .with_context(|| format!("cannot read {}", go_mod.display()))?;
        let version = required_version(&text, component.pinned).with_context(|| {
            format!("{} does not require {}", go_mod.display(), component.pinned)
        })?;
        pins.push((component.module, version));
    }
    Ok(pins)
}

/// The version a go.mod requires `module` at (`require M v` or a line of a `require (…)` block).
fn required_version(go_mod: &str, module: &str) -> Option<String> {
    go_mod.lines().find_map(|line| {
        let line = line.trim().trim_start_matches("require").trim();
        let mut words = line.split_whitespace();
        (words.next() == Some(module))
            .then(|| words.next().map(str::to_owned))
            .flatten()
    })
}

fn module_dir(root: &Path, module: &str) -> PathBuf {
    root.join("tools/control-plane").join(module)
}

fn components_of(module: &str) -> Vec<&'static Component> {
    COMPONENTS.iter().filter(|c| c.module == module).collect()
}

fn names(components: &[&Component]) -> String {
    components
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `$LIFELINE_CACHE`, else `$XDG_CACHE_HOME/lifeline`, else `~/.cache/lifeline`: outside the
/// work tree, so a fresh clone on the same machine reuses what an earlier one built.
fn cache_dir() -> anyhow::Result<PathBuf> {
    let base = if let Some(dir) = std::env::var_os("LIFELINE_CACHE") {
        PathBuf::from(dir)
    } else if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        PathBuf::from(dir).join("lifeline")
    } else {
        let home = std::env::var_os("HOME").context("no HOME, XDG_CACHE_HOME or LIFELINE_CACHE")?;
        PathBuf::from(home).join(".cache/lifeline")
    };
    Ok(base.join("control-plane"))
}

/// The three ways to provide the control plane, for errors.
const WAYS: &str = "the control plane (etcd, kube-apiserver, kube-controller-manager, \
kube-scheduler, kubectl) and the storage controllers (csi-provisioner, csi-snapshotter, \
snapshot-controller, volsync, restic, velero, velero-plugin-for-aws) and the benchmark's peers (csi-addons-manager, \
csi-addons-sidecar, volume-replication-operator) come from one of: (1) Go >= 1.26 with the Go module proxy \
reachable, to build them once into the cache (`cargo xtask control-plane`); (2) \
KUBEBUILDER_ASSETS naming a folder with all of them; (3) the control plane's binaries on PATH \
at the pinned versions (the storage controllers are then still built as in (1))";

/// Builds the components of one tools module into `dir` (through a temporary folder beside
/// it, so an interrupted build never leaves a half-written cache).
fn build(
    root: &Path,
    module: &str,
    version: &str,
    dir: &Path,
    go_sum: &[u8],
    verbose: bool,
) -> anyhow::Result<()> {
    check_go()?;
    let parent = dir.parent().expect("cache entries have a parent");
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let staging = parent.join(format!(
        ".{}-building-{}",
        dir.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)?;
    let go_mod = std::fs::read_to_string(module_dir(root, module).join("go.mod"))?;
    for component in components_of(module) {
        if verbose {
            // A module may pin more than one program (Velero and its plugin): each its own.
            let own = required_version(&go_mod, component.pinned);
            eprintln!(
                "==> building {} {} from {} into {} (once per version; minutes on two cores)",
                component.name,
                own.as_deref().unwrap_or(version),
                component.pinned,
                dir.display()
            );
        }
        let started = Instant::now();
        let output = Command::new("go")
            .args(["build", "-trimpath", "-ldflags"])
            .arg(ldflags(module, version))
            .arg("-o")
            .arg(staging.join(component.name))
            .arg(component.package)
            .current_dir(module_dir(root, module))
            // The pinned go.mod is the truth: no toolchain download, no go.mod rewrite.
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-mod=readonly")
            .stdin(Stdio::null())
            .output()
            .context("cannot run go")?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "building {} {version} failed ({}):\n{}\n{WAYS}",
                component.name,
                output.status,
                tail.join("\n")
            );
        }
        if verbose {
            eprintln!("==> built {} in {:.0?}", component.name, started.elapsed());
        }
    }
    copy_files(root, module, &staging)?;
    std::fs::write(staging.join("go.sum"), go_sum)?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&staging, dir)
        .with_context(|| format!("cannot move the build into {}", dir.display()))?;
    Ok(())
}

/// Copies the files the module's components name from the pinned module's source (which the
/// build has just downloaded) into `dir`.
fn copy_files(root: &Path, module: &str, dir: &Path) -> anyhow::Result<()> {
    for component in components_of(module) {
        if component.files.is_empty() {
            continue;
        }
        let output = Command::new("go")
            .args(["list", "-m", "-f", "{{.Dir}}", component.pinned])
            .current_dir(module_dir(root, module))
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-mod=readonly")
            .stdin(Stdio::null())
            .output()
            .context("cannot run go list")?;
        let source = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        anyhow::ensure!(
            output.status.success() && source.is_dir(),
            "cannot find the source of {}: {}",
            component.pinned,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        for (from, to) in component.files {
            let target = dir.join(to);
            std::fs::copy(source.join(from), &target)
                .with_context(|| format!("cannot copy {from} from {}", component.pinned))?;
            // The module cache's files are read-only and never executable; scripts are run.
            let mode = if to.ends_with(".sh") { 0o755 } else { 0o644 };
            std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        }
    }
    Ok(())
}

/// What `--version` and `/version` report: the release, as the Kubernetes and Velero builds
/// stamp it (Velero's server logs it and `velero version` prints it).
fn ldflags(module: &str, version: &str) -> String {
    let mut flags = "-s -w".to_owned();
    if module == "velero" {
        flags.push_str(&format!(
            " -X github.com/vmware-tanzu/velero/pkg/buildinfo.Version={version}"
        ));
    }
    if module == "kubernetes" {
        let mut parts = version.trim_start_matches('v').split('.');
        let (major, minor) = (parts.next().unwrap_or("1"), parts.next().unwrap_or("0"));
        for (name, value) in [
            ("gitVersion", version),
            ("gitMajor", major),
            ("gitMinor", minor),
            ("gitTreeState", "clean"),
        ] {
            for package in [
                "k8s.io/component-base/version",
                "k8s.io/client-go/pkg/version",
            ] {
                flags.push_str(&format!(" -X {package}.{name}={value}"));
            }
        }
    }
    flags
}

/// Go is there and new enough; otherwise one error naming the three ways.
fn check_go() -> anyhow::Result<()> {
    let output = Command::new("go")
        .arg("version")
        .stdin(Stdio::null())
        .output();
    let Ok(output) = output else {
        bail!("no `go` on PATH; {WAYS}");
    };
    let text = String::from_utf8_lossy(&output.stdout);
    match go_version(&text) {
        Some(found) if found >= GO_MINIMUM => Ok(()),
        Some((major, minor)) => bail!(
            "go {major}.{minor} is older than {}.{}; {WAYS}",
            GO_MINIMUM.0,
            GO_MINIMUM.1
        ),
        None => bail!("`go version` printed {:?}; {WAYS}", text.trim()),
    }
}

/// `go version go1.26.8 linux/amd64` → (1, 26).
fn go_version(text: &str) -> Option<(u32, u32)> {
    let word = text.split_whitespace().find(|w| w.starts_with("go1"))?;
    let mut parts = word.trim_start_matches("go").split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// The control plane's binaries found on PATH, when every one of them is there at its pinned
/// version (else none: a mixed set of versions is no pinned control plane).
fn from_path(pins: &[(&'static str, String)]) -> Vec<(&'static str, PathBuf)> {
    let mut found = Vec::new();
    for component in COMPONENTS {
        let Some(version_line) = component.version_line else {
            continue;
        };
        let version = &pins
            .iter()
            .find(|(m, _)| *m == component.module)
            .expect("pinned")
            .1;
        let Some(path) = crate::tools::which(component.name) else {
            return Vec::new();
        };
        let kubectl = component.name == "kubectl";
        let printed = Command::new(&path)
            .args(if kubectl {
                &["version", "--client"][..]
            } else {
                &["--version"][..]
            })
            .stdin(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        if !printed.lines().any(|l| l.trim() == version_line(version)) {
            return Vec::new();
        }
        found.push((component.name, path));
    }
    found
}

/// Makes `link` a symbolic link to `target`.
fn link(link: &Path, target: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(target, link)
        .with_context(|| format!("cannot link {}", link.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_version_is_read_from_either_require_form() {
        let block = "module x\n\nrequire (\n\tk8s.io/kubernetes v1.36.3 // indirect\n\tfoo v1\n)\n";
        assert_eq!(
            required_version(block, "k8s.io/kubernetes").as_deref(),
            Some("v1.36.3")
        );
        let line = "require go.etcd.io/etcd/server/v3 v3.6.16\n";
        assert_eq!(
            required_version(line, "go.etcd.io/etcd/server/v3").as_deref(),
            Some("v3.6.16")
        );
        assert_eq!(required_version(line, "go.etcd.io/etcd"), None);
    }

    #[test]
    fn the_committed_tools_modules_pin_the_issued_versions() {
        let root = crate::workspace_root();
        let pins = pins(&root).unwrap();
        assert!(
            pins.contains(&("kubernetes", "v1.36.3".to_owned())),
            "{pins:?}"
        );
        let etcd = &pins.iter().find(|(m, _)| *m == "etcd").unwrap().1;
        assert!(etcd.starts_with("v3.6."), "{etcd}");
        let version = |m: &str| pins.iter().find(|(n, _)| *n == m).unwrap().1.clone();
        assert!(version("external-provisioner").starts_with("v5."));
        assert!(version("external-snapshotter").starts_with("v8."));
        // v0.14.0: of v0.12–v0.14, the only release the module proxy serves here, and it
        // starts on plain Kubernetes (it looks for OpenShift's SCCs and takes "no such kind"
        // as "not OpenShift").
        assert_eq!(version("volsync"), "v0.14.0");
        assert_eq!(
            version("restic"),
            "v0.18.0",
            "what VolSync v0.14.0's image carries"
        );
        // The newest csi-addons release the module proxy serves here; the operator's last.
        assert_eq!(version("kubernetes-csi-addons"), "v0.14.0");
        assert_eq!(version("volume-replication-operator"), "v0.3.0");
        // The release whose CRDs are in shared/upstream-crds/velero-v1.18.1/.
        assert_eq!(version("velero"), "v1.18.1");
    }

    #[test]
    fn go_versions_are_read_and_compared() {
        assert_eq!(go_version("go version go1.26.8 linux/amd64"), Some((1, 26)));
        assert_eq!(go_version("go version go1.9 linux/amd64"), Some((1, 9)));
        assert!(go_version("go version go1.9 linux/amd64").unwrap() < GO_MINIMUM);
        assert_eq!(go_version("bash: go: not found"), None);
    }

    #[test]
    fn the_release_is_stamped_into_kubernetes_binaries_only() {
        let flags = ldflags("kubernetes", "v1.36.3");
        assert!(flags.contains("k8s.io/component-base/version.gitVersion=v1.36.3"));
        assert!(flags.contains("gitMinor=36"));
        assert_eq!(ldflags("etcd", "v3.6.16"), "-s -w");
        assert!(ldflags("velero", "v1.18.1").ends_with("pkg/buildinfo.Version=v1.18.1"));
    }
}
