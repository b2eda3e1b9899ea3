//! An in-memory Kubernetes API server on loopback HTTP, for the `local` e2e backend.
//!
//! One generic store serves every kind: the built-in kinds of [`types::builtins`] and the
//! kinds registered by CustomResourceDefinition objects (our generated CRDs). See
//! `e2e/README.md` for where it is knowingly simpler than Kubernetes.

mod discovery;
mod error;
mod events;
mod fields;
mod http;
mod logs;
mod openapi;
mod openapi_v2;
mod ops;
mod schema;
mod selectors;
mod store;
mod table;
mod types;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use error::ApiError;
pub use http::Access;
pub use schema::{Cause, Schema};
pub use selectors::Selector;

/// Options of a local API server.
#[derive(Clone, Debug)]
pub struct Options {
    /// How many changes are kept for watches to resume from; older versions get 410 Gone.
    pub history: usize,
    /// How often a watch that allows bookmarks gets one.
    pub bookmark_interval: Duration,
    /// The node's container log directory served as `pods/log`; `None`: no kubelet (every log
    /// request is refused, as for a Pod no node runs).
    pub pod_logs: Option<std::path::PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            history: 10_000,
            bookmark_interval: Duration::from_secs(1),
            pod_logs: None,
        }
    }
}

/// A running local API server. Stops when dropped.
pub struct LocalApiServer {
    address: SocketAddr,
    task: JoinHandle<()>,
}

impl LocalApiServer {
    /// Starts serving on a free loopback port, with the `default` namespace in place.
    pub async fn start(options: Options) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(http::Shared {
            store: Mutex::new(store::Store::new(options.history)),
            address: address.to_string(),
            bookmark_interval: options.bookmark_interval,
            writes: Mutex::default(),
            reads: Mutex::default(),
            access: Mutex::default(),
            pod_logs: options.pod_logs.clone(),
        });
        {
            let mut store = shared.store.lock().expect("store lock");
            let namespaces = store
                .registry
                .get("", "v1", "namespaces")
                .cloned()
                .expect("builtin");
            for name in ["default", "kube-system"] {
                ops::create(
                    &mut store,
                    &namespaces,
                    None,
                    serde_json::json!({"metadata": {"name": name}}),
                    "local-apiserver",
                )
                .expect("fresh store");
            }
        }
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let shared = Arc::clone(&shared);
                        async move {
                            Ok::<_, std::convert::Infallible>(http::handle(shared, request).await)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { address, task })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for LocalApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
