//! Concurrency from the objects in the cluster, not an in-process counter: a restart or a
//! second replica sees the same counts. Requests run in creation order; two backups of the
//! same source volume never run together (they share a repository), and the next backup of a
//! volume starts only after the previous one's point in time (`restore-as-of`) has passed, so
//! that point in time names exactly one backup.

use std::time::Duration;

/// One request, as the admission sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// namespace/name
    pub key: String,
    /// RFC 3339 creation time (sorts chronologically).
    pub created: String,
    pub processing: bool,
    pub finished: bool,
    /// Finished, but its point in time has not passed yet: it still holds its volume (not a slot).
    pub holding: bool,
    /// What may not run twice at once (the source volume of a backup), if known.
    pub exclusive: Option<String>,
}

/// How long a queued request waits before looking again when nothing it waits for has a known
/// end. Only a safety net: a request that finishes (or goes) wakes the queued ones through the
/// watch (`controller.rs`), so a freed slot is taken as soon as the event arrives.
pub const QUEUED_RECHECK: Duration = Duration::from_secs(60);

/// When a queued request looks again, given how long the holds on its volume have left: just
/// after the first ends, or [`QUEUED_RECHECK`] if that is sooner or there is none.
pub fn recheck_after(holds_left: impl IntoIterator<Item = Duration>) -> Duration {
    holds_left
        .into_iter()
        .map(|left| left + Duration::from_millis(100))
        .min()
        .unwrap_or(QUEUED_RECHECK)
        .min(QUEUED_RECHECK)
}

/// Whether `candidate` may start now, given every request of its kind.
pub fn admitted(candidate: &str, requests: &[Request], limit: usize) -> bool {
    let running: Vec<&Request> = requests
        .iter()
        .filter(|r| r.processing && !r.finished)
        .collect();
    let mut slots = limit.saturating_sub(running.len());
    let mut busy: Vec<&str> = running
        .iter()
        .copied()
        .chain(requests.iter().filter(|r| r.finished && r.holding))
        .filter_map(|r| r.exclusive.as_deref())
        .collect();
    let mut waiting: Vec<&Request> = requests
        .iter()
        .filter(|r| !r.processing && !r.finished)
        .collect();
    waiting.sort_by(|a, b| (&a.created, &a.key).cmp(&(&b.created, &b.key)));
    for request in waiting {
        if slots == 0 {
            return false;
        }
        if request
            .exclusive
            .as_deref()
            .is_some_and(|e| busy.contains(&e))
        {
            if request.key == candidate {
                return false;
            }
            continue;
        }
        if request.key == candidate {
            return true;
        }
        slots -= 1;
        if let Some(e) = request.exclusive.as_deref() {
            busy.push(e);
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(key: &str, created: &str, processing: bool, exclusive: Option<&str>) -> Request {
        Request {
            key: key.into(),
            created: created.into(),
            processing,
            finished: false,
            holding: false,
            exclusive: exclusive.map(Into::into),
        }
    }

    #[test]
    fn the_limit_counts_running_requests_and_order_is_creation_order() {
        let requests = vec![
            r("a", "2026-01-01T00:00:01Z", true, Some("v1")),
            r("b", "2026-01-01T00:00:02Z", false, Some("v2")),
            r("c", "2026-01-01T00:00:03Z", false, Some("v3")),
        ];
        assert!(admitted("b", &requests, 2));
        assert!(!admitted("c", &requests, 2), "c waits behind b");
        assert!(admitted("c", &requests, 3));
        assert!(!admitted("b", &requests, 1));
    }

    #[test]
    fn two_backups_of_one_volume_never_run_together() {
        let requests = vec![
            r("a", "2026-01-01T00:00:01Z", true, Some("shop/db")),
            r("b", "2026-01-01T00:00:02Z", false, Some("shop/db")),
            r("c", "2026-01-01T00:00:03Z", false, Some("shop/web")),
        ];
        assert!(!admitted("b", &requests, 10));
        assert!(
            admitted("c", &requests, 10),
            "a blocked volume does not block others"
        );
    }

    #[test]
    fn a_finished_backup_holds_its_volume_until_its_point_in_time_but_no_slot() {
        let mut done = r("a", "2026-01-01T00:00:01Z", true, Some("shop/db"));
        done.finished = true;
        done.holding = true;
        let requests = vec![
            done,
            r("b", "2026-01-01T00:00:02Z", false, Some("shop/db")),
            r("c", "2026-01-01T00:00:03Z", false, Some("shop/web")),
        ];
        assert!(
            !admitted("b", &requests, 10),
            "same volume: after a's point in time"
        );
        assert!(admitted("c", &requests, 1), "a holds no slot");
        let mut passed = requests.clone();
        passed[0].holding = false;
        assert!(admitted("b", &passed, 10));
    }

    #[test]
    fn a_request_held_by_a_point_in_time_looks_again_right_after_it() {
        assert_eq!(recheck_after([]), QUEUED_RECHECK);
        assert_eq!(
            recheck_after([Duration::from_millis(700), Duration::from_secs(2)]),
            Duration::from_millis(800)
        );
        assert_eq!(recheck_after([Duration::from_secs(600)]), QUEUED_RECHECK);
    }

    #[test]
    fn a_restart_sees_the_same_counts() {
        // The input is the cluster's objects; nothing in memory: the same input, the same answer.
        let requests = vec![r("a", "t1", true, None), r("b", "t2", false, None)];
        assert_eq!(
            admitted("b", &requests, 1),
            admitted("b", &requests.clone(), 1)
        );
        let mut finished = requests.clone();
        finished[0].finished = true;
        assert!(admitted("b", &finished, 1));
    }
}
