//! The life of a controller process after setup: optionally win leadership, run the
//! controller until SIGTERM (or until leadership is lost), then hand the Lease back.

use std::pin::Pin;
use std::sync::Arc;

use kube::Client;

use crate::admin::Health;
use crate::cli::LeaderArgs;
use crate::fence::Fence;
use crate::leader::LeaderElector;

/// A future that resolves when the controller must stop.
pub type Stop = Pin<Box<dyn Future<Output = ()> + Send + Sync + 'static>>;

/// How the run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// SIGTERM/SIGINT (or before leadership was won).
    Stopped,
    /// Another process took the Lease or renewal failed: exit non-zero so the pod restarts as a
    /// standby; never keep writing without the Lease.
    LostLeadership,
}

/// The fence on driver calls for these flags: open without leader election, else closed until
/// the Lease is won (see [`crate::fence`]). Made before the controller's clients, which it
/// bounds; handed to [`run`], which keeps it.
pub fn fence(leader: &LeaderArgs) -> Fence {
    if leader.leader_elect {
        Fence::closed()
    } else {
        Fence::open()
    }
}

/// Runs `controller` (given the future that tells it to stop) until `signal` fires; with
/// `--leader-elect`, only after winning the Lease named `default_lease` (unless overridden),
/// keeping `fence` open only while the Lease is safely held.
#[allow(clippy::too_many_arguments)]
pub async fn run<F, Fut>(
    client: Client,
    leader: &LeaderArgs,
    fence: Fence,
    default_lease: &str,
    health: Arc<Health>,
    signal: impl Future<Output = ()> + Send + 'static,
    controller: F,
) -> Ended
where
    F: FnOnce(Stop) -> Fut,
    Fut: Future<Output = ()>,
{
    let stop = Arc::new(tokio::sync::Notify::new());
    {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            signal.await;
            stop.notify_waiters();
            stop.notify_one();
        });
    }
    let leadership = if leader.leader_elect {
        let namespace = leader
            .leader_election_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".to_owned());
        let name = leader
            .leader_election_lease_name
            .clone()
            .unwrap_or_else(|| default_lease.to_owned());
        let elector = LeaderElector::new(
            client,
            &namespace,
            &name,
            &LeaderElector::default_identity(),
            leader.lease_duration,
            leader.lease_renew_period,
        )
        .with_fence(fence);
        // A standby is healthy and ready; it just does not write.
        health.set_ready(true);
        tracing::info!(lease = %name, %namespace, identity = elector.identity(), "waiting for leadership");
        tokio::select! {
            leadership = elector.acquire() => Some(leadership),
            _ = stop.notified() => return Ended::Stopped,
        }
    } else {
        None
    };
    let lost = leadership.as_ref().map(|l| l.lost_signal());
    let ended: Stop = {
        let stop = Arc::clone(&stop);
        Box::pin(async move {
            match lost {
                Some(lost) => tokio::select! { _ = stop.notified() => {}, _ = lost => {} },
                None => stop.notified().await,
            }
        })
    };
    controller(ended).await;
    match leadership {
        Some(leadership) if leadership.is_lost() => {
            health.set_dead();
            Ended::LostLeadership
        }
        Some(leadership) => {
            leadership.release().await;
            Ended::Stopped
        }
        None => Ended::Stopped,
    }
}
