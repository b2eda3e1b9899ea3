//! Running `kubectl-lifeline` (the real binary) against the harness's sites, and checking what
//! it asked of them.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use lifeline_runtime::rbac::{Rule, Scope};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::process::binary;
use crate::sites::SiteEnv;
use crate::{TestCluster, rbac};

/// `--site NAME=KUBECONFIG` for the site.
pub fn site(name: &str, site: &SiteEnv) -> String {
    format!("{name}={}", site.cli_kubeconfig.display())
}

/// What one run printed and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

fn command(args: &[String]) -> anyhow::Result<Command> {
    let mut command = Command::new(binary("lifeline-cli", "kubectl-lifeline")?);
    command
        .args(args)
        .env_remove("LIFELINE_SITES")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    Ok(command)
}

/// Runs `kubectl-lifeline ARGS` to the end (asynchronously: the local API servers answer on
/// the test's runtime), printing what it printed.
pub async fn run(args: &[String]) -> Run {
    let output = command(args)
        .unwrap()
        .output()
        .await
        .expect("kubectl-lifeline runs");
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    eprintln!(
        "$ kubectl lifeline {}\n{}{}",
        args.join(" "),
        run.stdout,
        run.stderr
    );
    run
}

/// Starts `kubectl-lifeline ARGS` and returns it once a line of its progress (stderr) contains
/// `line`, with what it printed until then: to interrupt a command at a known step.
pub async fn run_until(
    args: &[String],
    line: &str,
    timeout: Duration,
) -> anyhow::Result<(Child, String)> {
    let mut child = command(args)?
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(child.stderr.take().context("stderr")?).lines();
    let mut seen = String::new();
    let found = tokio::time::timeout(timeout, async {
        while let Some(next) = lines.next_line().await? {
            seen.push_str(&next);
            seen.push('\n');
            if next.contains(line) {
                return Ok(true);
            }
        }
        Ok::<_, std::io::Error>(false) // it ended first
    })
    .await;
    eprintln!(
        "$ kubectl lifeline {} (until {line:?})\n{seen}",
        args.join(" ")
    );
    match found {
        Ok(Ok(true)) => Ok((child, seen)),
        Ok(Ok(false)) => anyhow::bail!("kubectl-lifeline ended before printing {line:?}"),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => anyhow::bail!("kubectl-lifeline did not print {line:?} within {timeout:?}"),
    }
}

/// The arguments of a command with `-n NAMESPACE` and a `--site` per entry.
pub fn args(command: &[&str], namespace: &str, sites: &[String]) -> Vec<String> {
    let mut out: Vec<String> = command.iter().map(|s| s.to_string()).collect();
    out.extend(["-n".into(), namespace.to_owned()]);
    for s in sites {
        out.extend(["--site".into(), s.clone()]);
    }
    out
}

/// A kubeconfig like `cluster`'s whose API server is a closed port: a site that is gone, as
/// the person running the CLI sees it.
pub fn dead_kubeconfig(cluster: &TestCluster) -> PathBuf {
    let text = std::fs::read_to_string(cluster.kubeconfig()).unwrap();
    let mut config: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    config["clusters"][0]["cluster"]["server"] = "http://127.0.0.1:9".into();
    let path = cluster.dir().join("dead-kubeconfig.json");
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

/// Requests of kind `verb` the CLI made at this site (the audit log).
pub async fn requests(cluster: &TestCluster, verb: &str) -> usize {
    cluster
        .audit_log()
        .await
        .unwrap()
        .iter()
        .filter(|a| a.agent.starts_with("kubectl-lifeline/") && a.verb == verb)
        .count()
}

/// Every request the CLI made at this site is allowed by the rules it documents.
pub async fn within_documented_rbac(cluster: &TestCluster) {
    let rules: Vec<Rule> = lifeline_cli::rbac::RULES
        .iter()
        .map(|(group, resources, verbs, why)| Rule {
            scope: Scope::Cluster,
            group,
            resources,
            verbs,
            resource_names: &[],
            why,
        })
        .collect();
    rbac::check(
        cluster,
        "kubectl-lifeline/",
        &rules,
        &rbac::Namespaces {
            own: "default",
            protected: None,
        },
    )
    .await
    .unwrap();
}
