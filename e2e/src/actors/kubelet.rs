//! The one part of a kubelet the scenarios need while no real one can run here: a Node
//! ([`NODE`]) whose kubelet endpoint serves containers' logs, so that `pods/log` — which the
//! real API server proxies to the Pod's kubelet — reads what the harness's mover wrote to the
//! node's log directory (`<namespace>/<pod>/<container>.log`), as a container runtime would.
//!
//! Knowingly simpler than a kubelet: it serves `/containerLogs/…` only (with `tailLines` and
//! `limitBytes`; `follow`, `sinceSeconds`, `timestamps` and `previous` are ignored), over TLS
//! with a self-signed certificate (kube-apiserver, given no `--kubelet-certificate-authority`,
//! does not verify it) and without authenticating the API server; it runs nothing and reports
//! no Node or Pod status beyond the Node's address and port.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The Node the harness's Pods run on.
pub const NODE: &str = "lifeline-e2e-node";

/// A running kubelet stand-in; stops serving when dropped.
pub struct Kubelet {
    task: JoinHandle<()>,
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Registers [`NODE`] with the kubelet endpoint served here, serving logs from `logs`.
pub async fn start(client: &Client, dir: &Path, logs: PathBuf) -> anyhow::Result<Kubelet> {
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
                    async move { Ok::<_, std::convert::Infallible>(serve(&logs, &request)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let nodes = Api::<Node>::all(client.clone());
    let apply = PatchParams::apply("lifeline-e2e-kubelet").force();
    nodes
        .patch(
            NODE,
            &apply,
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}})),
        )
        .await
        .context("cannot register the kubelet stand-in's Node")?;
    nodes
        .patch_status(
            NODE,
            &apply,
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Node", "status": {
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
            }})),
        )
        .await
        .context("cannot publish the kubelet stand-in's endpoint")?;
    Ok(Kubelet { task })
}

/// A self-signed serving certificate (openssl), as a kubelet makes for itself.
async fn tls_config(dir: &Path) -> anyhow::Result<ServerConfig> {
    let (key, cert) = (dir.join("kubelet.key"), dir.join("kubelet.crt"));
    let status = tokio::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", &format!("/CN={NODE}")])
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
fn serve(logs: &Path, request: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
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
