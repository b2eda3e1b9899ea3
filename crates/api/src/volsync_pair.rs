//! The vocabulary of a VolSync rsync-TLS DR pair as `kubectl lifeline` records it on each
//! site's claim, and the cron schedule of a sync interval: shared by the CLI, which writes
//! them, and the replication controller, whose RPO metrics read them.

use std::borrow::Borrow;
use std::time::Duration;

use kube::ResourceExt;

use crate::foreign::volsync::{MoverResult, ReplicationDestination, ReplicationSource, SyncStatus};

/// The claim's role at its site: `primary` (the application writes it; a ReplicationSource
/// pushes it) or `secondary` (a ReplicationDestination writes it).
pub const ROLE: &str = "lifeline.dev/volsync-role";
/// When the role was last set (RFC 3339): for a primary, when the switch to it happened.
pub const ROLE_SINCE: &str = "lifeline.dev/volsync-role-since";
/// The sync interval, in seconds: the schedule of the source at whichever site is primary, and
/// the RPO bound's first term.
pub const INTERVAL: &str = "lifeline.dev/volsync-interval-seconds";
/// The destination Service's type (`LoadBalancer` or `ClusterIP`), for whichever site is
/// secondary.
pub const SERVICE_TYPE: &str = "lifeline.dev/volsync-service-type";

/// The cron schedule that syncs every `interval`: whole minutes up to an hour, whole hours up
/// to a day. A step that does not divide the hour (or day) makes one shorter gap at the wrap,
/// never a longer one, so `interval` stays the bound.
pub fn schedule(interval: Duration) -> Result<String, String> {
    let secs = interval.as_secs();
    let refuse = || {
        format!(
            "an interval of {secs}s cannot be a VolSync schedule: give whole minutes from 1m to 59m, whole hours from 1h to 23h, or 24h"
        )
    };
    if secs == 0 || !secs.is_multiple_of(60) {
        return Err(refuse());
    }
    let minutes = secs / 60;
    match minutes {
        1 => Ok("* * * * *".into()),
        2..=59 => Ok(format!("*/{minutes} * * * *")),
        m if m.is_multiple_of(60) && m / 60 == 1 => Ok("0 * * * *".into()),
        m if m.is_multiple_of(60) && m / 60 < 24 => Ok(format!("0 */{} * * *", m / 60)),
        1440 => Ok("0 0 * * *".into()),
        _ => Err(refuse()),
    }
}

/// The interval of a schedule [`schedule`] writes (or `@hourly`/`@daily`); `None` for any
/// other shape, whose bound is then unknown.
pub fn interval_of(schedule: &str) -> Option<Duration> {
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    let step = |field: &str| -> Option<u64> {
        match field {
            "*" => Some(1),
            f => f.strip_prefix("*/")?.parse().ok().filter(|n| *n > 0),
        }
    };
    match fields.as_slice() {
        ["@hourly"] => Some(Duration::from_secs(3600)),
        ["@daily"] | ["@midnight"] => Some(Duration::from_secs(86_400)),
        [m, "*", "*", "*", "*"] if m.starts_with('*') => Some(Duration::from_secs(step(m)? * 60)),
        ["0", "0", "*", "*", "*"] => Some(Duration::from_secs(86_400)),
        [m, h, "*", "*", "*"] if m.parse::<u8>().is_ok_and(|m| m < 60) => {
            Some(Duration::from_secs(step(h)? * 3600))
        }
        _ => None,
    }
}

/// The interval a claim's [`INTERVAL`] annotation records, if it is one [`schedule`] takes.
pub fn recorded_interval(value: &str) -> Option<Duration> {
    let interval = Duration::from_secs(value.parse().ok()?);
    schedule(interval).is_ok().then_some(interval)
}

/// A pair's sync interval: what the claim's [`INTERVAL`] annotation records, else the interval
/// of its source's schedule (a pair made by hand).
pub fn interval(
    claim_annotations: &std::collections::BTreeMap<String, String>,
    source: Option<&ReplicationSource>,
) -> Option<Duration> {
    claim_annotations
        .get(INTERVAL)
        .and_then(|v| recorded_interval(v))
        .or_else(|| interval_of(source?.spec.trigger.as_ref()?.schedule.as_deref()?))
}

/// Whether a mover's last run failed (`latestMoverStatus.result: Failed`).
pub fn mover_failed(sync: &SyncStatus) -> bool {
    sync.latest_mover_status
        .as_ref()
        .and_then(|m| m.result.as_ref())
        .is_some_and(|r| *r == MoverResult::Failed)
}

/// The rsync-TLS source pushing `claim` (in `namespace`) and the destination writing it, among
/// a site's ReplicationSources and ReplicationDestinations (restic ones are not pairs).
pub fn pair_of<'a, S, D>(
    namespace: &str,
    claim: &str,
    sources: &'a [S],
    destinations: &'a [D],
) -> (
    Option<&'a ReplicationSource>,
    Option<&'a ReplicationDestination>,
)
where
    S: Borrow<ReplicationSource>,
    D: Borrow<ReplicationDestination>,
{
    let source = sources.iter().map(Borrow::borrow).find(|s| {
        s.namespace().as_deref() == Some(namespace)
            && s.spec.rsync_tls.is_some()
            && s.spec.source_pvc.as_deref() == Some(claim)
    });
    let destination = destinations.iter().map(Borrow::borrow).find(|d| {
        d.namespace().as_deref() == Some(namespace)
            && d.spec
                .rsync_tls
                .as_ref()
                .is_some_and(|t| t.destination_pvc.as_deref() == Some(claim))
    });
    (source, destination)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_becomes_a_schedule_and_back() {
        for (secs, cron) in [
            (60, "* * * * *"),
            (300, "*/5 * * * *"),
            (3540, "*/59 * * * *"),
            (3600, "0 * * * *"),
            (7200, "0 */2 * * *"),
            (86_400, "0 0 * * *"),
        ] {
            let d = Duration::from_secs(secs);
            assert_eq!(schedule(d).as_deref(), Ok(cron));
            assert_eq!(interval_of(cron), Some(d), "{cron}");
            assert_eq!(recorded_interval(&secs.to_string()), Some(d));
        }
        for bad in [0, 30, 90, 3660, 90_000] {
            let error = schedule(Duration::from_secs(bad)).unwrap_err();
            assert!(error.contains("whole minutes"), "{error}");
            assert_eq!(recorded_interval(&bad.to_string()), None);
        }
        for other in ["", "*/0 * * * *", "5 4 * * sun", "*/x * * * *", "@weekly"] {
            assert_eq!(interval_of(other), None, "{other:?}");
        }
        for junk in ["5m", "-60", "", "1e3"] {
            assert_eq!(recorded_interval(junk), None, "{junk:?}");
        }
    }
}
