//! The GitHub workflows and the Dockerfiles cannot run here, so they are kept valid by reading
//! them: every workflow parses and has jobs with steps, actions are pinned to a version, every
//! path a step names exists, every `cargo xtask` task and `--package` it runs exists, and each
//! image is built the same hardened way from its own crate.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn workflows() -> Vec<(String, Value)> {
    let dir = root().join(".github/workflows");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let value = serde_saphyr::from_str::<Value>(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), value)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn steps(workflow: &Value) -> Vec<&Value> {
    workflow["jobs"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|job| job["steps"].as_array().unwrap())
        .collect()
}

/// Every string a step holds (its `run` script and `with` inputs).
fn texts(step: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(run) = step["run"].as_str() {
        out.push(run.to_owned());
    }
    if let Some(with) = step["with"].as_object() {
        out.extend(with.values().filter_map(|v| v.as_str().map(str::to_owned)));
    }
    out
}

/// The crates that ship an image: those with a Dockerfile.
fn imaged_crates() -> BTreeSet<String> {
    std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Dockerfile").is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn package_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for dir in ["crates", "."] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let manifest = entry.unwrap().path().join("Cargo.toml");
            if let Ok(text) = std::fs::read_to_string(&manifest)
                && let Some(line) = text.lines().find(|l| l.starts_with("name = "))
            {
                names.insert(
                    line.trim_start_matches("name = ")
                        .trim_matches('"')
                        .to_owned(),
                );
            }
        }
    }
    names
}

/// Repository paths named in a text, with `${{ matrix.binary }}` / `${binary}` expanded over
/// the imaged crates.
fn paths_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let text = text.replace("${{ matrix.binary }}", "${binary}");
    for word in text.split(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
        let word = word.trim_end_matches([';', ')']);
        let is_path = [
            "charts/", "crates/", "e2e/", "xtask/", "docs/", "proto/", ".ci/",
        ]
        .iter()
        .any(|prefix| word.starts_with(prefix));
        if !is_path {
            continue;
        }
        for binary in imaged_crates() {
            out.push(word.replace("${binary}", &binary));
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn workflows_parse_and_every_job_has_steps_with_pinned_actions() {
    let all = workflows();
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["ci.yml", "e2e.yml", "release.yml"]);
    for (name, workflow) in &all {
        assert!(workflow["name"].is_string(), "{name}: name");
        assert!(workflow["on"].is_object(), "{name}: on");
        for (job, body) in workflow["jobs"].as_object().unwrap() {
            assert!(body["runs-on"].is_string(), "{name}/{job}: runs-on");
            assert!(
                !body["steps"].as_array().unwrap().is_empty(),
                "{name}/{job}: steps"
            );
        }
        for step in steps(workflow) {
            match (step["uses"].as_str(), step["run"].as_str()) {
                (Some(action), None) => {
                    let (repo, version) = action
                        .split_once('@')
                        .unwrap_or_else(|| panic!("{name}: {action} is not pinned to a version"));
                    assert!(
                        repo.contains('/') && !version.is_empty(),
                        "{name}: {action}"
                    );
                }
                (None, Some(_)) => {}
                _ => panic!("{name}: a step needs exactly one of uses or run: {step}"),
            }
        }
    }
}

#[test]
fn every_path_a_workflow_names_exists() {
    let mut seen = BTreeSet::new();
    for (name, workflow) in workflows() {
        for step in steps(&workflow) {
            for text in texts(step) {
                for path in paths_in(&text) {
                    assert!(
                        Path::new(&root().join(&path)).exists(),
                        "{name}: {path} does not exist"
                    );
                    seen.insert(path);
                }
            }
        }
    }
    for path in [
        ".ci/run",
        "charts/lifeline",
        "charts/lifeline/ci/sidecar.yaml",
        "crates/hostpath-driver/Dockerfile",
    ] {
        assert!(
            seen.contains(path),
            "{path} not found in any workflow: {seen:?}"
        );
    }
}

#[test]
fn every_xtask_task_and_package_a_workflow_runs_exists() {
    let help = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let packages = package_names();
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(ci.contains("cargo xtask ci"), ".ci/run runs cargo xtask ci");
    for (name, workflow) in workflows() {
        for step in steps(&workflow) {
            for text in texts(step) {
                let words: Vec<&str> = text.split_whitespace().collect();
                for pair in words.windows(2) {
                    match pair {
                        ["xtask", task] => assert!(
                            help.lines().any(|l| l.trim_start().starts_with(task)),
                            "{name}: cargo xtask {task} is not a task"
                        ),
                        ["--package", package] => assert!(
                            packages.contains(*package),
                            "{name}: package {package} is not in the workspace"
                        ),
                        _ => {}
                    }
                }
            }
        }
    }
}

#[test]
fn the_image_lists_in_workflows_are_exactly_the_crates_with_a_dockerfile() {
    let expected = imaged_crates();
    assert_eq!(
        expected,
        BTreeSet::from([
            "datamover-controller".to_owned(),
            "hostpath-driver".to_owned(),
            "replication-controller".to_owned()
        ])
    );
    let (_, release) = workflows()
        .into_iter()
        .find(|(n, _)| n == "release.yml")
        .unwrap();
    let matrix: BTreeSet<String> = release["jobs"]["images"]["strategy"]["matrix"]["binary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(matrix, expected, "release.yml builds every image");
    let e2e = std::fs::read_to_string(root().join(".github/workflows/e2e.yml")).unwrap();
    let line = e2e
        .lines()
        .find(|l| l.trim_start().starts_with("for binary in"))
        .unwrap();
    let looped: BTreeSet<String> = line
        .trim()
        .trim_start_matches("for binary in")
        .trim_end_matches("; do")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(looped, expected, "e2e.yml loads every image into kind");
}

#[test]
fn each_image_builds_its_own_crate_and_runs_it_without_root_or_shell() {
    for name in imaged_crates() {
        let dockerfile =
            std::fs::read_to_string(root().join("crates").join(&name).join("Dockerfile")).unwrap();
        let package = format!("lifeline-{name}");
        assert!(
            dockerfile.contains(&format!("--package {package} --bin {package}")),
            "{name}: builds {package}"
        );
        let stages: Vec<&str> = dockerfile
            .lines()
            .filter(|l| l.starts_with("FROM "))
            .collect();
        assert_eq!(stages.len(), 2, "{name}: multi-stage");
        assert!(
            stages[1].contains("distroless") && stages[1].ends_with(":nonroot"),
            "{name}: the runtime has no shell and a non-root user: {}",
            stages[1]
        );
        assert!(dockerfile.contains("\nUSER 65532:65532\n"), "{name}: USER");
        assert!(
            dockerfile.contains(&format!("ENTRYPOINT [\"/usr/local/bin/{package}\"]")),
            "{name}: ENTRYPOINT"
        );
    }
}
