//! Two replicas are safe: only the Lease holder leads; a standby takes over after the holder
//! stops renewing (within the lease duration) and at once after a graceful release.
//! Runs on paused tokio time, so the lease durations cost no wall-clock time.

mod support;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use lifeline_runtime::LeaderElector;
use support::MockApi;

const LEASE: Duration = Duration::from_secs(15);
const RENEW: Duration = Duration::from_secs(5);

fn elector(api: &MockApi, identity: &str) -> LeaderElector {
    LeaderElector::new(
        api.client(),
        "lifeline",
        "replication",
        identity,
        LEASE,
        RENEW,
    )
}

fn holder(api: &MockApi) -> Option<String> {
    api.get::<Lease>(Some("lifeline"), "replication")
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

#[tokio::test(start_paused = true)]
async fn a_standby_waits_while_the_leader_renews_and_takes_over_when_it_stops() {
    let api = MockApi::default();
    let first = elector(&api, "first").acquire().await;
    assert_eq!(holder(&api).as_deref(), Some("first"));

    let standby = tokio::spawn({
        let second = elector(&api, "second");
        async move { second.acquire().await }
    });
    // Four lease durations of renewals: the standby never gets in.
    tokio::time::sleep(LEASE * 4).await;
    assert!(
        !standby.is_finished(),
        "a standby must not lead while the leader renews"
    );
    assert_eq!(holder(&api).as_deref(), Some("first"));
    assert!(!first.is_lost());

    // The leader dies without releasing: the standby leads within about one lease duration.
    let died = tokio::time::Instant::now();
    drop(first);
    // (Paused time: a broken election would spin forever, so bound the wait.)
    let second = tokio::time::timeout(LEASE * 10, standby)
        .await
        .expect("the standby takes over")
        .unwrap();
    assert!(
        died.elapsed() <= LEASE + RENEW * 2,
        "took over after {:?}",
        died.elapsed()
    );
    assert_eq!(holder(&api).as_deref(), Some("second"));
    let transitions = api
        .get::<Lease>(Some("lifeline"), "replication")
        .and_then(|l| l.spec)
        .and_then(|s| s.lease_transitions);
    assert_eq!(transitions, Some(1));

    // A graceful release lets the next one in at once.
    second.release().await;
    assert_eq!(holder(&api), None);
    let released = tokio::time::Instant::now();
    let _third = tokio::time::timeout(LEASE, elector(&api, "third").acquire())
        .await
        .expect("the released Lease is free");
    assert!(
        released.elapsed() <= RENEW,
        "after a release the Lease is free at once"
    );
}

#[tokio::test(start_paused = true)]
async fn a_leader_whose_lease_is_taken_knows_it_lost() {
    let api = MockApi::default();
    let mut first = elector(&api, "first").acquire().await;
    // Someone else overwrites the Lease (e.g. an operator forcing a failover).
    let mut lease: Lease = api.get(Some("lifeline"), "replication").unwrap();
    lease.spec.as_mut().unwrap().holder_identity = Some("intruder".into());
    api.put(&lease);
    assert_eq!(holder(&api).as_deref(), Some("intruder"));
    tokio::time::timeout(LEASE, first.lost())
        .await
        .expect("the next renewal notices");
    assert!(first.is_lost());
}

/// The API server stops answering the leader. Its renewal round is cut at the renew period
/// (not left hanging), it knows it lost before a standby could take the Lease, and its fence
/// (what bounds driver calls) is shut before then too.
#[tokio::test(start_paused = true)]
async fn a_leader_cut_off_from_the_api_server_stops_acting_before_the_lease_can_pass() {
    let api = MockApi::default();
    let fence = lifeline_runtime::Fence::closed();
    let mut first = elector(&api, "first")
        .with_fence(fence.clone())
        .acquire()
        .await;
    let open = fence.remaining().expect("the leader may act");
    assert!(open <= LEASE - lifeline_runtime::fence::MARGIN);

    let cut = tokio::time::Instant::now();
    api.hang(true);
    tokio::time::timeout(LEASE * 2, first.lost())
        .await
        .expect("a hung renewal does not keep it leader");
    assert!(
        cut.elapsed() < LEASE,
        "knew it lost after {:?}, a standby could lead after {LEASE:?}",
        cut.elapsed()
    );
    assert_eq!(fence.remaining(), None, "no driver call after losing");
}
