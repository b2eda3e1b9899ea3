//! Every sample object in `../shared/examples/` — YAML as users and the other controllers write
//! it — reads into our types and writes back as the same JSON value: no field lost, none invented.

use std::fs;
use std::path::PathBuf;

use lifeline_api::datamover::{VolumeSnapshotBackup, VolumeSnapshotRestore};
use lifeline_api::foreign::volsync::{ReplicationDestination, ReplicationSource};
use lifeline_api::replication::{VolumeReplication, VolumeReplicationClass};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/examples")
}

fn load(name: &str) -> Value {
    let path = examples_dir().join(name);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn round_trip<T: DeserializeOwned + Serialize>(value: &Value) -> Value {
    let typed: T = serde_json::from_value(value.clone()).expect("deserialises");
    serde_json::to_value(&typed).expect("serialises")
}

/// Which of our types reads a sample, by its kind; `None` for kinds with no typed view.
fn round_trip_by_kind(value: &Value) -> Option<Value> {
    Some(match value["kind"].as_str()? {
        "VolumeReplication" => round_trip::<VolumeReplication>(value),
        "VolumeReplicationClass" => round_trip::<VolumeReplicationClass>(value),
        "VolumeSnapshotBackup" => round_trip::<VolumeSnapshotBackup>(value),
        "VolumeSnapshotRestore" => round_trip::<VolumeSnapshotRestore>(value),
        "ReplicationSource" => round_trip::<ReplicationSource>(value),
        "ReplicationDestination" => round_trip::<ReplicationDestination>(value),
        _ => return None,
    })
}

#[test]
fn every_example_round_trips_unchanged() {
    let mut checked = Vec::new();
    for entry in fs::read_dir(examples_dir()).expect("../shared/examples exists") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let original = load(&name);
        if original["kind"] == "Secret" {
            continue; // a core kind: k8s-openapi owns it
        }
        let back = round_trip_by_kind(&original)
            .unwrap_or_else(|| panic!("{name}: no Lifeline type reads kind {}", original["kind"]));
        assert_eq!(back, original, "{name} changed in a round trip");
        checked.push(name);
    }
    // The samples this test was written against; a new one is picked up automatically.
    for expected in [
        "volumereplication.yaml",
        "volumereplication-with-status.yaml",
        "volumereplicationclass.yaml",
        "volumesnapshotbackup.yaml",
        "volumesnapshotrestore.yaml",
        "replicationsource-done.yaml",
        "replicationdestination-done.yaml",
    ] {
        assert!(
            checked.iter().any(|c| c == expected),
            "{expected} not checked"
        );
    }
}

#[test]
fn typed_fields_carry_the_upstream_strings() {
    use lifeline_api::condition::find_condition;
    use lifeline_api::replication::{ConditionType, CurrentState, ReplicationState};

    let vr: VolumeReplication =
        serde_json::from_value(load("volumereplication-with-status.yaml")).unwrap();
    assert_eq!(vr.spec.replication_state, ReplicationState::Primary);
    assert!(!vr.spec.auto_resync());
    let status = vr.status.unwrap();
    assert_eq!(status.state(), Some(CurrentState::Primary));
    assert_eq!(status.last_sync_bytes, Some(1_048_576));
    let replicating = find_condition(&status.conditions, ConditionType::Replicating.as_str());
    assert_eq!(replicating.unwrap().reason, "Replicating");

    let source: ReplicationSource =
        serde_json::from_value(load("replicationsource-done.yaml")).unwrap();
    let manual = source.spec.trigger.unwrap().manual;
    assert_eq!(manual, source.status.unwrap().sync.last_manual_sync);
}

#[test]
fn unknown_enum_strings_are_rejected() {
    let mut vr = load("volumereplication.yaml");
    vr["spec"]["replicationState"] = "tertiary".into();
    let err = serde_json::from_value::<VolumeReplication>(vr).unwrap_err();
    assert!(err.to_string().contains("tertiary"), "{err}");
}
