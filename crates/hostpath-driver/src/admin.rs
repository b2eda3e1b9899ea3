//! A small HTTP endpoint for tests and demos to inject faults and force syncs.
//!
//! `POST /link/sever`, `POST /link/restore`, `POST /faults/latency?method=M&ms=N`,
//! `POST /faults/fail?method=M&code=UNAVAILABLE&count=N`, `POST /faults/interrupt-sync?bytes=N`,
//! `POST /faults/clear`, `POST /sync?volume=V`, `GET /healthz`. Method `*` means every RPC.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::faults::parse_code;
use crate::site::Site;

pub async fn serve(listener: TcpListener, site: Arc<Site>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let site = Arc::clone(&site);
        tokio::spawn(async move {
            if let Err(e) = handle(stream, &site).await {
                tracing::debug!(error = %e, "admin request failed");
            }
        });
    }
}

async fn handle(mut stream: TcpStream, site: &Site) -> std::io::Result<()> {
    let mut buf = vec![0; 4096];
    let n = stream.read(&mut buf).await?;
    let request = String::from_utf8_lossy(&buf[..n]);
    let line = request.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query: HashMap<&str, &str> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let (status, body) = route(site, method, path, &query).await;
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await
}

async fn route(
    site: &Site,
    method: &str,
    path: &str,
    q: &HashMap<&str, &str>,
) -> (&'static str, String) {
    let faults = &site.faults;
    let bad = |what: &str| ("400 Bad Request", format!("{what}\n"));
    match (method, path) {
        ("GET", "/healthz") => ("200 OK", "ok\n".into()),
        ("POST", "/link/sever") => {
            faults.sever(true);
            ("200 OK", "link severed\n".into())
        }
        ("POST", "/link/restore") => {
            faults.sever(false);
            ("200 OK", "link restored\n".into())
        }
        ("POST", "/faults/clear") => {
            faults.clear();
            ("200 OK", "faults cleared\n".into())
        }
        ("POST", "/faults/latency") => {
            match (q.get("method"), q.get("ms").and_then(|v| v.parse().ok())) {
                (Some(m), Some(ms)) => {
                    faults.set_latency(m, Duration::from_millis(ms));
                    ("200 OK", format!("{m}: +{ms}ms\n"))
                }
                _ => bad("need method=NAME and ms=N"),
            }
        }
        ("POST", "/faults/fail") => match (
            q.get("method"),
            q.get("code").and_then(|c| parse_code(c)),
            q.get("count").and_then(|v| v.parse().ok()),
        ) {
            (Some(m), Some(code), Some(count)) => {
                faults.fail_next(m, code, count);
                (
                    "200 OK",
                    format!("{m}: next {count} calls fail with {code:?}\n"),
                )
            }
            _ => bad("need method=NAME, code=GRPC_CODE and count=N"),
        },
        ("POST", "/faults/interrupt-sync") => match q.get("bytes").and_then(|v| v.parse().ok()) {
            Some(bytes) => {
                faults.interrupt_sync_after(Some(bytes));
                ("200 OK", format!("next sync stops after {bytes} bytes\n"))
            }
            None => bad("need bytes=N"),
        },
        ("POST", "/sync") => match q.get("volume") {
            Some(volume) => match site.sync_now(volume).await {
                Ok(bytes) => ("200 OK", format!("synced {bytes} bytes\n")),
                Err(e) => ("409 Conflict", format!("{e}\n")),
            },
            None => bad("need volume=ID"),
        },
        _ => ("404 Not Found", "unknown route\n".into()),
    }
}
