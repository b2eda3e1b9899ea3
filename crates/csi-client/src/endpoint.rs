//! Where a driver listens: `unix:///path/to.sock`, `tcp://host:port` or `http://host:port`
//! (plain HTTP/2), or `https://host:port` (TLS: what central mode should use, since the class's
//! secrets travel with every call).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use std::sync::Arc;

use hyper_util::rt::TokioIo;
use tokio_rustls::rustls::ClientConfig;
use tonic::transport::{Channel, Uri};

use crate::CsiClient;

/// A parsed driver endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A Unix socket (the sidecar deployment, next to the driver).
    Unix(PathBuf),
    /// `host:port` over plain-text HTTP/2.
    Tcp(String),
    /// `host:port` over TLS (the central deployment): the driver's certificate is checked
    /// against a CA the caller gives ([`crate::tls::client_config`]).
    Tls(String),
}

/// An endpoint string that is not one of the accepted forms.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid driver endpoint {endpoint:?}: {reason}; expected unix:///path/to.sock, tcp://host:port, http://host:port or https://host:port"
)]
pub struct EndpointError {
    pub endpoint: String,
    pub reason: &'static str,
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| EndpointError {
            endpoint: s.to_owned(),
            reason,
        };
        if let Some(path) = s
            .strip_prefix("unix://")
            .or_else(|| s.strip_prefix("unix:"))
        {
            if !path.starts_with('/') {
                return Err(err("the socket path must be absolute"));
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        let (tls, rest) = match s.strip_prefix("https://") {
            Some(rest) => (true, Some(rest)),
            None => (
                false,
                s.strip_prefix("tcp://")
                    .or_else(|| s.strip_prefix("http://")),
            ),
        };
        let authority = rest
            .ok_or_else(|| err("unknown scheme"))?
            .trim_end_matches('/');
        let Some((host, port)) = authority.rsplit_once(':') else {
            return Err(err("a port is required"));
        };
        if host.is_empty() || authority.contains('/') {
            return Err(err("expected host:port"));
        }
        if port.parse::<u16>().is_err() {
            return Err(err("the port must be a number from 0 to 65535"));
        }
        // What the channel will be built from must parse now, not panic at start.
        if format!("http://{authority}").parse::<Uri>().is_err() {
            return Err(err(
                "expected host:port (the host is not a valid host name or address)",
            ));
        }
        Ok(if tls {
            Endpoint::Tls(authority.to_owned())
        } else {
            Endpoint::Tcp(authority.to_owned())
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
            Endpoint::Tcp(authority) => write!(f, "tcp://{authority}"),
            Endpoint::Tls(authority) => write!(f, "https://{authority}"),
        }
    }
}

impl Endpoint {
    /// A lazy channel: nothing is dialled until the first call, and a broken connection (the
    /// driver restarted) is re-dialled on the next call.
    pub fn channel(&self) -> Channel {
        self.channel_with(None)
    }

    /// [`Endpoint::channel`], with the TLS settings an `https://` endpoint is dialled with
    /// (without them every call to it fails, saying so).
    pub fn channel_with(&self, tls: Option<Arc<ClientConfig>>) -> Channel {
        match self {
            Endpoint::Tls(authority) => {
                let authority = authority.clone();
                Channel::builder(Uri::from_static("http://csi-addons.tls"))
                    .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                        let (authority, tls) = (authority.clone(), tls.clone());
                        async move {
                            let Some(tls) = tls else {
                                return Err(std::io::Error::other(
                                    "an https:// driver endpoint needs the CA that signed the driver's certificate (--driver-ca-file)",
                                ));
                            };
                            crate::tls::dial(&authority, tls).await.map(TokioIo::new)
                        }
                    }))
            }
            Endpoint::Tcp(authority) => {
                // Checked when parsed; a value built by hand that does not parse is dialled as
                // nothing (every call fails UNAVAILABLE) rather than panicking.
                let uri = format!("http://{authority}")
                    .parse()
                    .unwrap_or_else(|_| Uri::from_static("http://invalid.endpoint.invalid:1"));
                Channel::builder(uri).connect_lazy()
            }
            Endpoint::Unix(path) => {
                let path = path.clone();
                // The URI is required by tonic but unused: the connector dials the socket.
                Channel::builder(Uri::from_static("http://csi-addons.sock"))
                    .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                        let path = path.clone();
                        async move {
                            tokio::net::UnixStream::connect(path)
                                .await
                                .map(TokioIo::new)
                        }
                    }))
            }
        }
    }
}

/// A client for the driver at `endpoint` (see [`Endpoint`] for the forms). Lazy: an
/// unreachable driver shows up as an UNAVAILABLE error on the first call, not here.
pub fn connect(endpoint: &str) -> Result<CsiClient, EndpointError> {
    let endpoint: Endpoint = endpoint.parse()?;
    Ok(CsiClient::new(endpoint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_accepted_forms() {
        assert_eq!(
            "unix:///csi/csi-addons.sock".parse(),
            Ok(Endpoint::Unix("/csi/csi-addons.sock".into()))
        );
        assert_eq!(
            "unix:/tmp/a.sock".parse(),
            Ok(Endpoint::Unix("/tmp/a.sock".into()))
        );
        assert_eq!(
            "tcp://10.0.0.1:9070".parse(),
            Ok(Endpoint::Tcp("10.0.0.1:9070".into()))
        );
        assert_eq!(
            "http://driver.ns.svc:9070/".parse(),
            Ok(Endpoint::Tcp("driver.ns.svc:9070".into()))
        );
        assert_eq!(
            "tcp://[::1]:9070".parse(),
            Ok(Endpoint::Tcp("[::1]:9070".into()))
        );
        assert_eq!(
            "https://driver.ns.svc:9070".parse(),
            Ok(Endpoint::Tls("driver.ns.svc:9070".into()))
        );
    }

    #[test]
    fn rejects_everything_else_with_a_reason() {
        for (input, reason) in [
            ("/csi/sock", "unknown scheme"),
            ("ftp://host:1", "unknown scheme"),
            ("unix://relative.sock", "the socket path must be absolute"),
            ("tcp://host", "a port is required"),
            (
                "tcp://host:http",
                "the port must be a number from 0 to 65535",
            ),
            ("tcp://:9070", "expected host:port"),
            ("tcp://host:1/path", "expected host:port"),
            (
                "tcp://bad host:1",
                "expected host:port (the host is not a valid host name or address)",
            ),
        ] {
            let err = input.parse::<Endpoint>().unwrap_err();
            assert_eq!(err.reason, reason, "{input}");
            assert!(err.to_string().contains("unix:///path/to.sock"));
        }
    }

    proptest::proptest! {
        /// Whatever the flag or the chart value says, parsing either refuses with a reason or
        /// gives an endpoint whose channel can be built (inside a runtime, as at start).
        #[test]
        fn any_string_parses_or_is_refused_never_panics(s in "(tcp://|http://|unix:|unix://)?\\PC{0,40}") {
            if let Ok(endpoint) = s.parse::<Endpoint>() {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async { drop(endpoint.channel()) });
            }
        }
    }
}
