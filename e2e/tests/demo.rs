//! The main job, `cargo xtask demo`, end to end with `--kubeconfig`: each site on the cluster a
//! kubeconfig names, or both on one. Local API servers stand in for the clusters here (any
//! backend the environment chooses works); every step of the demo checks the data byte for byte
//! itself.

use std::process::Stdio;

use lifeline_e2e::TestCluster;
use tokio::process::Command;

fn demo() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lifeline-demo"));
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

#[tokio::test]
async fn the_demo_runs_with_one_kubeconfig_per_site() {
    let (a, b) = (
        TestCluster::start().await.unwrap(),
        TestCluster::start().await.unwrap(),
    );
    let output = demo()
        .arg("--kubeconfig")
        .arg(a.kubeconfig())
        .arg("--kubeconfig")
        .arg(b.kubeconfig())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "starting two sites on the clusters of {}",
            a.kubeconfig().display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("the restored claim holds exactly the backed-up files: true"),
        "{stdout}"
    );
    assert!(stdout.contains("==> done in"), "{stdout}");
    // The runbook's steps are the CLI's, and say so.
    for command in [
        "$ kubectl lifeline migrate --from a --to b",
        "$ kubectl lifeline failover --to b",
        "$ kubectl lifeline failback --to a --from b",
        "s of writes at most",
        "site b: Deployment shop scaled from 0 to 1",
        "DATA AGE",
    ] {
        assert!(stdout.contains(command), "{command}: {stdout}");
    }
}

#[tokio::test]
async fn the_demo_runs_both_sites_on_one_cluster() {
    let cluster = TestCluster::start().await.unwrap();
    let output = demo()
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("the restored claim holds exactly the backed-up files: true"),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_demo_refuses_more_kubeconfigs_than_sites_and_missing_files() {
    let output = demo()
        .args(["--kubeconfig", "/dev/null", "--kubeconfig", "/dev/null"])
        .args(["--kubeconfig", "/dev/null"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("give --kubeconfig once"), "{stderr}");
    let output = demo()
        .args(["--kubeconfig", "/nonexistent/kubeconfig"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not exist"), "{stderr}");
}
