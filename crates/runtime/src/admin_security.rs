//! Securing the admin endpoint's `/metrics` the Kubernetes way (as kube-rbac-proxy and
//! controller-runtime do): HTTPS from a mounted certificate, and a bearer token that the API
//! server authenticates (TokenReview) and authorises for `get` on the non-resource URL
//! `/metrics` (SubjectAccessReview). `/healthz` and `/readyz` stay open: the kubelet probes
//! them without a token, and they say nothing but "ok".

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::{Api, Client};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::cli::AdminArgs;

/// How long a token's verdict is reused: a scrape every 30 s costs two API calls a minute at
/// most, and a revoked token stops working within this.
const VERDICT_TTL: Duration = Duration::from_secs(60);
/// Verdicts kept at most (tokens are few: the scrapers').
const CACHE_LIMIT: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum AdminSecurityError {
    #[error(
        "--metrics-auth needs HTTPS (--admin-tls-dir or --admin-self-signed): bearer tokens must not cross the network in clear"
    )]
    AuthWithoutTls,
    #[error("--admin-tls-dir {dir}: {problem}")]
    Tls { dir: PathBuf, problem: String },
    #[error("cannot make the admin endpoint's self-signed certificate: {0}")]
    SelfSigned(String),
}

/// What protects the admin endpoint; the default protects nothing (loopback, tests).
#[derive(Clone, Default)]
pub struct AdminSecurity {
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) auth: Option<Arc<MetricsAuth>>,
}

impl AdminSecurity {
    pub fn from_args(args: &AdminArgs, client: Client) -> Result<Self, AdminSecurityError> {
        let tls = match (&args.admin_tls_dir, args.admin_self_signed) {
            (Some(dir), _) => Some(from_dir(dir)?),
            (None, true) => Some(self_signed()?),
            (None, false) => None,
        };
        if args.metrics_auth && tls.is_none() {
            return Err(AdminSecurityError::AuthWithoutTls);
        }
        Ok(Self {
            tls,
            auth: args
                .metrics_auth
                .then(|| Arc::new(MetricsAuth::new(client))),
        })
    }
}

fn from_dir(dir: &Path) -> Result<TlsAcceptor, AdminSecurityError> {
    let problem = |problem: String| AdminSecurityError::Tls {
        dir: dir.to_owned(),
        problem,
    };
    let certs = CertificateDer::pem_file_iter(dir.join("tls.crt"))
        .and_then(|c| c.collect::<Result<Vec<_>, _>>())
        .map_err(|e| problem(format!("tls.crt: {e}")))?;
    let key = PrivateKeyDer::from_pem_file(dir.join("tls.key"))
        .map_err(|e| problem(format!("tls.key: {e}")))?;
    acceptor(certs, key).map_err(problem)
}

/// A certificate for this process only, made at start, as controller-runtime does: the key
/// never leaves memory, and scrapers authenticate with their token, not by pinning it.
fn self_signed() -> Result<TlsAcceptor, AdminSecurityError> {
    let names = vec![
        std::env::var("POD_NAME").unwrap_or_else(|_| "lifeline".into()),
        "localhost".into(),
    ];
    let made = rcgen::generate_simple_self_signed(names)
        .map_err(|e| AdminSecurityError::SelfSigned(e.to_string()))?;
    let key = PrivateKeyDer::try_from(made.signing_key.serialize_der())
        .map_err(|e| AdminSecurityError::SelfSigned(e.to_string()))?;
    acceptor(vec![made.cert.der().clone()], key).map_err(AdminSecurityError::SelfSigned)
}

fn acceptor(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<TlsAcceptor, String> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| e.to_string())?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The answer for one request to `/metrics`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// No token, or one the API server does not accept: 401.
    Unauthenticated(String),
    /// A known user without `get /metrics`: 403.
    Forbidden(String),
}

pub struct MetricsAuth {
    client: Client,
    cache: Mutex<HashMap<String, (Verdict, Instant)>>,
}

impl MetricsAuth {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            cache: Mutex::default(),
        }
    }

    /// The verdict for a request's `Authorization` header.
    pub async fn check(&self, authorization: Option<&str>) -> Verdict {
        let Some(token) = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            return Verdict::Unauthenticated("a bearer token is required".into());
        };
        if let Some((verdict, at)) = self.cache.lock().unwrap().get(token)
            && at.elapsed() < VERDICT_TTL
        {
            return verdict.clone();
        }
        let verdict = match self.review(token).await {
            Ok(verdict) => verdict,
            // Not cached: the next scrape asks again.
            Err(error) => {
                tracing::warn!(%error, "cannot review a /metrics token");
                return Verdict::Unauthenticated("the token could not be reviewed".into());
            }
        };
        let mut cache = self.cache.lock().unwrap();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(token.to_owned(), (verdict.clone(), Instant::now()));
        verdict
    }

    async fn review(&self, token: &str) -> Result<Verdict, kube::Error> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_owned(),
                ..TokenReviewSpec::default()
            },
            ..TokenReview::default()
        };
        let reviewed = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        let status = reviewed.status.unwrap_or_default();
        let Some(user) = status.user.filter(|_| status.authenticated == Some(true)) else {
            return Ok(Verdict::Unauthenticated(
                "the API server does not accept the token".into(),
            ));
        };
        let name = user.username.clone().unwrap_or_default();
        let access = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username,
                groups: user.groups,
                uid: user.uid,
                extra: user.extra,
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some("/metrics".into()),
                    verb: Some("get".into()),
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let decided = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &access)
            .await?;
        Ok(if decided.status.is_some_and(|s| s.allowed) {
            Verdict::Allowed
        } else {
            Verdict::Forbidden(format!("{name} may not get /metrics"))
        })
    }
}
