use serde_json::json;

use super::*;

fn du(extra_spec: serde_json::Value, status: serde_json::Value) -> DataUpload {
    let mut spec = json!({"snapshotType": "CSI", "sourcePVC": "data", "sourceNamespace": "app", "datamover": "lifeline",
        "backupStorageLocation": "default", "operationTimeout": "10m0s",
        "csiSnapshot": {"volumeSnapshot": "velero-data-abcde", "storageClass": "sc"}});
    for (k, v) in extra_spec.as_object().unwrap() {
        spec[k] = v.clone();
    }
    serde_json::from_value(json!({"apiVersion": "velero.io/v2alpha1", "kind": "DataUpload",
        "metadata": {"name": "nightly-x7k2p", "namespace": "velero", "labels": {"velero.io/backup-name": "nightly"}},
        "spec": spec, "status": status}))
    .unwrap()
}

fn snapshot(ready: bool, backup: &str) -> VolumeSnapshot {
    serde_json::from_value(json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
        "metadata": {"name": "velero-data-abcde", "namespace": "app", "labels": {"velero.io/backup-name": backup}},
        "spec": {"source": {"persistentVolumeClaimName": "data"}},
        "status": {"readyToUse": ready, "boundVolumeSnapshotContentName": "snapcontent-1"}}))
    .unwrap()
}

fn backup(status: serde_json::Value, annotations: serde_json::Value) -> VolumeSnapshotBackup {
    serde_json::from_value(json!({"apiVersion": "datamover.oadp.openshift.io/v1alpha1", "kind": "VolumeSnapshotBackup",
        "metadata": {"name": "nightly-x7k2p", "namespace": "velero", "annotations": annotations},
        "spec": {"volumeSnapshotContent": {"name": "snapcontent-1"}, "protectedNamespace": "velero"},
        "status": status}))
    .unwrap()
}

fn observed(du: DataUpload) -> Observed {
    Observed {
        du,
        mover: "lifeline".into(),
        now: "2026-12-01T10:05:00Z".parse().unwrap(),
        served: Ok(()),
        keys: Some(Ok(())),
        snapshot: Some(snapshot(true, "nightly")),
        backup: None,
        secret: false,
        source_block: false,
    }
}

const ACCEPTED: &str = "2026-12-01T10:00:00Z";

fn accepted(phase: &str) -> serde_json::Value {
    json!({"phase": phase, "acceptedTimestamp": ACCEPTED})
}

#[test]
fn another_movers_request_is_never_touched() {
    for mover in [
        json!("velero"),
        json!(""),
        json!("other"),
        serde_json::Value::Null,
    ] {
        let mut o = observed(du(json!({"datamover": mover}), json!({})));
        o.backup = Some(backup(json!({}), json!({})));
        assert_eq!(decide(&o), Decision::Ignore, "{mover}");
    }
    assert_eq!(
        decide(&observed(du(json!({}), json!({"phase": "Paused"})))),
        Decision::Ignore
    );
}

#[test]
fn a_new_request_is_taken_and_a_cancelled_one_is_not() {
    assert_eq!(decide(&observed(du(json!({}), json!({})))), Decision::Take);
    assert_eq!(
        decide(&observed(du(json!({}), json!({"phase": "New"})))),
        Decision::Take
    );
    assert_eq!(
        decide(&observed(du(
            json!({"cancel": true}),
            json!({"phase": "New"})
        ))),
        Decision::CancelUntaken
    );
}

#[test]
fn an_accepted_request_makes_the_secret_and_the_backup_once_the_snapshot_is_ready() {
    let mut o = observed(du(json!({}), accepted("Accepted")));
    assert_eq!(
        decide(&o),
        Decision::Create {
            secret: true,
            backup: true
        }
    );
    o.secret = true;
    assert_eq!(
        decide(&o),
        Decision::Create {
            secret: false,
            backup: true
        }
    );
    o.snapshot = Some(snapshot(false, "nightly"));
    assert_eq!(decide(&o), Decision::Wait("Velero's snapshot to be ready"));
}

#[test]
fn bad_input_fails_the_request_naming_what_to_fix() {
    let cases = [
        (json!({"snapshotType": "FS"}), "spec.snapshotType is \"FS\""),
        (
            json!({"csiSnapshot": null}),
            "spec.csiSnapshot.volumeSnapshot",
        ),
        (json!({"sourceNamespace": ""}), "spec.sourceNamespace"),
        (
            json!({"backupStorageLocation": " "}),
            "spec.backupStorageLocation",
        ),
        (
            json!({"operationTimeout": "soon"}),
            "spec.operationTimeout \"soon\"",
        ),
    ];
    for (spec, expected) in cases {
        let Decision::Fail(message) = decide(&observed(du(spec, accepted("Accepted")))) else {
            panic!("{expected}");
        };
        assert!(message.contains(expected), "{message}");
    }
    let mut o = observed(du(json!({}), accepted("Accepted")));
    o.keys = Some(Err(LocationError::ReadOnly("default".into())));
    assert!(matches!(decide(&o), Decision::Fail(m) if m.contains("ReadOnly")));
    o.keys = Some(Ok(()));
    o.snapshot = None;
    assert!(
        matches!(decide(&o), Decision::Fail(m) if m.contains("VolumeSnapshot app/velero-data-abcde"))
    );
    o.snapshot = Some(snapshot(true, "nightly"));
    o.source_block = true;
    assert!(
        matches!(decide(&o), Decision::Fail(m) if m.contains("app/data (spec.sourcePVC) is volumeMode Block"))
    );
    o.served = Err("not served".into());
    assert_eq!(decide(&o), Decision::Fail("not served".into()));
}

