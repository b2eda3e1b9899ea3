//! A working VolumeSnapshot the snapshot-controller stopped deleting. It refuses to delete a
//! snapshot while a Pending claim is being created from it (Event `SnapshotDeletePending`) and,
//! as its own code notes ("should requeue this?", external-snapshotter v8.4.0), does not look
//! again until the snapshot changes or its resync comes round (15 minutes by default): a request
//! deleted while its working claim was still being restored from the snapshot stayed deleting
//! that long. The data mover deletes its working claim first and the snapshot only once the
//! claim is gone; should the controller's cache still have held the claim then, the data mover
//! touches the deleting snapshot (an annotation) so that the controller looks again. Pure.

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use lifeline_api::foreign::snapshot::VolumeSnapshot;

/// Annotation (Lifeline's) on a deleting working snapshot: when the data mover last asked the
/// snapshot-controller to look at it again.
pub const NUDGED_AT: &str = "datamover.io/deletion-nudged-at";

/// How long a deleting snapshot is left to the snapshot-controller before the first nudge, and
/// between nudges: its normal path takes well under a second.
pub const PATIENCE: SignedDuration = SignedDuration::from_secs(10);

/// The value to write to [`NUDGED_AT`] when a nudge is due: the snapshot has been deleting for
/// [`PATIENCE`] and was not nudged within it (an unreadable value counts as never).
pub fn nudge(snapshot: &VolumeSnapshot, now: Timestamp) -> Option<String> {
    let deleting_since = snapshot.metadata.deletion_timestamp.as_ref()?.0;
    let last = snapshot
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(NUDGED_AT))
        .and_then(|v| v.parse::<Timestamp>().ok());
    let waited = |since: Timestamp| now.duration_since(since) >= PATIENCE;
    (waited(deleting_since) && last.is_none_or(waited)).then(|| now.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(deleting_since: Option<&str>, nudged_at: Option<&str>) -> VolumeSnapshot {
        let mut metadata = serde_json::json!({"name": "vsb-x-snapshot", "namespace": "p"});
        if let Some(at) = deleting_since {
            metadata["deletionTimestamp"] = at.into();
            metadata["finalizers"] = serde_json::json!([
                "snapshot.storage.kubernetes.io/volumesnapshot-bound-protection"
            ]);
        }
        if let Some(at) = nudged_at {
            metadata["annotations"] = serde_json::json!({ NUDGED_AT: at });
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
            "metadata": metadata,
            "spec": {"source": {"volumeSnapshotContentName": "vsb-x-content"}},
        }))
        .unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_snapshot_deleting_past_the_patience_is_nudged_once_per_patience() {
        let now = at("2026-12-03T12:00:30Z");
        // Not deleting, or deleting for less than the patience: left to the controller.
        assert_eq!(nudge(&snapshot(None, None), now), None);
        assert_eq!(
            nudge(&snapshot(Some("2026-12-03T12:00:25Z"), None), now),
            None
        );
        // Deleting for longer, never nudged: nudged now.
        assert_eq!(
            nudge(&snapshot(Some("2026-12-03T12:00:00Z"), None), now).as_deref(),
            Some("2026-12-03T12:00:30Z")
        );
        // Nudged recently: not again yet; nudged a patience ago: again.
        let deleting = Some("2026-12-03T12:00:00Z");
        assert_eq!(
            nudge(&snapshot(deleting, Some("2026-12-03T12:00:25Z")), now),
            None
        );
        assert!(nudge(&snapshot(deleting, Some("2026-12-03T12:00:20Z")), now).is_some());
    }

    #[test]
    fn an_unreadable_nudge_time_counts_as_never() {
        let now = at("2026-12-03T12:00:30Z");
        for value in ["", "yesterday", "2026-13-45T99:00:00Z", "\u{0}"] {
            assert!(
                nudge(&snapshot(Some("2026-12-03T12:00:00Z"), Some(value)), now).is_some(),
                "{value:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_annotation_value_is_taken_without_panicking(value in ".*") {
            let now = at("2026-12-03T12:00:30Z");
            let _ = nudge(&snapshot(Some("2026-12-03T12:00:00Z"), Some(&value)), now);
        }
    }
}
