//! `lifeline-hostpath-driver`: one site of the reference replication driver.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use lifeline_csi_client::Endpoint;
use lifeline_hostpath_driver::faults::{Faults, parse_code};
use lifeline_hostpath_driver::{Config, start};

/// Reference csi-addons replication driver: volumes are directories under --root, and two
/// instances (two sites, each pointing --peer at the other) replicate them over TCP.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Driver name reported by GetIdentity; VolumeReplicationClass.spec.provisioner must match.
    #[arg(long, env = "DRIVER_NAME", default_value = "hostpath.lifeline.dev")]
    driver_name: String,
    /// Where to serve the csi-addons gRPC services: unix:///path.sock (mode 0600),
    /// tcp://host:port, or https://host:port (with --endpoint-tls-dir).
    #[arg(long, env = "CSI_ENDPOINT")]
    endpoint: Endpoint,
    /// tls.crt and tls.key for an https:// --endpoint.
    #[arg(long, env = "ENDPOINT_TLS_DIR")]
    endpoint_tls_dir: Option<std::path::PathBuf>,
    /// This site's data: volumes/<id>/ are the volumes, state/ the replication state.
    #[arg(long, env = "DRIVER_ROOT")]
    root: std::path::PathBuf,
    /// host:port where this site accepts its peer's connections.
    #[arg(long, env = "PEER_LISTEN", default_value = "127.0.0.1:0")]
    peer_listen: String,
    /// The peer site's --peer-listen address, as tcp://host:port.
    #[arg(long, env = "PEER")]
    peer: Option<String>,
    /// Directory with ca.crt, tls.crt and tls.key (a mounted kubernetes.io/tls Secret with
    /// ca.crt): the peer link is mutual TLS, and only a peer with a certificate from that CA
    /// gets in. Without it the link is plain TCP and --peer-listen must be loopback.
    #[arg(long, env = "PEER_TLS_DIR")]
    peer_tls_dir: Option<std::path::PathBuf>,
    /// How often a primary ships when its class sets neither schedulingInterval nor
    /// lifeline.dev/sync-interval-seconds.
    #[arg(long, env = "SYNC_INTERVAL_SECONDS", default_value_t = 60)]
    sync_interval_seconds: u64,
    /// Refuse (UNAUTHENTICATED) every request whose secrets lack this key or whose value for
    /// it is not SECRET_VALUE_REQUIRED (set that from a Secret; never on the command line).
    #[arg(long, env = "SECRET_KEY_REQUIRED")]
    secret_key_required: Option<String>,
    /// host:port for the fault-injection admin endpoint (off unless set).
    #[arg(long, env = "ADMIN_LISTEN")]
    admin_listen: Option<String>,
    /// Added latency, METHOD=MILLISECONDS (METHOD `*` for every RPC); repeatable.
    #[arg(long = "fault-latency", value_name = "METHOD=MS")]
    fault_latency: Vec<String>,
    /// Fail the next N calls of METHOD with a gRPC code, METHOD=CODE:N; repeatable.
    #[arg(long = "fault-fail", value_name = "METHOD=CODE:N")]
    fault_fail: Vec<String>,
    /// Start with the link to the peer severed.
    #[arg(long)]
    fault_sever_link: bool,
    /// Log format: text or json.
    #[arg(long, env = "LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

fn faults(args: &Args) -> anyhow::Result<Faults> {
    let faults = Faults::default();
    for spec in &args.fault_latency {
        let (method, ms) = spec
            .split_once('=')
            .context("--fault-latency takes METHOD=MS")?;
        faults.set_latency(
            method,
            Duration::from_millis(ms.parse().context("--fault-latency: MS must be a number")?),
        );
    }
    for spec in &args.fault_fail {
        let (method, rest) = spec
            .split_once('=')
            .context("--fault-fail takes METHOD=CODE:N")?;
        let (code, count) = rest
            .split_once(':')
            .context("--fault-fail takes METHOD=CODE:N")?;
        let code =
            parse_code(code).with_context(|| format!("--fault-fail: unknown gRPC code {code}"))?;
        faults.fail_next(
            method,
            code,
            count.parse().context("--fault-fail: N must be a number")?,
        );
    }
    faults.sever(args.fault_sever_link);
    Ok(faults)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if args.log_format == "json" {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let peer = match &args.peer {
        Some(p) => Some(
            p.strip_prefix("tcp://")
                .with_context(|| format!("--peer {p:?} must be tcp://host:port"))?
                .to_owned(),
        ),
        None => None,
    };
    let required_secret = match (
        &args.secret_key_required,
        std::env::var("SECRET_VALUE_REQUIRED"),
    ) {
        (Some(key), Ok(value)) if !value.is_empty() => Some((key.clone(), value)),
        (Some(key), _) => anyhow::bail!(
            "--secret-key-required {key} needs the expected value in the environment variable \
             SECRET_VALUE_REQUIRED (from a Secret): a key alone proves nothing"
        ),
        (None, _) => None,
    };
    let config = Config {
        driver_name: args.driver_name.clone(),
        endpoint: args.endpoint.clone(),
        root: args.root.clone(),
        peer_listen: args.peer_listen.clone(),
        peer,
        peer_tls_dir: args.peer_tls_dir.clone(),
        default_sync_interval: Duration::from_secs(args.sync_interval_seconds),
        required_secret,
        endpoint_tls_dir: args.endpoint_tls_dir.clone(),
        admin_listen: args.admin_listen.clone(),
        faults: Arc::new(faults(&args)?),
    };
    // Listen for SIGTERM (what the kubelet sends) before announcing readiness, so a stop
    // that follows the announcement at once is still graceful.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let running = start(config).await?;
    // The e2e harness reads these lines to find the ports it asked the OS to choose.
    println!("peer-listen {}", running.peer_address);
    if let Some(admin) = running.admin_address {
        println!("admin-listen {admin}");
    }
    tokio::select! {
        _ = terminate.recv() => {}
        result = tokio::signal::ctrl_c() => result?,
    }
    tracing::info!("stopping");
    running.stop().await;
    Ok(())
}
