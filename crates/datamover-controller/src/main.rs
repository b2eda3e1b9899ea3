//! Entry point: flags, logging, admin endpoint, leader election, then both controllers until
//! SIGTERM.

use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use lifeline_datamover_controller::args::ControllerArgs;
use lifeline_datamover_controller::context::{Context, FIELD_MANAGER};
use lifeline_datamover_controller::{controller, velero_controllers};
use lifeline_runtime::{Health, admin, admin_security, lifecycle, logging, shutdown};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = ControllerArgs::parse();
    let signal = shutdown::signal().context("cannot listen for SIGTERM")?;
    logging::init(&args.log).context("invalid --log-level")?;
    let mut settings = args
        .mover
        .settings(args.protected_namespace.clone())
        .map_err(anyhow::Error::msg)?;
    settings.datamover_name = args.velero.name().map_err(anyhow::Error::msg)?;
    let client = lifeline_runtime::client::for_controller(FIELD_MANAGER)
        .await
        .context("cannot configure a Kubernetes client (in-cluster or KUBECONFIG)")?;
    let ctx = Arc::new(Context::new(
        client.clone(),
        settings,
        args.max_concurrent_backups,
        args.max_concurrent_restores,
    ));

    let served = velero_controllers::served(
        &ctx,
        args.velero.velero_uploads,
        args.velero.velero_downloads,
    )
    .await;
    let health = Arc::new(Health::default());
    let (address, admin) = admin::bind(
        args.admin.admin_address,
        Arc::clone(&health),
        ctx.metrics.registry.clone(),
        admin_security::AdminSecurity::from_args(&args.admin, client.clone())?,
    )
    .await
    .with_context(|| format!("cannot listen on {}", args.admin.admin_address))?;
    tracing::info!(%address, "admin endpoint listening");
    println!("admin-listen {address}");
    tokio::spawn(admin);

    // The data mover calls no driver: only the API server, which the Lease itself guards.
    let ended = lifecycle::run(
        client,
        &args.leader,
        lifecycle::fence(&args.leader),
        FIELD_MANAGER,
        Arc::clone(&health),
        signal,
        |stop| controller::run(ctx, 4, served, Arc::clone(&health), stop),
    )
    .await;
    if ended == lifecycle::Ended::LostLeadership {
        anyhow::bail!("lost leadership");
    }
    tracing::info!("stopped");
    Ok(())
}
