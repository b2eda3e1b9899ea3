//! What DataUploads and DataDownloads share: whose request it is, its phase, its time limit,
//! and the snapshot id that carries a backup to its restore.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use lifeline_api::foreign::velero::DataMovePhase;
use lifeline_api::open::Open;
use lifeline_api::parse_go_duration;

/// Where a request stands, from its `status.phase`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// `New` or no phase: nobody has taken it.
    Untaken,
    /// Taken by a mover (Accepted, Prepared, InProgress).
    Moving(DataMovePhase),
    Canceling,
    /// Completed, Failed or Canceled.
    Finished(DataMovePhase),
    /// A phase Velero's CRD does not list: never ours to touch.
    Foreign,
}

pub fn stage(phase: Option<&Open<DataMovePhase>>) -> Stage {
    match phase {
        None => Stage::Untaken,
        Some(Open::Unknown(_)) => Stage::Foreign,
        Some(Open::Known(phase)) => match phase {
            DataMovePhase::New => Stage::Untaken,
            DataMovePhase::Canceling => Stage::Canceling,
            p if p.is_terminal() => Stage::Finished(*p),
            p => Stage::Moving(*p),
        },
    }
}

/// Whether a request is this mover's: `spec.datamover` is its name exactly. `""` and
/// `velero` are Velero's built-in mover's, whatever this mover is called.
pub fn is_ours(datamover: Option<&str>, name: &str) -> bool {
    let asked = datamover.unwrap_or_default();
    !asked.is_empty() && asked != "velero" && asked == name
}

/// `spec.operationTimeout` elapsed since the request was taken: the message to fail it with.
/// A value that does not parse fails it too, naming the field. Velero gives it as the time to
/// prepare (its own mover fails a request still `Accepted` after it), so callers ask only then.
pub fn timed_out(timeout: Option<&str>, accepted: Option<&Time>, now: Timestamp) -> Option<String> {
    let text = timeout.map(str::trim).filter(|t| !t.is_empty())?;
    let Some(limit) = parse_go_duration(text) else {
        return Some(format!(
            "spec.operationTimeout {text:?} is not a duration (e.g. 10m0s)"
        ));
    };
    let since = accepted?.0;
    let elapsed = Duration::try_from(now.duration_since(since)).unwrap_or_default();
    (!limit.is_zero() && elapsed > limit).then(|| {
        format!("not ready to move data within spec.operationTimeout ({text}) of being accepted; the data mover removed what it made")
    })
}

/// What a DataUpload's `snapshotID` holds: Velero hands only this (with the location and the
/// source namespace) to the DataDownload, and VolSync restores by point in time, so the id
/// carries both: `<restic snapshot id>@<restore-as-of, RFC 3339>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotRef {
    pub restic_id: Option<String>,
    pub as_of: Timestamp,
}

impl SnapshotRef {
    pub fn to_id(&self) -> String {
        match &self.restic_id {
            Some(id) => format!("{id}@{}", self.as_of),
            None => format!("@{}", self.as_of),
        }
    }

    pub fn parse(id: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "spec.snapshotID {id:?} is not one this mover wrote (<restic id>@<RFC 3339 time>); copy it from the DataUpload's status.snapshotID"
            )
        };
        let (restic, time) = id.trim().rsplit_once('@').ok_or_else(bad)?;
        let as_of = time.parse::<Timestamp>().map_err(|_| bad())?;
        if !restic.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Self {
            restic_id: (!restic.is_empty()).then(|| restic.to_owned()),
            as_of,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_requests_naming_this_mover_are_its_own() {
        assert!(is_ours(Some("lifeline"), "lifeline"));
        for other in [
            None,
            Some(""),
            Some("velero"),
            Some("Lifeline"),
            Some("other"),
        ] {
            assert!(!is_ours(other, "lifeline"), "{other:?}");
        }
        assert!(
            !is_ours(Some("velero"), "velero"),
            "velero is the built-in's"
        );
    }

    #[test]
    fn phases_sort_into_stages() {
        let known = |p| Some(Open::Known(p));
        assert_eq!(stage(None), Stage::Untaken);
        assert_eq!(stage(known(DataMovePhase::New).as_ref()), Stage::Untaken);
        assert_eq!(
            stage(known(DataMovePhase::Prepared).as_ref()),
            Stage::Moving(DataMovePhase::Prepared)
        );
        assert_eq!(
            stage(known(DataMovePhase::Canceled).as_ref()),
            Stage::Finished(DataMovePhase::Canceled)
        );
        assert_eq!(stage(Some(&Open::Unknown("Paused".into()))), Stage::Foreign);
    }

    #[test]
    fn the_time_limit_counts_from_acceptance() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let accepted = Time(at("2026-12-01T10:00:00Z"));
        let now = at("2026-12-01T10:10:01Z");
        assert!(timed_out(Some("10m0s"), Some(&accepted), now).is_some());
        assert!(timed_out(Some("10m2s"), Some(&accepted), now).is_none());
        assert!(timed_out(None, Some(&accepted), now).is_none());
        assert!(timed_out(Some("10m0s"), None, now).is_none());
        let bad = timed_out(Some("ten minutes"), None, now).unwrap();
        assert!(
            bad.contains("spec.operationTimeout \"ten minutes\""),
            "{bad}"
        );
    }

    #[test]
    fn a_snapshot_id_round_trips_and_a_foreign_one_is_refused() {
        let reference = SnapshotRef {
            restic_id: Some("4f2a9c1b".into()),
            as_of: "2026-12-01T10:00:01Z".parse().unwrap(),
        };
        assert_eq!(reference.to_id(), "4f2a9c1b@2026-12-01T10:00:01Z");
        assert_eq!(SnapshotRef::parse(&reference.to_id()), Ok(reference));
        let no_id = SnapshotRef::parse("@2026-12-01T10:00:01Z").unwrap();
        assert_eq!(no_id.restic_id, None);
        for bad in ["", "4f2a9c1b", "kopia-123@2026", "zz@2026-12-01T10:00:01Z"] {
            let error = SnapshotRef::parse(bad).unwrap_err();
            assert!(error.contains("spec.snapshotID"), "{error}");
        }
    }

    proptest! {
        #[test]
        fn any_snapshot_id_parses_or_is_refused(id in ".{0,40}") {
            let _ = SnapshotRef::parse(&id);
        }
    }
}
