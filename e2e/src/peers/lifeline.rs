//! Lifeline's replication controller: as its own user with the chart's RBAC, straight on the
//! driver's socket.

use std::time::Duration;

use anyhow::Context;

use super::{Driver, Running};
use crate::cluster::TestCluster;
use crate::process::{Process, binary};
use crate::rbac::Controller;

pub async fn start(
    cluster: &TestCluster,
    namespace: &str,
    driver: &Driver<'_>,
    concurrency: usize,
) -> anyhow::Result<Running> {
    let kubeconfig = cluster
        .controller_kubeconfig(Controller::Replication, namespace, None)
        .await?;
    let mut controller = Process::spawn(
        cluster.dir(),
        "replication-controller",
        &binary(
            "lifeline-replication-controller",
            "lifeline-replication-controller",
        )?,
        &[
            "--driver-name".into(),
            driver.name.into(),
            "--csi-address".into(),
            format!("unix://{}", driver.socket.display()),
            "--admin-address".into(),
            "127.0.0.1:0".into(),
            "--watch-namespace".into(),
            namespace.into(),
            "--concurrency".into(),
            concurrency.to_string(),
            "--log-level".into(),
            "warn".into(),
        ],
        &[("KUBECONFIG".into(), kubeconfig.display().to_string())],
    )?;
    controller
        .wait_for_line("admin-listen", Duration::from_secs(60))
        .await?;
    let pid = controller.pid().context("the controller runs")?;
    Ok(Running {
        processes: vec![controller],
        pids: vec![("controller", pid)],
        users: vec![Controller::Replication.user()],
        release: concat!("Lifeline ", env!("CARGO_PKG_VERSION")),
    })
}
