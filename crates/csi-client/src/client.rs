//! The client: one typed method per RPC, each with a deadline, a tracing span and an
//! optional observer for the caller's metrics.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use tracing::Instrument;

use crate::proto::identity::{self as id_pb, identity_client::IdentityClient};
use crate::proto::replication::controller_client::ControllerClient;
use crate::{
    Capabilities, CsiError, Destination, DriverIdentity, Endpoint, Method, ReplicationInfo,
    ReplicationRequest, code_name,
};

/// How long a call may take unless [`CsiClient::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Sees every call's method, outcome and latency, e.g. to fill a Prometheus histogram.
/// `outcome` is "OK" or the gRPC code's name ("NOT_FOUND", "DEADLINE_EXCEEDED", …).
pub trait CallObserver: Send + Sync {
    fn observe(&self, method: Method, outcome: &'static str, latency: Duration);
}

/// How long calls started now may run, or `None` when none may be made: a controller's
/// leadership fence (`lifeline_runtime::fence`), so no call outlives its Lease.
pub type Budget = Arc<dyn Fn() -> Option<Duration> + Send + Sync>;

/// A client for one driver. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct CsiClient {
    endpoint: Endpoint,
    channel: Channel,
    timeout: Duration,
    observer: Option<Arc<dyn CallObserver>>,
    budget: Option<Budget>,
}

