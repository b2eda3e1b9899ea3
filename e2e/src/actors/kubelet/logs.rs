//! The kubelet's log endpoint: `pods/log`, which the real API server proxies to the Pod's
//! kubelet, reads what the Pods' containers wrote to the node log directory
//! (`<namespace>/<pod>/<container>.log`).
//!
//! Knowingly simpler than a kubelet: it serves `/containerLogs/…` only (with `tailLines` and
//! `limitBytes`; `follow`, `sinceSeconds`, `timestamps` and `previous` are ignored), over TLS
//! with a self-signed certificate (kube-apiserver, given no `--kubelet-certificate-authority`,
//! does not verify it) and without authenticating the API server.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The log endpoint; stops serving when dropped.
pub struct LogServer {
    task: JoinHandle<()>,
    pub port: u16,
}

impl Drop for LogServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves the logs under `logs` on a loopback port.
pub async fn serve(dir: &Path, logs: PathBuf) -> anyhow::Result<LogServer> {
    let acceptor = TlsAcceptor::from(Arc::new(tls_config(dir).await?));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let logs = Arc::new(logs);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, logs) = (acceptor.clone(), Arc::clone(&logs));
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |request| {
                    let logs = Arc::clone(&logs);
                    async move { Ok::<_, std::convert::Infallible>(serve_one(&logs, &request)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(LogServer { task, port })
}

/// A self-signed serving certificate (openssl), as a kubelet makes for itself.
async fn tls_config(dir: &Path) -> anyhow::Result<ServerConfig> {
    let (key, cert) = (dir.join("kubelet.key"), dir.join("kubelet.crt"));
    let status = tokio::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", &format!("/CN={}", super::NODE)])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .context("cannot run openssl for the kubelet's certificate")?;
    anyhow::ensure!(status.success(), "openssl req failed ({status})");
    let certs = CertificateDer::pem_file_iter(&cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&key)?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    Ok(ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?)
}

/// `GET /containerLogs/{namespace}/{pod}/{container}`: the container's log, or the kubelet's
/// refusal for a container that has not started (no log yet).
fn serve_one(logs: &Path, request: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let respond = |status: StatusCode, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
    };
    let path = request.uri().path();
    let parts: Vec<&str> = path
        .strip_prefix("/containerLogs/")
        .unwrap_or_default()
        .split('/')
        .collect();
    let [namespace, pod, container] = parts[..] else {
        return respond(StatusCode::NOT_FOUND, format!("{path}: not served here"));
    };
    // Names are DNS labels; anything else would reach outside the log directory.
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() <= 253
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && s != "."
            && s != ".."
    };
    if ![namespace, pod, container].into_iter().all(valid) {
        return respond(StatusCode::BAD_REQUEST, format!("{path}: not a valid name"));
    }
    let params: HashMap<String, String> = request
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let number = |key: &str| params.get(key).and_then(|v| v.parse::<usize>().ok());
    let file = logs
        .join(namespace)
        .join(pod)
        .join(format!("{container}.log"));
    let Ok(bytes) = std::fs::read(&file) else {
        return respond(
            StatusCode::BAD_REQUEST,
            format!(
                "container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
            ),
        );
    };
    let text = String::from_utf8_lossy(&bytes);
    respond(
        StatusCode::OK,
        excerpt(&text, number("tailLines"), number("limitBytes")),
    )
}

/// The last `tail` lines of `text`, then at most `limit` bytes of them (cut at a character).
pub fn excerpt(text: &str, tail: Option<usize>, limit: Option<usize>) -> String {
    let mut out: &str = text;
    if let Some(n) = tail {
        // A trailing newline ends the last line rather than starting another.
        let body = text.strip_suffix('\n').unwrap_or(text);
        let start = if n == 0 {
            text.len()
        } else {
            body.rmatch_indices('\n')
                .nth(n - 1)
                .map(|(i, _)| i + 1)
                .unwrap_or(0)
        };
        out = &text[start..];
    }
    let mut out = out.to_owned();
    if let Some(limit) = limit
        && out.len() > limit
    {
        let mut end = limit;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::excerpt;

    #[test]
    fn tail_lines_and_limit_bytes_cut_as_the_kubelet_does() {
        let log = "one\ntwo\nthree\n";
        assert_eq!(excerpt(log, None, None), log);
        assert_eq!(excerpt(log, Some(1), None), "three\n");
        assert_eq!(excerpt(log, Some(2), None), "two\nthree\n");
        assert_eq!(excerpt(log, Some(9), None), log);
        assert_eq!(excerpt(log, Some(0), None), "");
        assert_eq!(excerpt(log, None, Some(5)), "one\nt");
        assert_eq!(excerpt("é", None, Some(1)), "");
    }
}
