//! Every value the data mover parses from users' objects, over arbitrary input: a result or a
//! refusal naming the key, never a panic (one panic restarts the controller and stops every
//! backup and restore in the cluster: `SnapshotRetainPolicyWithin: "1é"` did).

use std::collections::BTreeMap;

use lifeline_datamover_controller::repository::{OadpSecretSettings, PASSED_KEYS, ResticSecret};
use lifeline_datamover_controller::velero::{download, request, upload};
use lifeline_datamover_controller::{progress, sizes, storage_config};
use proptest::prelude::*;

/// The keys each parser reads, so generated maps hit them and not only random names.
const SECRET_KEYS: &[&str] = &[
    "restic-prune-interval",
    "SnapshotRetainPolicyHourly",
    "SnapshotRetainPolicyDaily",
    "SnapshotRetainPolicyWeekly",
    "SnapshotRetainPolicyMonthly",
    "SnapshotRetainPolicyYearly",
    "SnapshotRetainPolicyWithin",
    "SnapshotRetainPolicyOther",
    "SnapshotScheduleCron",
    "RESTIC_CUSTOM_CA",
    "RESTIC_REST_USERNAME",
    "RESTIC_REST_PASSWORD",
];
const CONFIG_KEYS: &[&str] = &[
    "SourceCacheCapacity",
    "SourceMoverSecurityContext",
    "SourceStorageClassName",
    "SourceAccessMode",
    "SourceCacheStorageClassName",
    "SourceCacheAccessMode",
    "DestinationCacheCapacity",
    "DestinationMoverSecurityContext",
    "DestinationStorageClassName",
    "DestinationAccessMode",
    "DestinationCacheStorageClassName",
    "DestinationCacheAccessMode",
];

fn key(known: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(known).prop_map(str::to_owned),
        2 => prop::sample::select(PASSED_KEYS).prop_map(str::to_owned),
        1 => "\\PC{0,12}",
    ]
}

/// Values that look nearly right (digits and units, repository forms) as well as any text.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{0,3}[ymdhé ]{0,2}[0-9]{0,2}[a-zé]?",
        "(s3:|rest:|azure:|gs:|b2:|swift:|/|sftp:)?(https?://)?\\PC{0,20}",
        "-?[0-9]{0,25}(\\.[0-9]*)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m|e[0-9]+)?",
        "\\PC{0,30}",
    ]
}

/// Text Velero's requests carry where the mover parses it: phases, durations, snapshot ids.
fn request_text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "New",
                "Accepted",
                "Prepared",
                "InProgress",
                "Canceling",
                "Canceled",
                "Completed",
                "Failed",
                "lifeline",
                "velero",
                "CSI",
                ""
            ][..]
        )
        .prop_map(str::to_owned),
        "[0-9]{0,4}(h|m|s|ms|µs|x)?[0-9]{0,3}(s|m)?",
        "[0-9a-f]{0,10}@?[0-9]{0,4}-?[0-9]{0,2}-?[0-9]{0,2}T?[0-9:]{0,8}Z?",
        "\\PC{0,20}",
    ]
}

proptest! {
    /// Any DataUpload or DataDownload Velero (or a person) could write: a decision, never a
    /// panic; a refusal names a field.
    #[test]
    fn velero_requests_end_in_a_decision(
        phase in request_text(), mover in request_text(), timeout in request_text(), id in request_text(),
        kind in request_text(), cancel in any::<Option<bool>>(), size in any::<Option<i64>>(),
    ) {
        let du: lifeline_api::foreign::velero::DataUpload = serde_json::from_value(serde_json::json!({
            "apiVersion": "velero.io/v2alpha1", "kind": "DataUpload", "metadata": {"name": "x", "namespace": "velero"},
            "spec": {"datamover": mover, "operationTimeout": timeout, "snapshotType": kind, "cancel": cancel,
                     "csiSnapshot": {"volumeSnapshot": id}, "sourceNamespace": id, "backupStorageLocation": "default"},
            "status": {"phase": phase, "acceptedTimestamp": "2026-12-01T10:00:00Z"}})).unwrap();
        let now = "2026-12-01T10:05:00Z".parse().unwrap();
        let observed = upload::Observed {
            du, mover: "lifeline".into(), now, served: Ok(()), keys: Some(Ok(())),
            snapshot: None, backup: None, secret: false, source_block: false,
        };
        if let upload::Decision::Fail(message) = upload::decide(&observed) {
            prop_assert!(message.contains("spec.") || message.contains("VolumeSnapshot"), "{message}");
        }
        let dd: lifeline_api::foreign::velero::DataDownload = serde_json::from_value(serde_json::json!({
            "apiVersion": "velero.io/v2alpha1", "kind": "DataDownload", "metadata": {"name": "x", "namespace": "velero"},
            "spec": {"datamover": mover, "operationTimeout": timeout, "snapshotID": id, "cancel": cancel, "snapshotSize": size,
                     "targetVolume": {"pvc": kind, "pv": "", "namespace": mover}, "sourceNamespace": id, "backupStorageLocation": "default"},
            "status": {"phase": phase, "acceptedTimestamp": "2026-12-01T10:00:00Z"}})).unwrap();
        let observed = download::Observed {
            dd, mover: "lifeline".into(), now, served: Ok(()), keys: Some(Ok(())), target: None,
            secret: false, claim: None, claim_volume: None, destination: None, volume: None,
        };
        let _ = download::decide(&observed);
        let _ = request::SnapshotRef::parse(&id);
        let _ = request::timed_out(Some(&timeout), None, now);
        let _ = download::progress_of(None, size);
    }

    #[test]
    fn the_restic_secret_parses_or_names_what_to_fix(
        data in prop::collection::btree_map(key(SECRET_KEYS), value(), 0..12),
        raw in prop::collection::vec(any::<u8>(), 0..8),
    ) {
        let mut bytes: BTreeMap<String, Vec<u8>> =
            data.iter().map(|(k, v)| (k.clone(), v.clone().into_bytes())).collect();
        let _ = OadpSecretSettings::parse(&data);
        let _ = ResticSecret::parse(&bytes);
        bytes.insert("RESTIC_PASSWORD".into(), raw);
        if let Err(e) = ResticSecret::parse(&bytes) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn the_storage_class_configmap_parses_or_names_the_key(
        data in prop::collection::btree_map(key(CONFIG_KEYS), value(), 0..12),
    ) {
        if let Err(e) = storage_config::parse("class-config", &data) {
            prop_assert!(e.to_string().contains("class-config"));
        }
    }

    #[test]
    fn quantities_and_mover_logs_never_panic(text in value(), log in "(\\PC{0,40}\n){0,6}") {
        let _ = sizes::bytes(&text);
        let _ = sizes::larger(Some(&text), Some("1Gi"));
        let _ = progress::size(&text);
        let _ = progress::restic_duration(&text);
        let _ = progress::status_line(&text);
        let _ = progress::report(&log);
        let _ = progress::totals(&log);
        let _ = progress::saved_snapshot(&log);
    }
}

#[test]
fn a_retain_within_with_a_multibyte_unit_is_refused_by_name() {
    let data = BTreeMap::from([("SnapshotRetainPolicyWithin".to_owned(), "1é".to_owned())]);
    let e = OadpSecretSettings::parse(&data).unwrap_err().to_string();
    assert!(e.contains("SnapshotRetainPolicyWithin"), "{e}");
}
