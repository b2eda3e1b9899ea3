//! How the two sites reach each other: mutual TLS, or plain TCP on loopback only.
//!
//! The peer port moves whole volumes and changes roles, so a site talks only to a peer that
//! proves itself with a certificate from the sites' own CA; a client without one is refused in
//! the handshake, before any message is read. Both sides present a certificate whose subject
//! alternative names include [`PEER_SERVER_NAME`]; the address dialled does not matter, so the
//! sites can sit behind any load balancer or NAT.
//!
//! The directory holds what a `kubernetes.io/tls` Secret with a `ca.crt` key holds when mounted:
//! `ca.crt` (the sites' CA), `tls.crt` (this site's chain) and `tls.key`.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::peer::{CONNECT_TIMEOUT, Stream};

/// The name every site's certificate carries and every site checks.
pub const PEER_SERVER_NAME: &str = "lifeline-hostpath-peer";
/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the peer link could not be set up; each names the file or flag to fix.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: {problem}")]
    Pem { path: PathBuf, problem: String },
    #[error("the peer TLS configuration in {dir} is unusable: {source}")]
    Tls { dir: PathBuf, source: rustls::Error },
    #[error(
        "--peer-listen {listen} is not a loopback address and the peer link has no TLS: set \
         --peer-tls-dir to a directory with ca.crt, tls.crt and tls.key (the peer port moves \
         whole volumes; without mutual TLS anyone who reaches it could read or overwrite them)"
    )]
    PlainOffLoopback { listen: String },
    #[error("--peer-listen {listen:?} is not host:port: {problem}")]
    Listen { listen: String, problem: String },
}

/// The link to the peer: how to dial it and how to admit its connections.
#[derive(Clone)]
pub enum PeerLink {
    /// Plain TCP, allowed only when this site listens on loopback (one machine, tests).
    Plain,
    Tls {
        acceptor: TlsAcceptor,
        connector: TlsConnector,
    },
}

impl std::fmt::Debug for PeerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Plain => "PeerLink::Plain",
            Self::Tls { .. } => "PeerLink::Tls",
        })
    }
}

impl PeerLink {
    /// Mutual TLS from `dir`'s `ca.crt`, `tls.crt` and `tls.key`.
    pub fn tls(dir: &Path) -> Result<Self, LinkError> {
        let ca = certificates(&dir.join("ca.crt"))?;
        let chain = certificates(&dir.join("tls.crt"))?;
        let key_path = dir.join("tls.key");
        let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| LinkError::Pem {
            path: key_path.clone(),
            problem: format!("no usable private key ({e})"),
        })?;
        let tls = |source| LinkError::Tls {
            dir: dir.to_owned(),
            source,
        };
        let mut roots = RootCertStore::empty();
        for cert in ca {
            roots.add(cert).map_err(tls)?;
        }
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| LinkError::Tls {
                dir: dir.to_owned(),
                source: rustls::Error::General(e.to_string()),
            })?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(tls)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(tls)?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(tls)?;
        Ok(Self::Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
        })
    }

    /// Plain TCP, refused unless `listen` is a loopback address.
    pub fn plain(listen: &str) -> Result<Self, LinkError> {
        let address = listen_address(listen)?;
        if !address.ip().is_loopback() {
            return Err(LinkError::PlainOffLoopback {
                listen: listen.to_owned(),
            });
        }
        Ok(Self::Plain)
    }

    /// Dials the peer at `address` (host:port).
    pub async fn connect(&self, address: &str) -> io::Result<Stream> {
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, "connecting to the peer timed out")
            })??;
        tcp.set_nodelay(true)?;
        match self {
            Self::Plain => Ok(Box::new(tcp)),
            Self::Tls { connector, .. } => {
                let name = ServerName::try_from(PEER_SERVER_NAME).expect("a valid DNS name");
                let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp))
                    .await
                    .map_err(|_| handshake_timed_out())??;
                Ok(Box::new(tls))
            }
        }
    }

    /// Admits a connection from the peer: for TLS, only once it has shown a certificate of the
    /// sites' CA.
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<Stream> {
        tcp.set_nodelay(true)?;
        match self {
            Self::Plain => Ok(Box::new(tcp)),
            Self::Tls { acceptor, .. } => {
                let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
                    .await
                    .map_err(|_| handshake_timed_out())??;
                Ok(Box::new(tls))
            }
        }
    }
}

fn handshake_timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the TLS handshake with the peer timed out",
    )
}

fn listen_address(listen: &str) -> Result<SocketAddr, LinkError> {
    use std::net::ToSocketAddrs;
    let problem = |problem: String| LinkError::Listen {
        listen: listen.to_owned(),
        problem,
    };
    let mut addresses = listen
        .to_socket_addrs()
        .map_err(|e| problem(e.to_string()))?;
    let first = addresses
        .next()
        .ok_or_else(|| problem("it resolves to no address".into()))?;
    // A name that resolves to loopback and something else is not loopback-only.
    if addresses.any(|a| a.ip().is_loopback() != first.ip().is_loopback()) {
        return Ok(SocketAddr::new(
            std::net::Ipv4Addr::UNSPECIFIED.into(),
            first.port(),
        ));
    }
    Ok(first)
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, LinkError> {
    let read = std::fs::read(path).map_err(|source| LinkError::Read {
        path: path.to_owned(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&read)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| LinkError::Pem {
            path: path.to_owned(),
            problem: format!("not PEM certificates ({e})"),
        })?;
    if certs.is_empty() {
        return Err(LinkError::Pem {
            path: path.to_owned(),
            problem: "holds no certificate".into(),
        });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_tcp_is_for_loopback_only() {
        assert!(PeerLink::plain("127.0.0.1:0").is_ok());
        assert!(PeerLink::plain("[::1]:7001").is_ok());
        for open in ["0.0.0.0:7001", "[::]:7001", "10.1.2.3:7001"] {
            let e = PeerLink::plain(open).unwrap_err().to_string();
            assert!(e.contains("--peer-tls-dir"), "{e}");
        }
        let e = PeerLink::plain("no-port").unwrap_err().to_string();
        assert!(e.contains("not host:port"), "{e}");
    }

    #[test]
    fn a_missing_or_garbled_tls_directory_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = PeerLink::tls(dir.path()).unwrap_err().to_string();
        assert!(e.contains("ca.crt"), "{e}");
        std::fs::write(dir.path().join("ca.crt"), "not pem").unwrap();
        let e = PeerLink::tls(dir.path()).unwrap_err().to_string();
        assert!(e.contains("ca.crt") && e.contains("no certificate"), "{e}");
    }
}
