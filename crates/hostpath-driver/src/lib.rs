//! Lifeline's reference csi-addons replication driver.
//!
//! A volume is a directory `<root>/volumes/<id>/`. Each running instance is one site and knows
//! its peer site; a primary ships its volumes to the peer every interval as point-in-time
//! copies that the peer swaps in atomically. Read in this order: `service.rs` (the RPCs),
//! `site.rs` (the semantics), `transfer.rs`, `tree.rs` and `peer.rs` (moving bytes), `parameters.rs`, `store.rs` (state).
//! Volume groups (`groups.rs`) replicate as one unit: every member captured at one instant,
//! shipped as one sync, swapped in together at the peer.

pub mod admin;
pub mod authority;
pub mod faults;
pub mod groups;
pub mod parameters;
pub mod peer;
pub mod service;
pub mod site;
pub mod store;
pub mod transfer;
pub mod tree;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lifeline_csi_client::Endpoint;
use lifeline_csi_client::server::{ControllerServer, IdentityServer, VolumeGroupServer};
use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinSet;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};

use crate::faults::Faults;
use crate::service::Service;
use crate::site::Site;
use crate::store::Store;

/// Everything one site needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub driver_name: String,
    pub endpoint: Endpoint,
    pub root: PathBuf,
    /// `host:port` where this site listens for its peer.
    pub peer_listen: String,
    /// `host:port` of the peer site's `peer_listen`.
    pub peer: Option<String>,
    pub default_sync_interval: Duration,
    pub secret_key_required: Option<String>,
    pub admin_listen: Option<String>,
    pub faults: Arc<Faults>,
}

/// A running site.
pub struct Running {
    pub site: Arc<Site>,
    /// The address the peer listener is bound to (useful with port 0).
    pub peer_address: std::net::SocketAddr,
    pub admin_address: Option<std::net::SocketAddr>,
    pub endpoint: Endpoint,
    tasks: JoinSet<()>,
    grpc: tokio::task::JoinHandle<()>,
    stop_grpc: tokio::sync::oneshot::Sender<()>,
}

impl Running {
    /// Stops serving (the socket is removed), as a crashed or stopped driver would.
    pub async fn stop(mut self) {
        // Closes open client connections too (aborting the server task alone would leave
        // them served by their own tasks).
        let _ = self.stop_grpc.send(());
        let _ = self.grpc.await;
        self.tasks.shutdown().await;
        if let Endpoint::Unix(path) = &self.endpoint {
            let _ = std::fs::remove_file(path);
        }
    }
}

pub async fn start(config: Config) -> anyhow::Result<Running> {
    let store = Store::open(&config.root)?;
    let site = Arc::new(Site::new(
        store,
        Arc::clone(&config.faults),
        config.peer.clone(),
        config.default_sync_interval,
    ));
    let mut tasks = JoinSet::new();

    let peer_listener = TcpListener::bind(&config.peer_listen).await?;
    let peer_address = peer_listener.local_addr()?;
    let s = Arc::clone(&site);
    tasks.spawn(async move {
        loop {
            let Ok((stream, _)) = peer_listener.accept().await else {
                continue;
            };
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                if let Err(e) = s.serve_peer(stream).await {
                    tracing::warn!(error = %e, "peer connection failed");
                }
            });
        }
    });

    let s = Arc::clone(&site);
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            s.sync_due().await;
        }
    });

    let admin_address = match &config.admin_listen {
        Some(address) => {
            let listener = TcpListener::bind(address).await?;
            let local = listener.local_addr()?;
            tasks.spawn(admin::serve(listener, Arc::clone(&site)));
            Some(local)
        }
        None => None,
    };

    let service = Arc::new(Service {
        site: Arc::clone(&site),
        driver_name: config.driver_name.clone(),
        secret_key_required: config.secret_key_required.clone(),
    });
    let router = tonic::transport::Server::builder()
        .add_service(ControllerServer::from_arc(Arc::clone(&service)))
        .add_service(VolumeGroupServer::from_arc(Arc::clone(&service)))
        .add_service(IdentityServer::from_arc(service));
    let (stop_grpc, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = async {
        let _ = stopped.await;
    };
    let grpc = match &config.endpoint {
        Endpoint::Unix(path) => {
            let _ = std::fs::remove_file(path);
            let listener = UnixListener::bind(path)?;
            // Only the owner (the sidecar running as the same user) may talk to the driver.
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            // Every conforming client, whatever :authority it sends on a Unix socket.
            let incoming = tokio_stream::StreamExt::map(UnixListenerStream::new(listener), |s| {
                s.map(authority::AuthorityFix::new)
            });
            tokio::spawn(async move {
                if let Err(e) = router.serve_with_incoming_shutdown(incoming, stopped).await {
                    tracing::error!(error = %e, "gRPC server failed");
                }
            })
        }
        Endpoint::Tcp(address) => {
            let incoming = TcpListenerStream::new(TcpListener::bind(address).await?);
            tokio::spawn(async move {
                if let Err(e) = router.serve_with_incoming_shutdown(incoming, stopped).await {
                    tracing::error!(error = %e, "gRPC server failed");
                }
            })
        }
    };
    tracing::info!(endpoint = %config.endpoint, %peer_address, "hostpath driver serving");
    Ok(Running {
        site,
        peer_address,
        admin_address,
        endpoint: config.endpoint,
        tasks,
        grpc,
        stop_grpc,
    })
}
