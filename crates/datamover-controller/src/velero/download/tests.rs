use serde_json::json;

use super::*;

fn dd(extra_spec: serde_json::Value, status: serde_json::Value) -> DataDownload {
    let mut spec = json!({"targetVolume": {"pvc": "data", "pv": "", "namespace": "app-restored"},
        "backupStorageLocation": "default", "datamover": "lifeline", "snapshotID": "4f2a9c1b@2026-12-01T10:03:01Z",
        "sourceNamespace": "app", "operationTimeout": "10m0s"});
    for (k, v) in extra_spec.as_object().unwrap() {
        spec[k] = v.clone();
    }
    serde_json::from_value(json!({"apiVersion": "velero.io/v2alpha1", "kind": "DataDownload",
        "metadata": {"name": "restore-1-abcde", "namespace": "velero", "uid": "u-1"}, "spec": spec, "status": status}))
    .unwrap()
}

fn target(extra: serde_json::Value) -> PersistentVolumeClaim {
    let mut spec = json!({"storageClassName": "sc", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
        "selector": {"matchLabels": {DYNAMIC_PV_RESTORE: "app-restored.data.x1y2z"}}});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    serde_json::from_value(
        json!({"metadata": {"name": "data", "namespace": "app-restored"}, "spec": spec}),
    )
    .unwrap()
}

fn volume(claim: (&str, &str)) -> PersistentVolume {
    serde_json::from_value(
        json!({"metadata": {"name": "pv-1", "labels": {RESTORED_BY: "u-1"}},
        "spec": {"claimRef": {"namespace": claim.0, "name": claim.1}}}),
    )
    .unwrap()
}

fn destination(status: serde_json::Value) -> ReplicationDestination {
    serde_json::from_value(json!({"apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationDestination",
        "metadata": {"name": "restore-1-abcde-restore", "namespace": "velero"}, "spec": {}, "status": status})).unwrap()
}

fn claim() -> PersistentVolumeClaim {
    serde_json::from_value(json!({"metadata": {"name": "restore-1-abcde-restore", "namespace": "velero"}, "spec": {"volumeName": "pv-1"}})).unwrap()
}

fn observed(dd: DataDownload) -> Observed {
    Observed {
        dd,
        mover: "lifeline".into(),
        now: "2026-12-01T11:05:00Z".parse().unwrap(),
        served: Ok(()),
        keys: Some(Ok(())),
        target: Some(target(json!({}))),
        secret: false,
        claim: None,
        claim_volume: None,
        destination: None,
        volume: None,
    }
}

fn moving(phase: &str) -> serde_json::Value {
    json!({"phase": phase, "acceptedTimestamp": "2026-12-01T11:00:00Z"})
}

#[test]
fn only_its_own_requests_are_taken() {
    assert_eq!(
        decide(&observed(dd(json!({"datamover": "velero"}), json!({})))),
        Decision::Ignore
    );
    assert_eq!(decide(&observed(dd(json!({}), json!({})))), Decision::Take);
    assert_eq!(
        decide(&observed(dd(json!({"cancel": true}), json!({})))),
        Decision::CancelUntaken
    );
}

#[test]
fn the_restore_walks_create_run_keep_release_hand_over_complete() {
    let mut o = observed(dd(json!({}), moving("Accepted")));
    o.keys = None;
    assert_eq!(decide(&o), Decision::ReadLocation);
    o.keys = Some(Ok(()));
    assert_eq!(
        decide(&o),
        Decision::Create {
            secret: true,
            claim: true,
            destination: true
        }
    );
    o.secret = true;
    o.claim = Some(claim());
    o.destination = Some(destination(json!({})));
    assert_eq!(decide(&o), Decision::Running);
    o.destination = Some(destination(json!({"lastManualSync": "restore-1-abcde"})));
    assert_eq!(decide(&o), Decision::Wait("the working claim's volume"));
    o.claim_volume = Some(volume(("velero", "restore-1-abcde-restore")));
    assert_eq!(decide(&o), Decision::Keep);
    o.volume = o.claim_volume.clone();
    assert_eq!(decide(&o), Decision::Release);
    o.claim = None;
    o.destination = None;
    assert_eq!(decide(&o), Decision::HandOver);
    o.volume = Some(volume(("app-restored", "data")));
    assert_eq!(
        decide(&o),
        Decision::Wait("the restored claim to bind to its volume")
    );
    o.target = Some(
        serde_json::from_value(
            json!({"metadata": {"name": "data", "namespace": "app-restored"},
        "spec": {"volumeName": "pv-1"}, "status": {"phase": "Bound"}}),
        )
        .unwrap(),
    );
    assert_eq!(decide(&o), Decision::Complete);
    // Handed over, a cancel cannot take the data back.
    let mut late = o.clone();
    late.dd.spec.cancel = Some(true);
    assert_eq!(decide(&late), Decision::Complete);
}