#[test]
fn the_operation_timeout_limits_preparing_not_moving() {
    // Still Accepted (waiting for a slot) past the limit: failed, as Velero's own mover does.
    let mut o = observed(du(json!({"operationTimeout": "4m"}), accepted("Accepted")));
    o.backup = Some(backup(json!({"batchingStatus": "Queued"}), json!({})));
    assert!(matches!(decide(&o), Decision::Fail(m) if m.contains("operationTimeout (4m)")));
    // Moving data for longer than the limit is no failure (Velero's default is 10m).
    let mut o = observed(du(
        json!({"operationTimeout": "4m"}),
        accepted("InProgress"),
    ));
    o.backup = Some(backup(
        json!({"phase": "InProgress", "batchingStatus": "Processing"}),
        json!({}),
    ));
    assert!(matches!(
        decide(&o),
        Decision::Mirror {
            phase: DataMovePhase::InProgress,
            ..
        }
    ));
}

#[test]
fn the_backups_phases_and_progress_become_veleros() {
    let mut o = observed(du(json!({}), accepted("Accepted")));
    o.backup = Some(backup(json!({"batchingStatus": "Queued"}), json!({})));
    assert_eq!(
        decide(&o),
        Decision::Mirror {
            phase: DataMovePhase::Accepted,
            progress: None,
            message: Some("waiting for a backup slot (--max-concurrent-backups)".into())
        }
    );
    o.backup = Some(backup(
        json!({"phase": "InProgress", "batchingStatus": "Processing", "progress": {"phase": "Preparing"}}),
        json!({}),
    ));
    assert!(matches!(
        decide(&o),
        Decision::Mirror {
            phase: DataMovePhase::Prepared,
            ..
        }
    ));
    o.backup = Some(backup(
        json!({"phase": "InProgress", "batchingStatus": "Processing",
        "progress": {"phase": "BackingUp", "bytesDone": 1024, "bytesTotal": 4096}}),
        json!({}),
    ));
    let Decision::Mirror {
        phase, progress, ..
    } = decide(&o)
    else {
        panic!()
    };
    assert_eq!(phase, DataMovePhase::InProgress);
    assert_eq!(
        progress,
        Some(DataMoveProgress {
            total_bytes: Some(4096),
            bytes_done: Some(1024)
        })
    );
    // Never back to an earlier phase.
    let mut later = observed(du(json!({}), accepted("InProgress")));
    later.backup = Some(backup(
        json!({"phase": "InProgress", "batchingStatus": "Processing"}),
        json!({}),
    ));
    assert!(matches!(
        decide(&later),
        Decision::Mirror {
            phase: DataMovePhase::InProgress,
            ..
        }
    ));
}

#[test]
fn a_completed_backup_gives_the_snapshot_id_a_restore_needs() {
    let mut o = observed(du(json!({}), accepted("InProgress")));
    o.backup = Some(backup(
        json!({"phase": "Completed", "resticrepository": "s3:https://s3/b/plugins/lifeline/app/data", "progress": {"phase": "Done", "bytesDone": 4096, "bytesTotal": 4096}}),
        json!({"datamover.io/restore-as-of": "2026-12-01T10:03:01Z", RESTIC_SNAPSHOT_ID: "4f2a9c1b", "datamover.io/source-pvc-name": "data"}),
    ));
    let Decision::Complete {
        snapshot_id,
        result,
        progress,
    } = decide(&o)
    else {
        panic!()
    };
    assert_eq!(snapshot_id, "4f2a9c1b@2026-12-01T10:03:01Z");
    assert_eq!(
        result["repository"],
        "s3:https://s3/b/plugins/lifeline/app/data"
    );
    assert_eq!(result["resticSnapshotID"], "4f2a9c1b");
    assert_eq!(progress.unwrap().bytes_done, Some(4096));
    o.backup = Some(backup(json!({"phase": "Completed"}), json!({})));
    assert!(matches!(decide(&o), Decision::Fail(m) if m.contains("point in time")));
    o.backup = Some(backup(
        json!({"phase": "Failed", "conditions": [{"type": "Reconciled", "status": "False", "reason": "Error",
        "message": "the restic mover failed: wrong password", "lastTransitionTime": ACCEPTED}]}),
        json!({}),
    ));
    assert_eq!(
        decide(&o),
        Decision::Fail("the restic mover failed: wrong password".into())
    );
}

#[test]
fn cancel_deletes_the_backup_then_what_is_left_then_says_canceled() {
    let mut o = observed(du(json!({"cancel": true}), accepted("InProgress")));
    o.backup = Some(backup(json!({"phase": "InProgress"}), json!({})));
    assert_eq!(decide(&o), Decision::Cancel);
    let mut o = observed(du(json!({"cancel": true}), accepted("Canceling")));
    o.backup = Some(backup(json!({}), json!({})));
    o.secret = true;
    assert_eq!(decide(&o), Decision::CleanUp(vec![Leftover::Backup]));
    o.backup = None;
    assert_eq!(
        decide(&o),
        Decision::CleanUp(vec![Leftover::Secret, Leftover::Snapshot])
    );
    o.secret = false;
    o.snapshot = None;
    assert_eq!(decide(&o), Decision::Canceled);
}

#[test]
fn a_finished_request_leaves_nothing_and_spares_another_backups_snapshot() {
    let mut o = observed(du(json!({}), json!({"phase": "Completed"})));
    o.secret = true;
    assert_eq!(
        decide(&o),
        Decision::CleanUp(vec![Leftover::Secret, Leftover::Snapshot])
    );
    o.secret = false;
    o.snapshot = Some(snapshot(true, "another-backup"));
    assert_eq!(decide(&o), Decision::Ignore);
    o.snapshot = None;
    assert_eq!(decide(&o), Decision::Ignore);
}