impl fmt::Debug for CsiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CsiClient")
            .field("endpoint", &self.endpoint)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl CsiClient {
    /// A lazy client for `endpoint`; see [`crate::connect`].
    pub fn new(endpoint: Endpoint) -> Self {
        Self::with_tls(endpoint, None)
    }

    /// A lazy client; an `https://` endpoint is dialled with `tls` ([`crate::tls`]).
    pub fn with_tls(
        endpoint: Endpoint,
        tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    ) -> Self {
        let channel = endpoint.channel_with(tls);
        Self {
            endpoint,
            channel,
            timeout: DEFAULT_TIMEOUT,
            observer: None,
            budget: None,
        }
    }

    /// Bounds every call's deadline by `budget`, and makes no call when it says none may be.
    pub fn with_budget(mut self, budget: Budget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The deadline of a call started now: the timeout, cut to the budget; `None`: no call.
    fn deadline(&self) -> Option<Duration> {
        match &self.budget {
            None => Some(self.timeout),
            Some(budget) => budget().map(|left| left.min(self.timeout)),
        }
    }

    /// Each call fails with DEADLINE_EXCEEDED after `timeout` (also sent to the driver as the
    /// gRPC deadline).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn identity_stub(&self) -> IdentityClient<Channel> {
        IdentityClient::new(self.channel.clone())
    }

    fn controller_stub(&self) -> ControllerClient<Channel> {
        ControllerClient::new(self.channel.clone())
    }

    pub(crate) fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        // With no budget left the call is refused in `call` before this request is sent.
        request.set_timeout(self.deadline().unwrap_or(Duration::from_millis(1)));
        request
    }

    /// Runs one call under a span, a deadline and the observer.
    pub(crate) async fn call<T, F>(
        &self,
        method: Method,
        target: &str,
        call: F,
    ) -> Result<T, CsiError>
    where
        F: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let span = tracing::info_span!(
            "csi_call",
            method = method.as_str(),
            target,
            endpoint = %self.endpoint,
            outcome = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        );
        let started = Instant::now();
        let result = match self.deadline() {
            // The call future is dropped unpolled: nothing reaches the driver.
            None => Err(CsiError::fenced(method)),
            Some(deadline) => {
                match tokio::time::timeout(deadline, call.instrument(span.clone())).await {
                    Ok(Ok(response)) => Ok(response.into_inner()),
                    Ok(Err(status)) => Err(CsiError::from_status(method, &status)),
                    Err(_) => Err(CsiError::deadline(method, deadline)),
                }
            }
        };
        let latency = started.elapsed();
        let outcome = match &result {
            Ok(_) => "OK",
            Err(e) => code_name(e.code),
        };
        span.record("outcome", outcome);
        span.record("latency_ms", latency.as_secs_f64() * 1000.0);
        span.in_scope(|| match &result {
            Ok(_) => tracing::debug!("csi call succeeded"),
            Err(e) => tracing::debug!(error = %e, category = e.category(), "csi call failed"),
        });
        if let Some(observer) = &self.observer {
            observer.observe(method, outcome, latency);
        }
        result
    }

    /// The driver's name, version and manifest.
    pub async fn identity(&self) -> Result<DriverIdentity, CsiError> {
        let request = self.request(id_pb::GetIdentityRequest {});
        let mut stub = self.identity_stub();
        self.call(Method::GetIdentity, "", stub.get_identity(request))
            .await
            .map(Into::into)
    }

    /// What the driver can do; replication calls need `volume_replication`.
    pub async fn capabilities(&self) -> Result<Capabilities, CsiError> {
        let request = self.request(id_pb::GetCapabilitiesRequest {});
        let mut stub = self.identity_stub();
        self.call(Method::GetCapabilities, "", stub.get_capabilities(request))
            .await
            .map(Into::into)
    }

    /// Whether the driver is ready. An unset `ready` means ready, as in CSI.
    pub async fn probe(&self) -> Result<bool, CsiError> {
        let request = self.request(id_pb::ProbeRequest {});
        let mut stub = self.identity_stub();
        let response = self.call(Method::Probe, "", stub.probe(request)).await?;
        Ok(response.ready.unwrap_or(true))
    }

    pub async fn enable(&self, r: &ReplicationRequest) -> Result<(), CsiError> {
        let request = self.request(r.enable());
        let mut stub = self.controller_stub();
        let target = r.target.to_string();
        self.call(
            Method::EnableVolumeReplication,
            &target,
            stub.enable_volume_replication(request),
        )
        .await
        .map(drop)
    }

    pub async fn disable(&self, r: &ReplicationRequest) -> Result<(), CsiError> {
        let request = self.request(r.disable());
        let mut stub = self.controller_stub();
        let target = r.target.to_string();
        self.call(
            Method::DisableVolumeReplication,
            &target,
            stub.disable_volume_replication(request),
        )
        .await
        .map(drop)
    }

    pub async fn promote(&self, r: &ReplicationRequest, force: bool) -> Result<(), CsiError> {
        let request = self.request(r.promote(force));
        let mut stub = self.controller_stub();
        let target = r.target.to_string();
        self.call(Method::PromoteVolume, &target, stub.promote_volume(request))
            .await
            .map(drop)
    }

    pub async fn demote(&self, r: &ReplicationRequest, force: bool) -> Result<(), CsiError> {
        let request = self.request(r.demote(force));
        let mut stub = self.controller_stub();
        let target = r.target.to_string();
        self.call(Method::DemoteVolume, &target, stub.demote_volume(request))
            .await
            .map(drop)
    }

    /// Returns `ready`: true once the resync has finished and the volume is in sync.
    pub async fn resync(&self, r: &ReplicationRequest, force: bool) -> Result<bool, CsiError> {
        let request = self.request(r.resync(force));
        let mut stub = self.controller_stub();
        let target = r.target.to_string();
        self.call(Method::ResyncVolume, &target, stub.resync_volume(request))
            .await
            .map(|response| response.ready)
    }

    pub async fn replication_info(
        &self,
        r: &ReplicationRequest,
    ) -> Result<ReplicationInfo, CsiError> {
        let request = self.request(r.info());
        let mut stub = self.controller_stub();
        let target = r.target.to_string();
        self.call(
            Method::GetVolumeReplicationInfo,
            &target,
            stub.get_volume_replication_info(request),
        )
        .await
        .map(Into::into)
    }

    pub async fn destination_info(&self, r: &ReplicationRequest) -> Result<Destination, CsiError> {
        let request = self.request(r.destination_info());
        let mut stub = self.controller_stub();
        let target = r.target.to_string();
        self.call(
            Method::GetReplicationDestinationInfo,
            &target,
            stub.get_replication_destination_info(request),
        )
        .await
        .map(Into::into)
    }
}
