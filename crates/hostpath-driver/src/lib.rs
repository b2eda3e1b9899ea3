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
pub mod csi;
pub mod faults;
pub mod groups;
pub mod grpc_tls;
pub mod parameters;
pub mod peer;
pub mod peer_certs;
pub mod peer_link;
pub mod service;
pub mod site;
pub mod store;
pub mod transfer;
pub mod tree;
pub mod wire_check;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lifeline_csi_client::Endpoint;
use lifeline_csi_client::server::{
    ControllerServer, CsiControllerServer, CsiIdentityServer, IdentityServer, VolumeGroupServer,
};
use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinSet;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};

use crate::faults::Faults;
use crate::peer_link::PeerLink;
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
    /// `ca.crt`, `tls.crt` and `tls.key` for mutual TLS with the peer; without it the peer
    /// link is plain TCP, allowed only on loopback.
    pub peer_tls_dir: Option<PathBuf>,
    pub default_sync_interval: Duration,
    /// `tls.crt` and `tls.key` for an `https://` endpoint.
    pub endpoint_tls_dir: Option<PathBuf>,
    /// Every request's secrets must hold this key with this value (the csi-addons secrets a
    /// class names): the reference for a driver that checks credentials.
    pub required_secret: Option<(String, String)>,
    pub admin_listen: Option<String>,
    pub faults: Arc<Faults>,
}

impl Config {
    /// One site with no peer, serving `endpoint` from `root`: loopback peer port, plain link,
    /// no secret check, no admin endpoint, no faults, and syncs only when asked (an hour's
    /// interval). What tests and single-site uses start from, changing what they need.
    pub fn lone(driver_name: &str, endpoint: Endpoint, root: PathBuf) -> Self {
        Self {
            driver_name: driver_name.to_owned(),
            endpoint,
            root,
            peer_listen: "127.0.0.1:0".into(),
            peer: None,
            peer_tls_dir: None,
            default_sync_interval: Duration::from_secs(3600),
            endpoint_tls_dir: None,
            required_secret: None,
            admin_listen: None,
            faults: Arc::new(Faults::default()),
        }
    }
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

/// Peer connections served at once; more wait in the listen backlog.
const PEER_CONNECTIONS: usize = 64;

pub async fn start(config: Config) -> anyhow::Result<Running> {
    let link = match &config.peer_tls_dir {
        Some(dir) => PeerLink::tls(dir)?,
        None => PeerLink::plain(&config.peer_listen)?,
    };
    let store = Store::open(&config.root)?;
    let site = Arc::new(Site::new(
        store,
        Arc::clone(&config.faults),
        config.peer.clone(),
        link.clone(),
        config.default_sync_interval,
    ));
    let mut tasks = JoinSet::new();

    let peer_listener = TcpListener::bind(&config.peer_listen).await?;
    let peer_address = peer_listener.local_addr()?;
    tasks.spawn(serve_peers(peer_listener, link, Arc::clone(&site)));

    let s = Arc::clone(&site);
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            s.sync_due();
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
        required_secret: config.required_secret.clone(),
    });
    let csi_service = Arc::new(csi::CsiService {
        site: Arc::clone(&site),
        driver_name: config.driver_name.clone(),
    });
    let router = tonic::transport::Server::builder()
        .add_service(CsiIdentityServer::from_arc(Arc::clone(&csi_service)))
        .add_service(CsiControllerServer::from_arc(csi_service))
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
        Endpoint::Tls(address) => {
            let Some(dir) = &config.endpoint_tls_dir else {
                anyhow::bail!(
                    "an https:// endpoint needs --endpoint-tls-dir (tls.crt and tls.key)"
                );
            };
            let incoming =
                grpc_tls::incoming(TcpListener::bind(address).await?, grpc_tls::acceptor(dir)?);
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

/// Accepts the peer's connections: at most [`PEER_CONNECTIONS`] served at once, each admitted
/// by [`PeerLink::accept`] (the TLS handshake) before a message is read, and accept errors
/// (out of file descriptors) backed off instead of spun on.
async fn serve_peers(listener: TcpListener, link: PeerLink, site: Arc<Site>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(PEER_CONNECTIONS));
    let mut backoff = Duration::from_millis(50);
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (tcp, from) = match listener.accept().await {
            Ok(accepted) => {
                backoff = Duration::from_millis(50);
                accepted
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting a peer connection failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let (site, link) = (Arc::clone(&site), link.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let stream = match link.accept(tcp).await {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::warn!(%from, error = %e, "refused a peer connection");
                    return;
                }
            };
            if let Err(e) = site.serve_peer(stream).await {
                tracing::warn!(%from, error = %e, "peer connection failed");
            }
        });
    }
}
