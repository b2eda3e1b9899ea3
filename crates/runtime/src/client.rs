//! The Kubernetes client of a controller process.

use http::HeaderValue;
use http::header::USER_AGENT;

/// A client from in-cluster config or `KUBECONFIG` that names the controller in its
/// `User-Agent`, so API server audit logs (the e2e harness reads them) tell who asked.
pub async fn for_controller(name: &str) -> Result<kube::Client, kube::Error> {
    let mut config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    let agent = format!("{name}/{}", env!("CARGO_PKG_VERSION"));
    config.headers.push((
        USER_AGENT,
        HeaderValue::from_str(&agent).expect("controller names are ASCII"),
    ));
    kube::Client::try_from(config)
}
