use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use lifeline_api::foreign::volsync::{ReplicationDestination, ReplicationSource};

use super::{Pair, state};
use crate::metrics::{PairState, Role};

fn claim(annotations: &str) -> PersistentVolumeClaim {
    serde_saphyr::from_str(&format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: db, namespace: shop, annotations: {{{annotations}}}}}\nspec: {{}}"
    ))
    .unwrap()
}

fn source(status: &str) -> ReplicationSource {
    serde_saphyr::from_str(&format!(
        "apiVersion: volsync.backube/v1alpha1\nkind: ReplicationSource\nmetadata: {{name: db, namespace: shop}}\nspec: {{sourcePVC: db, trigger: {{schedule: '*/5 * * * *'}}, rsyncTLS: {{address: 192.0.2.7}}}}\nstatus: {{{status}}}"
    ))
    .unwrap()
}

fn destination() -> ReplicationDestination {
    serde_saphyr::from_str(
        "apiVersion: volsync.backube/v1alpha1\nkind: ReplicationDestination\nmetadata: {name: db, namespace: shop}\nspec: {rsyncTLS: {destinationPVC: db}}\nstatus: {lastSyncTime: '2026-12-01T00:04:00Z', lastSyncDuration: 20s}",
    )
    .unwrap()
}

/// The state of the claim annotated `annotations` whose pair is `source` and `destination`.
fn state_of(
    annotations: &str,
    source: Option<&ReplicationSource>,
    destination: Option<&ReplicationDestination>,
) -> Option<PairState> {
    state(
        &claim(annotations),
        Pair {
            source,
            destination,
        },
        SystemTime::now(),
    )
}

const PRIMARY: &str =
    "lifeline.dev/volsync-role: primary, lifeline.dev/volsync-interval-seconds: '300'";

#[test]
fn a_primary_reports_its_last_sync_and_the_guides_bound() {
    let rs = source(
        "lastSyncTime: '2026-12-01T00:05:45Z', lastSyncDuration: 45s, latestMoverStatus: {result: Successful}",
    );
    let s = state_of(PRIMARY, Some(&rs), None).unwrap();
    let facts = s.facts.unwrap();
    assert_eq!(facts.role, Role::Primary);
    assert_eq!(
        facts.rpo_bound,
        Duration::from_secs(345),
        "5 m + 45 s, nothing added"
    );
    assert_eq!(
        facts.last_sync,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_083_545)
    );
    assert!(s.primary && !s.degraded);
}

#[test]
fn a_secondary_reports_what_it_received_and_is_not_primary() {
    let rd = destination();
    let s = state_of(
        "lifeline.dev/volsync-role: secondary, lifeline.dev/volsync-interval-seconds: '60'",
        None,
        Some(&rd),
    )
    .unwrap();
    assert_eq!(s.facts.unwrap().role, Role::Secondary);
    assert_eq!(s.facts.unwrap().rpo_bound, Duration::from_secs(80));
    assert!(!s.primary && !s.degraded);
}

/// After a failover the primary has no source: primary (no "no primary" alert) and degraded.
#[test]
fn a_primary_without_a_source_or_with_a_failed_mover_is_degraded() {
    let alone = state_of(PRIMARY, None, None).unwrap();
    assert!(alone.primary && alone.degraded && alone.facts.is_none());
    let rs = source("latestMoverStatus: {result: Failed}");
    let failed = state_of(PRIMARY, Some(&rs), None).unwrap();
    assert!(failed.primary && failed.degraded);
}

#[test]
fn a_switch_under_way_is_not_primary_and_junk_annotations_are_no_pair() {
    let rd = destination();
    let switching = state_of(PRIMARY, None, Some(&rd)).unwrap();
    assert!(!switching.primary);
    assert!(state_of("lifeline.dev/volsync-role: both", None, None).is_none());
    assert!(state_of("", None, None).is_none());
    // A bad interval annotation falls back to the source's schedule.
    let rs = source("lastSyncTime: '2026-12-01T00:05:45Z'");
    let s = state_of(
        "lifeline.dev/volsync-role: primary, lifeline.dev/volsync-interval-seconds: five",
        Some(&rs),
        None,
    )
    .unwrap();
    assert_eq!(s.facts.unwrap().rpo_bound, Duration::from_secs(300));
}
