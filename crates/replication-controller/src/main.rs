//! Entry point: parse flags, set up logging, admin endpoint and leader election, then run the
//! controller until SIGTERM.

use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use lifeline_replication_controller::{
    Context, ControllerArgs, Drivers, FIELD_MANAGER, Metrics, Settings, controller,
};
use lifeline_runtime::{Health, LeaderElector, admin, logging, shutdown};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = ControllerArgs::parse();
    let signal = shutdown::signal().context("cannot listen for SIGTERM")?;
    logging::init(&args.log).context("invalid --log-level")?;
    let metrics = Metrics::new();
    let drivers = Drivers::from_args(&args.drivers, metrics.rpc_observer())?;
    tracing::info!(mode = ?drivers.mode(), "starting");
    let client = kube::Client::try_default()
        .await
        .context("cannot configure a Kubernetes client (in-cluster or KUBECONFIG)")?;

    let health = Arc::new(Health::default());
    let (address, admin) = admin::bind(
        args.admin.admin_address,
        Arc::clone(&health),
        metrics.registry.clone(),
    )
    .await
    .with_context(|| format!("cannot listen on {}", args.admin.admin_address))?;
    tracing::info!(%address, "admin endpoint listening");
    // For scripts and the e2e harness, which ask for port 0 and read the one chosen.
    println!("admin-listen {address}");
    tokio::spawn(admin);

    let settings = Settings {
        resync_poll_interval: args.resync_poll_interval,
    };
    let ctx = Arc::new(Context::new(client.clone(), drivers, metrics, settings));
    let stop = Arc::new(tokio::sync::Notify::new());
    {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            signal.await;
            stop.notify_waiters();
            stop.notify_one();
        });
    }

    let leadership = if args.leader.leader_elect {
        let namespace = args
            .leader
            .leader_election_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".to_owned());
        let name = args
            .leader
            .leader_election_lease_name
            .clone()
            .unwrap_or_else(|| FIELD_MANAGER.to_owned());
        let elector = LeaderElector::new(
            client,
            &namespace,
            &name,
            &LeaderElector::default_identity(),
            args.leader.lease_duration,
            args.leader.lease_renew_period,
        );
        // A standby is healthy and ready; it just does not write.
        health.set_ready(true);
        tracing::info!(lease = %name, %namespace, identity = elector.identity(), "waiting for leadership");
        tokio::select! {
            leadership = elector.acquire() => Some(leadership),
            _ = stop.notified() => return Ok(()),
        }
    } else {
        None
    };

    let lost = leadership.as_ref().map(|l| l.lost_signal());
    let ended = {
        let stop = Arc::clone(&stop);
        async move {
            match lost {
                Some(lost) => tokio::select! { _ = stop.notified() => {}, _ = lost => {} },
                None => stop.notified().await,
            }
        }
    };
    controller::run(
        ctx,
        args.watch_namespace.as_deref(),
        args.concurrency,
        Arc::clone(&health),
        ended,
    )
    .await;

    match leadership {
        Some(leadership) if leadership.is_lost() => {
            // Exit so the pod restarts as a standby; never keep writing without the Lease.
            health.set_dead();
            anyhow::bail!("lost leadership");
        }
        Some(leadership) => leadership.release().await,
        None => {}
    }
    tracing::info!("stopped");
    Ok(())
}