#[test]
fn bad_input_fails_naming_the_field() {
    let cases = [
        (json!({"snapshotID": "kopia-abc"}), "spec.snapshotID"),
        (
            json!({"targetVolume": {"pvc": "", "pv": "", "namespace": "x"}}),
            "spec.targetVolume",
        ),
        (json!({"sourceNamespace": ""}), "spec.sourceNamespace"),
        (
            json!({"operationTimeout": "1 hour"}),
            "spec.operationTimeout",
        ),
    ];
    for (spec, expected) in cases {
        let Decision::Fail(message) = decide(&observed(dd(spec, moving("Accepted")))) else {
            panic!("{expected}")
        };
        assert!(message.contains(expected), "{message}");
    }
    let mut block = observed(dd(json!({}), moving("Accepted")));
    block.target = Some(target(json!({"volumeMode": "Block"})));
    assert!(matches!(decide(&block), Decision::Fail(m) if m.contains("volumeMode Block")));
    let mut waiting = observed(dd(json!({}), moving("Accepted")));
    waiting.target = None;
    assert_eq!(
        decide(&waiting),
        Decision::Wait("Velero to create the claim it restores")
    );
    waiting.target = Some(target(json!({})));
    waiting.keys = Some(Err(LocationError::Missing("default".into())));
    assert!(matches!(decide(&waiting), Decision::Fail(m) if m.contains("not found")));
    let mut failed = observed(dd(json!({}), moving("InProgress")));
    failed.secret = true;
    failed.claim = Some(claim());
    failed.destination = Some(destination(
        json!({"conditions": [{"type": "Synchronizing", "status": "False", "reason": "Error",
        "message": "restic: wrong password or no key found", "lastTransitionTime": "2026-12-01T11:01:00Z"}]}),
    ));
    // Whatever the mover-failure rules say, a failure is never mistaken for success.
    assert_ne!(decide(&failed), Decision::Keep);
}

#[test]
fn cancel_and_failure_leave_nothing_and_free_a_kept_volume() {
    let mut o = observed(dd(json!({"cancel": true}), moving("InProgress")));
    o.destination = Some(destination(json!({})));
    assert_eq!(decide(&o), Decision::Cancel);
    let mut o = observed(dd(json!({"cancel": true}), moving("Canceling")));
    o.destination = Some(destination(json!({})));
    o.claim = Some(claim());
    o.secret = true;
    o.volume = Some(volume(("velero", "restore-1-abcde-restore")));
    assert_eq!(
        decide(&o),
        Decision::CleanUp(vec![
            Leftover::Destination,
            Leftover::Claim,
            Leftover::Secret,
            Leftover::Volume
        ])
    );
    o.destination = None;
    o.claim = None;
    o.secret = false;
    o.volume = None;
    assert_eq!(decide(&o), Decision::Canceled);
    let mut done = observed(dd(json!({}), json!({"phase": "Completed"})));
    done.volume = Some(volume(("app-restored", "data")));
    assert_eq!(
        decide(&done),
        Decision::Ignore,
        "a handed-over volume is the claim's"
    );
}

#[test]
fn progress_and_phases_only_move_forward() {
    let counts = crate::progress::Counts {
        files_done: 1,
        bytes_done: 10,
        files_total: None,
        bytes_total: None,
    };
    assert_eq!(
        progress_of(Some(counts), Some(100)),
        DataMoveProgress {
            total_bytes: Some(100),
            bytes_done: Some(10)
        }
    );
    assert_eq!(progress_of(None, None), DataMoveProgress::default());
    assert!(forward(
        Some(DataMovePhase::Accepted),
        DataMovePhase::InProgress
    ));
    assert!(!forward(
        Some(DataMovePhase::InProgress),
        DataMovePhase::Prepared
    ));
    assert_eq!(
        restore_label(&target(json!({}))).as_deref(),
        Some("app-restored.data.x1y2z")
    );
}

#[test]
fn the_operation_timeout_limits_preparing_not_restoring() {
    let mut o = observed(dd(json!({"operationTimeout": "4m"}), moving("Accepted")));
    o.target = None;
    assert!(matches!(decide(&o), Decision::Fail(m) if m.contains("operationTimeout (4m)")));
    let mut o = observed(dd(json!({"operationTimeout": "4m"}), moving("InProgress")));
    o.secret = true;
    o.claim = Some(claim());
    o.destination = Some(destination(json!({})));
    assert_eq!(decide(&o), Decision::Running);
}
