//! When VolSync's status means a transfer failed for good. VolSync sets `Synchronizing=False`
//! with reason `Error` on *every* failed reconcile — a write conflict it retries at once
//! included ("Operation cannot be fulfilled … the object has been modified") — so that reason
//! alone is no verdict. Final are: the mover's Job past its backoff limit
//! (`latestMoverStatus.result: Failed`, with the mover's log), and VolSync's two refusals of the
//! spec itself (no replication method, more than one), which no retry changes.
//!
//! VolSync retries a failed mover up to its Job's backoff limit (8 Pods, the Job controller
//! waiting 10 s, 20 s, 40 s … between them: about 20 minutes). A failed Pod whose log shows an
//! error no retry can fix — restic's wrong password, a certificate no CA vouches for — is
//! final at once ([`hopeless`]).

use lifeline_api::foreign::volsync::{MoverResult, SyncStatus, SynchronizingReason};

/// VolSync's words for a spec it will never run (its `mover.ErrNoMoverFound` and
/// `ErrMultipleMoversFound`).
const REFUSALS: &[&str] = &[
    "a replication method must be specified",
    "only one replication method can be supplied",
];

/// The failure to report, if VolSync's status says the transfer cannot succeed.
pub fn final_failure(sync: &SyncStatus) -> Option<String> {
    let refused = sync
        .conditions
        .iter()
        .filter(|c| c.reason == SynchronizingReason::Error.as_str())
        .find(|c| REFUSALS.iter().any(|r| c.message.starts_with(r)))
        .map(|c| c.message.clone());
    let mover_failed = sync
        .latest_mover_status
        .as_ref()
        .filter(|m| m.result.as_ref().is_some_and(|r| *r == MoverResult::Failed))
        .map(|m| {
            m.logs
                .clone()
                .unwrap_or_else(|| "the restic mover failed".into())
        });
    refused.or(mover_failed)
}

/// restic's words for what only a change of the Secret fixes.
const HOPELESS: &[&str] = &[
    "wrong password or no key found",
    "x509: certificate signed by unknown authority",
];

/// The lines of a failed mover's log that say it cannot succeed on a retry, if any.
pub fn hopeless(log: &str) -> Option<String> {
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| HOPELESS.iter().any(|h| l.contains(h)))
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sync(status: serde_json::Value) -> SyncStatus {
        serde_json::from_value(status).unwrap()
    }

    fn error(message: &str) -> serde_json::Value {
        json!({"conditions": [{"type": "Synchronizing", "status": "False", "reason": "Error",
            "message": message, "lastTransitionTime": "2026-12-03T00:56:56Z"}]})
    }

    #[test]
    fn a_wrong_password_is_hopeless_a_network_error_is_not() {
        let log = "Starting container\nFatal: unable to open repository at s3:https://x/b: wrong password or no key found\n";
        assert_eq!(
            hopeless(log).as_deref(),
            Some(
                "Fatal: unable to open repository at s3:https://x/b: wrong password or no key found"
            )
        );
        assert_eq!(
            hopeless("Fatal: unable to open config file: connection refused"),
            None
        );
        assert_eq!(hopeless(""), None);
    }

    #[test]
    fn a_conflict_volsync_retries_is_no_failure() {
        let conflict = "Operation cannot be fulfilled on jobs.batch \"volsync-dst-x\": the object has been modified; please apply your changes to the latest version and try again";
        assert_eq!(final_failure(&sync(error(conflict))), None);
    }

    #[test]
    fn volsyncs_refusals_of_the_spec_and_a_failed_mover_are_final() {
        let refused = final_failure(&sync(error(
            "a replication method must be specified - enabled movers: [restic]",
        )));
        assert!(refused.unwrap().starts_with("a replication method"));
        let mover = sync(
            json!({"latestMoverStatus": {"result": "Failed", "logs": "Fatal: wrong password"}}),
        );
        assert_eq!(
            final_failure(&mover).as_deref(),
            Some("Fatal: wrong password")
        );
        let succeeded = sync(json!({"latestMoverStatus": {"result": "Successful"}}));
        assert_eq!(final_failure(&succeeded), None);
    }
}
