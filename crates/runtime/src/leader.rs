//! Leader election on a `coordination.k8s.io/v1` Lease, so two replicas of a controller are
//! safe: only the holder reconciles (writers are leader-only); a standby takes over within the
//! lease duration after the leader stops renewing, and immediately after a graceful release.
//!
//! Expiry is judged the way client-go judges it: by how long *this* process has seen the same
//! Lease record unchanged, not by comparing `renewTime` with the local clock, so clock skew
//! between nodes cannot make two leaders.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::fence::Fence;

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("leader election on Lease {namespace}/{name}: {source}")]
    Api {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "leader election on Lease {namespace}/{name}: the API server did not answer within {after:?}"
    )]
    TimedOut {
        namespace: String,
        name: String,
        after: Duration,
    },
}

impl LeaderError {
    /// A stable label for metrics.
    pub fn category(&self) -> &'static str {
        "leader_election"
    }
}

/// Tries to hold one Lease.
#[derive(Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    namespace: String,
    name: String,
    identity: String,
    lease_duration: Duration,
    renew_period: Duration,
    fence: Option<Fence>,
}

/// What this process last saw of the Lease, and when it first saw it that way.
struct Observed {
    record: Option<(Option<String>, Option<MicroTime>)>,
    since: Instant,
}

impl LeaderElector {
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        lease_duration: Duration,
        renew_period: Duration,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity: identity.to_owned(),
            lease_duration,
            renew_period: renew_period.min(lease_duration / 2),
            fence: None,
        }
    }

    /// Keeps `fence` open for as long as the Lease is safely held (see [`crate::fence`]).
    pub fn with_fence(mut self, fence: Fence) -> Self {
        self.fence = Some(fence);
        self
    }

    /// This process's identity in the Lease: `$POD_NAME` (or the host name) plus the pid.
    pub fn default_identity() -> String {
        let host = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "lifeline".to_owned());
        format!("{host}_{}", std::process::id())
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn error(&self, source: kube::Error) -> LeaderError {
        LeaderError::Api {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        }
    }

    /// Waits until this process holds the Lease, then keeps renewing it in the background.
    pub async fn acquire(&self) -> Leadership {
        let mut observed = Observed {
            record: None,
            since: Instant::now(),
        };
        loop {
            match self.round(&mut observed).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "cannot acquire leadership yet"),
            }
            tokio::time::sleep(self.renew_period).await;
        }
        tracing::info!(lease = %self.name, identity = %self.identity, "became leader");
        let (lost_tx, lost_rx) = watch::channel(false);
        let (release_tx, release_rx) = oneshot::channel();
        let renewer = tokio::spawn(self.clone().keep_renewing(observed, lost_tx, release_rx));
        Leadership {
            lost: lost_rx,
            release: Some(release_tx),
            renewer: Some(renewer),
        }
    }

    async fn keep_renewing(
        self,
        mut observed: Observed,
        lost: watch::Sender<bool>,
        mut release: oneshot::Receiver<()>,
    ) {
        // Give up leadership before the Lease can expire in a standby's eyes: at this deadline
        // after the last renewal, whatever a round in flight is doing.
        let deadline = self.lease_duration.saturating_sub(self.renew_period);
        let mut last_renewal = Instant::now();
        loop {
            let give_up_at = last_renewal + deadline;
            tokio::select! {
                _ = &mut release => {
                    self.close_fence();
                    self.release().await;
                    return;
                }
                _ = tokio::time::sleep_until(give_up_at) => {}
                _ = tokio::time::sleep(self.renew_period) => {}
            }
            if Instant::now() < give_up_at {
                // Counted from when the renewal was sent: a standby saw it no earlier.
                let sent = Instant::now();
                let outcome = tokio::select! {
                    outcome = self.round(&mut observed) => Some(outcome),
                    _ = tokio::time::sleep_until(give_up_at) => None,
                };
                match outcome {
                    Some(Ok(true)) => {
                        last_renewal = sent;
                        continue;
                    }
                    Some(Ok(false)) => {
                        tracing::error!(lease = %self.name, "another process took the Lease");
                        self.close_fence();
                        let _ = lost.send(true);
                        return;
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, "cannot renew the Lease");
                        continue;
                    }
                    None => {}
                }
            }
            tracing::error!(lease = %self.name, "could not renew the Lease in time");
            self.close_fence();
            let _ = lost.send(true);
            return;
        }
    }

    /// One round, bounded by the renew period: a hung API server must not keep this process
    /// acting as the leader past its deadline. A won round opens the fence until the Lease
    /// can expire in a standby's eyes.
    async fn round(&self, observed: &mut Observed) -> Result<bool, LeaderError> {
        let sent = Instant::now();
        let held = tokio::time::timeout(self.renew_period, self.try_acquire_or_renew(observed))
            .await
            .map_err(|_| LeaderError::TimedOut {
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                after: self.renew_period,
            })??;
        if held && let Some(fence) = &self.fence {
            fence.renewed(sent, self.lease_duration);
        }
        Ok(held)
    }

    fn close_fence(&self) {
        if let Some(fence) = &self.fence {
            fence.close();
        }
    }

    /// One round: create the Lease, renew it if ours, or take it if its holder let it expire.
    /// Returns whether this process holds it afterwards.
    async fn try_acquire_or_renew(&self, observed: &mut Observed) -> Result<bool, LeaderError> {
        let now = MicroTime(Timestamp::now());
        let seconds = i32::try_from(self.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX);
        let Some(current) = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.error(e))?
        else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(e) => Err(self.error(e)),
            };
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let record = (holder.clone(), spec.renew_time.clone());
        if observed.record.as_ref() != Some(&record) {
            observed.record = Some(record);
            observed.since = Instant::now();
        }
        let held_for = Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(seconds)).unwrap_or(0),
        );
        let ours = holder.as_deref() == Some(self.identity.as_str());
        let expired = holder.is_none() || observed.since.elapsed() >= held_for;
        if !ours && !expired {
            return Ok(false);
        }
        let mut lease = current;
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(seconds),
            acquire_time: if ours {
                spec.acquire_time
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(spec.lease_transitions.unwrap_or(0) + if ours { 0 } else { 1 }),
            ..spec
        });
        // `replace` sends our resourceVersion: a concurrent writer makes this a 409, not two leaders.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(written) => {
                let spec = written.spec.unwrap_or_default();
                observed.record = Some((spec.holder_identity, spec.renew_time));
                observed.since = Instant::now();
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Hands the Lease back so a standby takes over at once instead of after the lease duration.
    async fn release(&self) {
        let result = async {
            let Some(mut lease) = self.api.get_opt(&self.name).await? else {
                return Ok(());
            };
            let Some(spec) = lease.spec.as_mut() else {
                return Ok(());
            };
            if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
                return Ok(());
            }
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            self.api
                .replace(&self.name, &PostParams::default(), &lease)
                .await
                .map(|_| ())
        }
        .await;
        match result {
            Ok(()) => tracing::info!(lease = %self.name, "released leadership"),
            Err(error) => {
                tracing::warn!(%error, "could not release the Lease; a standby takes over when it expires")
            }
        }
    }
}

/// Held leadership. Dropping it stops renewing (the Lease then expires); [`Leadership::release`]
/// hands it back at once.
pub struct Leadership {
    lost: watch::Receiver<bool>,
    release: Option<oneshot::Sender<()>>,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

impl Leadership {
    /// Resolves when leadership is lost (another holder, or renewal failed past its deadline).
    pub async fn lost(&mut self) {
        let _ = self.lost.wait_for(|lost| *lost).await;
    }

    /// A future that resolves when leadership is lost, for `graceful_shutdown_on`.
    pub fn lost_signal(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        let mut lost = self.lost.clone();
        async move {
            let _ = lost.wait_for(|lost| *lost).await;
        }
    }

    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Gives the Lease back and waits until that is written.
    pub async fn release(mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.send(());
        }
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.await;
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
    }
}
