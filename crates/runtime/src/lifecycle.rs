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

/// How long in-flight work may take to finish once the controller is told to stop: under
/// Kubernetes' default 30 s termination grace, so that the process ends itself, saying so.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

/// Resolves once `flag` is raised; never, if it can no longer be (its sender gone unraised).
async fn raised(mut flag: tokio::sync::watch::Receiver<bool>) {
    if flag.wait_for(|raised| *raised).await.is_err() {
        std::future::pending::<()>().await;
    }
}

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
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        signal.await;
        let _ = stop_tx.send(true);
    });
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
            () = raised(stop.clone()) => return Ended::Stopped,
        }
    } else {
        None
    };
    let lost = leadership.as_ref().map(|l| l.lost_signal());
    let (ended_tx, ended_rx) = tokio::sync::watch::channel(false);
    let ended: Stop = Box::pin(async move {
        match lost {
            Some(lost) => tokio::select! { () = raised(stop) => {}, _ = lost => {} },
            None => raised(stop).await,
        }
        let _ = ended_tx.send(true);
    });
    // In-flight work gets SHUTDOWN_GRACE to finish, then is dropped: every step is resumed by
    // the next run, and Kubernetes would kill the process a little later anyway.
    let overdue = async move {
        raised(ended_rx).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        () = controller(ended) => {}
        () = overdue => tracing::warn!(
            grace_seconds = SHUTDOWN_GRACE.as_secs(),
            "in-flight reconciles did not finish within the shutdown grace; stopping without them (the next run resumes them)"
        ),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// [`run`] without leader election, stopped at once (the signal has already fired), with
    /// `work` as the controller; bounded by three graces.
    async fn run_stopped<F, Fut>(work: F) -> Ended
    where
        F: FnOnce(Stop) -> Fut,
        Fut: Future<Output = ()>,
    {
        use clap::Parser;
        #[derive(Parser)]
        struct Args {
            #[command(flatten)]
            leader: LeaderArgs,
        }
        let leader = Args::parse_from(["test"]).leader;
        let client =
            Client::try_from(kube::Config::new("http://127.0.0.1:1".parse().unwrap())).unwrap();
        let health = Arc::new(Health::default());
        let fence = fence(&leader);
        let run = run(client, &leader, fence, "lease", health, async {}, work);
        tokio::time::timeout(SHUTDOWN_GRACE * 3, run)
            .await
            .expect("the run ends after the grace, whatever is in flight")
    }

    #[tokio::test(start_paused = true)]
    async fn work_that_outlives_the_grace_is_dropped_after_it() {
        let started = tokio::time::Instant::now();
        let ended = run_stopped(|stop| async move {
            stop.await;
            // A reconcile that never finishes.
            std::future::pending::<()>().await;
        })
        .await;
        assert_eq!(ended, Ended::Stopped);
        assert!(started.elapsed() >= SHUTDOWN_GRACE);
    }

    #[tokio::test(start_paused = true)]
    async fn work_that_finishes_is_waited_for_and_a_signal_before_the_start_still_stops() {
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = Arc::clone(&finished);
        let started = tokio::time::Instant::now();
        let ended = run_stopped(|stop| async move {
            stop.await;
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            seen.store(true, std::sync::atomic::Ordering::SeqCst);
        })
        .await;
        assert_eq!(ended, Ended::Stopped);
        assert!(finished.load(std::sync::atomic::Ordering::SeqCst));
        assert!(started.elapsed() < SHUTDOWN_GRACE);
    }
}
