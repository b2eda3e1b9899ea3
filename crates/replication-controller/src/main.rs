//! Entry point: parse flags, set up logging, admin endpoint and leader election, then run the
//! controller until SIGTERM.

use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use lifeline_replication_controller::{
    Context, ControllerArgs, Drivers, FIELD_MANAGER, Metrics, Settings, controller, group,
    volsync_pairs,
};
use lifeline_runtime::{Health, admin, admin_security, lifecycle, logging, shutdown};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = ControllerArgs::parse();
    let signal = shutdown::signal().context("cannot listen for SIGTERM")?;
    logging::init(&args.log).context("invalid --log-level")?;
    let metrics = Metrics::new();
    // No driver call may outlive the leadership Lease (lifeline_runtime::fence).
    let fence = lifecycle::fence(&args.leader);
    let budget = {
        let fence = fence.clone();
        std::sync::Arc::new(move || fence.remaining()) as lifeline_csi_client::Budget
    };
    let drivers = Drivers::from_args(&args.drivers, metrics.rpc_observer(), Some(budget))?;
    tracing::info!(mode = ?drivers.mode(), "starting");
    let client = lifeline_runtime::client::for_controller(FIELD_MANAGER)
        .await
        .context("cannot configure a Kubernetes client (in-cluster or KUBECONFIG)")?;

    let health = Arc::new(Health::default());
    let (address, admin) = admin::bind(
        args.admin.admin_address,
        Arc::clone(&health),
        metrics.registry.clone(),
        admin_security::AdminSecurity::from_args(&args.admin, client.clone())?,
    )
    .await
    .with_context(|| format!("cannot listen on {}", args.admin.admin_address))?;
    tracing::info!(%address, "admin endpoint listening");
    // For scripts and the e2e harness, which ask for port 0 and read the one chosen.
    println!("admin-listen {address}");
    tokio::spawn(admin);

    let settings = Settings {
        resync_poll_interval: args.resync_poll_interval,
        info_refresh: args.info_refresh,
    };
    let ctx = Arc::new(Context::new(client.clone(), drivers, metrics, settings));
    let ended = lifecycle::run(
        client,
        &args.leader,
        fence,
        FIELD_MANAGER,
        Arc::clone(&health),
        signal,
        |stop| async move {
            // Both controllers and the VolSync pairs' metrics stop together; each controller
            // finishes its in-flight reconciles.
            let stop = futures::FutureExt::shared(stop);
            futures::join!(
                controller::run(
                    Arc::clone(&ctx),
                    args.watch_namespace.as_deref(),
                    args.concurrency,
                    Arc::clone(&health),
                    stop.clone(),
                ),
                group::controller::run(
                    Arc::clone(&ctx),
                    args.watch_namespace.as_deref(),
                    args.concurrency,
                    stop.clone(),
                ),
                volsync_pairs::run(
                    ctx.client.clone(),
                    ctx.metrics.clone(),
                    args.watch_namespace.as_deref(),
                    stop,
                ),
            );
        },
    )
    .await;
    if ended == lifecycle::Ended::LostLeadership {
        anyhow::bail!("lost leadership");
    }
    tracing::info!("stopped");
    Ok(())
}
