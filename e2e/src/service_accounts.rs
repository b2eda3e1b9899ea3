//! ServiceAccount identities for upstream programs the harness runs as their releases deploy
//! them (the benchmark's peers, bound to their own RBAC manifests): the ServiceAccount, a token
//! from the TokenRequest API, a kubeconfig with it, and for a program that reads its in-cluster
//! configuration inside a Pod, a Secret holding what a kubelet projects into
//! `/var/run/secrets/kubernetes.io/serviceaccount` (the kubelet stand-in projects no tokens).

use std::path::PathBuf;

use anyhow::Context;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

use crate::cluster::TestCluster;

/// Where a kubelet mounts a Pod's ServiceAccount token, CA and namespace.
pub const TOKEN_MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// A day: longer than any benchmark run (the default hour is not, at N=10 000).
const TOKEN_SECONDS: i64 = 86_400;

/// A ServiceAccount the harness made, with a token for it.
pub struct Identity {
    pub namespace: String,
    pub name: String,
    /// The user the API server (and so the audit log) sees.
    pub user: String,
    pub token: String,
    pub kubeconfig: PathBuf,
}

/// Creates the ServiceAccount `namespace/name` (or takes the one there) and a token for it.
/// Needs the control plane the harness starts (its kubeconfigs name its serving certificate).
pub async fn identity(
    cluster: &TestCluster,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Identity> {
    let plane = cluster
        .control_plane()
        .context("ServiceAccount identities need the control plane the harness starts")?;
    let accounts = Api::<ServiceAccount>::namespaced(cluster.client(), namespace);
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    match accounts.create(&PostParams::default(), &account).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e).context(format!("cannot create ServiceAccount {name}")),
    }
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(TOKEN_SECONDS),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let token = accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .with_context(|| format!("cannot get a token for ServiceAccount {namespace}/{name}"))?
        .status
        .and_then(|s| s.token)
        .context("the TokenRequest came back without a token")?;
    let kubeconfig = plane.token_kubeconfig(&format!("{namespace}-{name}"), &token)?;
    Ok(Identity {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        user: format!("system:serviceaccount:{namespace}:{name}"),
        token,
        kubeconfig,
    })
}

/// A Secret named `secret` in the identity's namespace with the files a kubelet projects for
/// it (`token`, `ca.crt`, `namespace`), to mount at [`TOKEN_MOUNT`]. With
/// `KUBERNETES_SERVICE_HOST`/`_PORT` naming the API server, a program's in-cluster
/// configuration then works inside the stand-in's Pods.
pub async fn token_secret(
    cluster: &TestCluster,
    identity: &Identity,
    secret: &str,
) -> anyhow::Result<()> {
    let plane = cluster
        .control_plane()
        .context("token Secrets need the control plane the harness starts")?;
    let ca = std::fs::read(plane.server().1)?;
    let data = [
        ("token", identity.token.as_bytes().to_vec()),
        ("ca.crt", ca),
        ("namespace", identity.namespace.as_bytes().to_vec()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), k8s_openapi::ByteString(v)))
    .collect();
    Api::<Secret>::namespaced(cluster.client(), &identity.namespace)
        .create(
            &PostParams::default(),
            &Secret {
                metadata: ObjectMeta {
                    name: Some(secret.to_owned()),
                    ..ObjectMeta::default()
                },
                data: Some(data),
                ..Secret::default()
            },
        )
        .await
        .with_context(|| format!("cannot create the token Secret {secret}"))?;
    Ok(())
}

/// `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT` for the API server (a kubelet sets
/// them to the `kubernetes` Service; without kube-proxy the stand-in's Pods reach the API
/// server where it listens).
pub fn service_env(cluster: &TestCluster) -> anyhow::Result<[(String, String); 2]> {
    let plane = cluster
        .control_plane()
        .context("the API server's address is known on the control plane the harness starts")?;
    let url: http::Uri = plane.server().0.parse()?;
    let host = url.host().context("the API server's URL has no host")?;
    let port = url.port_u16().unwrap_or(443);
    Ok([
        ("KUBERNETES_SERVICE_HOST".to_owned(), host.to_owned()),
        ("KUBERNETES_SERVICE_PORT".to_owned(), port.to_string()),
    ])
}
