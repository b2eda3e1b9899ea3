//! The admin HTTP endpoint: `/healthz` (liveness: the process answers and its controller loop
//! has not died), `/readyz` (readiness: caches synced; true on standbys too, since a standby is a
//! healthy replica) and `/metrics` (Prometheus text format).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;

use crate::admin_security::{AdminSecurity, MetricsAuth, Verdict};

/// Liveness and readiness flags, shared between the controller and the admin endpoint.
#[derive(Debug)]
pub struct Health {
    live: AtomicBool,
    ready: AtomicBool,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            live: AtomicBool::new(true),
            ready: AtomicBool::new(false),
        }
    }
}

impl Health {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Marks the process dead (its controller loop ended unexpectedly) so the kubelet restarts it.
    pub fn set_dead(&self) {
        self.live.store(false, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Relaxed)
    }
}

/// Binds `address`; returns the bound address (port 0 picks a free one) and the serving future.
/// `security` adds HTTPS and token checks on `/metrics` ([`crate::admin_security`]).
pub async fn bind(
    address: SocketAddr,
    health: Arc<Health>,
    registry: Registry,
    security: AdminSecurity,
) -> std::io::Result<(SocketAddr, impl Future<Output = ()>)> {
    let listener = TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    Ok((bound, serve(listener, health, registry, security)))
}

async fn serve(
    listener: TcpListener,
    health: Arc<Health>,
    registry: Registry,
    security: AdminSecurity,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => {
                backoff = Duration::from_millis(50);
                stream
            }
            Err(error) => {
                tracing::warn!(%error, "admin endpoint: accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let health = Arc::clone(&health);
        let registry = registry.clone();
        let security = security.clone();
        tokio::spawn(async move {
            let auth = security.auth.clone();
            let service = service_fn(move |request| {
                let (health, registry, auth) =
                    (Arc::clone(&health), registry.clone(), auth.clone());
                async move {
                    Ok::<_, Infallible>(
                        respond(&request, &health, &registry, auth.as_deref()).await,
                    )
                }
            });
            let served = match &security.tls {
                None => {
                    http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(HANDSHAKE, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(tls)) => {
                            http1::Builder::new()
                                .serve_connection(TokioIo::new(tls), service)
                                .await
                        }
                        _ => return,
                    }
                }
            };
            if let Err(error) = served {
                tracing::debug!(%error, "admin endpoint: connection ended with an error");
            }
        });
    }
}

/// How long a TLS handshake on the admin port may take.
const HANDSHAKE: Duration = Duration::from_secs(10);

async fn respond(
    request: &Request<Incoming>,
    health: &Health,
    registry: &Registry,
    auth: Option<&MetricsAuth>,
) -> Response<Full<Bytes>> {
    if request.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET is served\n");
    }
    if request.uri().path() == "/metrics"
        && let Some(auth) = auth
    {
        let header = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match auth.check(header).await {
            Verdict::Allowed => {}
            Verdict::Unauthenticated(why) => {
                return text(StatusCode::UNAUTHORIZED, &format!("{why}\n"));
            }
            Verdict::Forbidden(why) => return text(StatusCode::FORBIDDEN, &format!("{why}\n")),
        }
    }
    match request.uri().path() {
        "/healthz" if health.is_live() => text(StatusCode::OK, "ok\n"),
        "/healthz" => text(StatusCode::SERVICE_UNAVAILABLE, "controller loop stopped\n"),
        "/readyz" if health.is_ready() => text(StatusCode::OK, "ok\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "caches not synced yet\n"),
        "/metrics" => {
            let mut body = Vec::new();
            let encoder = TextEncoder::new();
            let mut families = registry.gather();
            families.push(ready_family(health.is_ready()));
            match encoder.encode(&families, &mut body) {
                Ok(()) => Response::builder()
                    .header(http::header::CONTENT_TYPE, encoder.format_type())
                    .body(Full::new(Bytes::from(body)))
                    .unwrap_or_default(),
                Err(error) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("cannot encode metrics: {error}\n"),
                ),
            }
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; try /healthz, /readyz or /metrics\n",
        ),
    }
}

/// `lifeline_controller_ready`: what `/readyz` says, for alerts (a controller that never gets
/// ready does nothing, though its process is up).
fn ready_family(ready: bool) -> prometheus::proto::MetricFamily {
    let gauge = prometheus::Gauge::new(
        "lifeline_controller_ready",
        "1 when the controller's caches are synced and it can act (what /readyz says), else 0",
    )
    .expect("valid metric");
    gauge.set(f64::from(u8::from(ready)));
    prometheus::core::Collector::collect(&gauge)
        .pop()
        .expect("a gauge collects one family")
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(address: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn health_readiness_and_metrics_are_separate() {
        let health = Arc::new(Health::default());
        let registry = Registry::new();
        let counter = prometheus::IntCounter::new("lifeline_test_total", "a test counter").unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        counter.inc();
        let (address, server) = bind(
            "127.0.0.1:0".parse().unwrap(),
            Arc::clone(&health),
            registry,
            AdminSecurity::default(),
        )
        .await
        .unwrap();
        tokio::spawn(server);

        assert!(get(address, "/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get(address, "/readyz").await.starts_with("HTTP/1.1 503"));
        assert!(
            get(address, "/metrics")
                .await
                .contains("lifeline_controller_ready 0")
        );
        health.set_ready(true);
        assert!(get(address, "/readyz").await.starts_with("HTTP/1.1 200"));
        let metrics = get(address, "/metrics").await;
        assert!(metrics.contains("lifeline_test_total 1"), "{metrics}");
        assert!(metrics.contains("lifeline_controller_ready 1"), "{metrics}");
        health.set_dead();
        assert!(get(address, "/healthz").await.starts_with("HTTP/1.1 503"));
        assert!(get(address, "/nope").await.starts_with("HTTP/1.1 404"));
    }
}
