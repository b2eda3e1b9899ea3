//! The backup state machine, step by step, on fixture objects (the shared examples where
//! they fit): what it does at each point and for each bad input.

use std::collections::BTreeMap;

use lifeline_api::foreign::snapshot::VolumeSnapshotContent;
use lifeline_api::foreign::volsync::ReplicationSource;
use lifeline_datamover_controller::backup::build::BackupInputs;
use lifeline_datamover_controller::backup::decide::{
    Decision, Object, Observed, Working, decide, mover_result,
};
use lifeline_datamover_controller::names::{Names, RequestKind};
use lifeline_datamover_controller::problem::Problem;
use lifeline_datamover_controller::repository::ResticSecret;
use lifeline_datamover_controller::settings::Settings;

fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
    serde_saphyr::from_str(text).unwrap()
}

fn example<T: serde::de::DeserializeOwned>(file: &str) -> T {
    let path = format!(
        "{}/../../../shared/examples/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    yaml(&std::fs::read_to_string(path).unwrap())
}

fn secret_data() -> BTreeMap<String, Vec<u8>> {
    [
        ("RESTIC_PASSWORD", "pw-123456"),
        (
            "RESTIC_REPOSITORY",
            "s3:https://s3.example.com/backups/lifeline",
        ),
        ("AWS_ACCESS_KEY_ID", "key-id"),
        ("AWS_SECRET_ACCESS_KEY", "key-secret-1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
    .collect()
}

fn content(ready: bool) -> VolumeSnapshotContent {
    yaml(&format!(
        "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshotContent\nmetadata: {{name: snapcontent-5d1c9e0a-7b2f-4c61-9a1e-0f3b2c4d5e6f}}\nspec:\n  deletionPolicy: Delete\n  driver: hostpath.lifeline.dev\n  volumeSnapshotClassName: block-snapclass\n  source: {{volumeHandle: vol-1}}\n  volumeSnapshotRef: {{namespace: shop, name: snap-1, uid: u1}}\nstatus: {{readyToUse: {ready}, snapshotHandle: snap-abc, restoreSize: 21474836480}}"
    ))
}

fn observed() -> Observed {
    Observed {
        vsb: example("volumesnapshotbackup.yaml"),
        protected_namespace_exists: true,
        volsync_installed: true,
        source_content: Some(content(true)),
        source_pvc: Some(yaml(
            "metadata: {name: orders-db-data, namespace: shop}\nspec: {storageClassName: block-fast, accessModes: [ReadWriteOnce], resources: {requests: {storage: 10Gi}}}",
        )),
        snapshot_class_exists: Some(true),
        user_secret: Some(lifeline_datamover_controller::secret_data::SecretData(
            secret_data(),
        )),
        storage_config: None,
        working: Working::default(),
        admitted: true,
        queued_recheck: std::time::Duration::from_secs(5),
    }
}

fn with_status(mut o: Observed, status: &str) -> Observed {
    o.vsb.status = Some(yaml(status));
    o
}

/// The builders' inputs for the fixture backup.
fn inputs<'a>(
    o: &'a Observed,
    secret: &'a ResticSecret,
    names: &'a Names,
    settings: &'a Settings,
) -> BackupInputs<'a> {
    BackupInputs {
        vsb: &o.vsb,
        source_content: o.source_content.as_ref().unwrap(),
        source_pvc: o.source_pvc.as_ref().unwrap(),
        secret,
        names,
        settings,
        config: None,
        mover_context: None,
    }
}

fn all_working(source: Option<ReplicationSource>) -> Working {
    Working {
        content: true,
        snapshot: true,
        pvc: true,
        secret: true,
        source,
    }
}

#[test]
fn a_backup_walks_from_queue_to_completed() {
    let mut o = observed();
    o.admitted = false;
    assert_eq!(decide(&o), Decision::Queue);
    o.admitted = true;
    assert_eq!(decide(&o), Decision::Start);

    let o = with_status(o, "{phase: InProgress, batchingStatus: Processing}");
    assert_eq!(
        decide(&o),
        Decision::Create(vec![
            Object::Content,
            Object::Snapshot,
            Object::Pvc,
            Object::Secret,
            Object::ReplicationSource
        ])
    );
    let mut running = o.clone();
    running.working = all_working(Some(yaml(
        "metadata: {name: rs}\nspec: {trigger: {manual: vsb-orders-db-x7k2p}}",
    )));
    assert_eq!(decide(&running), Decision::Running);

    let mut done = o.clone();
    done.working = all_working(Some(example("replicationsource-done.yaml")));
    assert_eq!(decide(&done), Decision::Done);

    let mut cleaning = with_status(
        done,
        "{phase: SnapshotBackupDone, batchingStatus: Processing}",
    );
    assert_eq!(decide(&cleaning), Decision::CleanUp);
    cleaning.working = Working::default();
    assert_eq!(decide(&cleaning), Decision::Complete);
    let completed = with_status(cleaning, "{phase: Completed, batchingStatus: Completed}");
    assert_eq!(decide(&completed), Decision::Settled);
}

#[test]
fn waiting_for_the_source_snapshot_is_not_failing() {
    let mut o = observed();
    o.source_content = Some(content(false));
    assert_eq!(
        decide(&o),
        Decision::Wait("the source snapshot is not ready yet")
    );
}

#[test]
fn a_failing_mover_fails_the_backup_then_cleans_up() {
    let failing: ReplicationSource = yaml(
        "metadata: {name: rs}\nspec: {trigger: {manual: vsb-orders-db-x7k2p}}\nstatus:\n  latestMoverStatus: {result: Failed, logs: 'Fatal: wrong password or no key found'}\n  conditions:\n  - {type: Synchronizing, status: 'False', reason: Error, message: 'Fatal: wrong password or no key found', lastTransitionTime: '2026-01-01T00:00:00Z'}",
    );
    assert_eq!(
        mover_result(&failing, "vsb-orders-db-x7k2p"),
        Some(Err("Fatal: wrong password or no key found".into()))
    );
    let only_mover: ReplicationSource = yaml(
        "metadata: {name: rs}\nspec: {}\nstatus: {latestMoverStatus: {result: Failed, logs: boom}}",
    );
    assert_eq!(mover_result(&only_mover, "x"), Some(Err("boom".into())));

    let mut o = with_status(
        observed(),
        "{phase: InProgress, batchingStatus: Processing}",
    );
    o.working = all_working(Some(failing));
    assert_eq!(
        decide(&o),
        Decision::Fail("Fatal: wrong password or no key found".into())
    );
    let failed = with_status(o, "{phase: Failed, batchingStatus: Completed}");
    assert_eq!(decide(&failed), Decision::CleanUp);
    let mut clean = failed;
    clean.working = Working::default();
    assert_eq!(decide(&clean), Decision::Settled);
}

#[test]
fn deletion_cleans_up_then_releases() {
    let mut o = observed();
    o.vsb.metadata.deletion_timestamp = Some(yaml("\"2026-01-01T00:00:00Z\""));
    o.working = all_working(None);
    assert_eq!(decide(&o), Decision::CleanUp);
    o.working = Working::default();
    assert_eq!(decide(&o), Decision::Release);
}

/// Breaks one input of an otherwise good backup.
type Breaker = Box<dyn Fn(&mut Observed)>;

#[test]
fn every_bad_input_is_a_named_problem() {
    let cases: Vec<(Breaker, &str)> = vec![
        (Box::new(|o| o.volsync_installed = false), "VolSyncMissing"),
        (
            Box::new(|o| o.protected_namespace_exists = false),
            "ProtectedNamespaceMissing",
        ),
        (Box::new(|o| o.user_secret = None), "ResticSecretMissing"),
        (
            Box::new(|o| {
                o.user_secret.as_mut().unwrap().remove("RESTIC_PASSWORD");
            }),
            "ResticSecretInvalid",
        ),
        (
            Box::new(|o| {
                o.user_secret
                    .as_mut()
                    .unwrap()
                    .insert("RESTIC_REPOSITORY".into(), b"ftp:nope".to_vec());
            }),
            "ResticSecretInvalid",
        ),
        (
            Box::new(|o| o.source_content = None),
            "SnapshotContentMissing",
        ),
        (
            Box::new(|o| o.snapshot_class_exists = Some(false)),
            "SnapshotClassMissing",
        ),
        (Box::new(|o| o.source_pvc = None), "SourceClaimUnknown"),
        (
            Box::new(|o| {
                o.user_secret
                    .as_mut()
                    .unwrap()
                    .insert("RESTIC_REPOSITORY".into(), b"/var/backups".to_vec());
            }),
            "LocalRepository",
        ),
    ];
    for (break_it, reason) in cases {
        let mut o = observed();
        break_it(&mut o);
        match decide(&o) {
            Decision::Reject(problem) => {
                assert_eq!(problem.reason(), reason, "{problem}");
                assert!(
                    !problem.to_string().contains("pw-123456"),
                    "no secret in {problem}"
                );
            }
            other => panic!("{reason}: expected a rejection, got {other:?}"),
        }
    }
    let missing = Problem::SecretMissing {
        namespace: "lifeline-system".into(),
        name: "default-restic".into(),
    };
    assert!(
        missing
            .to_string()
            .contains("lifeline-system/default-restic")
    );
}

/// A local path is refused: VolSync's mover cannot write outside its volumes (no flag lifts it
/// since no stand-in mover needs one).
#[test]
fn a_local_repository_is_refused() {
    let mut o = observed();
    o.user_secret
        .as_mut()
        .unwrap()
        .insert("RESTIC_REPOSITORY".into(), b"/var/backups".to_vec());
    assert!(matches!(decide(&o), Decision::Reject(p) if p.reason() == "LocalRepository"));
}

/// Fields upstream does not require are checked before anything is fetched, each by name.
#[test]
fn missing_fields_are_named_before_anything_is_fetched() {
    use lifeline_datamover_controller::backup::decide::required_fields;
    let vsb: lifeline_api::datamover::VolumeSnapshotBackup = example("volumesnapshotbackup.yaml");
    assert_eq!(required_fields(&vsb), Ok(()));
    let mut no_content = vsb.clone();
    no_content.spec.volume_snapshot_content.name = Some(" ".into());
    let problem = required_fields(&no_content).unwrap_err();
    assert!(
        problem
            .to_string()
            .starts_with("spec.volumeSnapshotContent.name is not set"),
        "{problem}"
    );
    let mut no_secret = vsb.clone();
    no_secret.spec.restic_secret_ref = None;
    let problem = required_fields(&no_secret).unwrap_err();
    assert!(
        problem
            .to_string()
            .starts_with("spec.resticSecretRef.name is not set"),
        "{problem}"
    );
    // A spec-less object (upstream's schema allows it) decodes and is named too.
    let bare: lifeline_api::datamover::VolumeSnapshotBackup = yaml(
        "apiVersion: datamover.oadp.openshift.io/v1alpha1\nkind: VolumeSnapshotBackup\nmetadata: {name: b, namespace: shop}",
    );
    assert_eq!(required_fields(&bare).unwrap_err().reason(), "FieldMissing");
}

/// A phase Lifeline never writes belongs to another controller: nothing is done with it.
#[test]
fn a_phase_we_do_not_write_is_left_alone() {
    let o = with_status(observed(), "phase: WaitingForVelero\nbatchingStatus: Held");
    assert_eq!(decide(&o), Decision::Settled);
}

/// A private CA in the restic Secret reaches the mover the only way VolSync reads one.
#[test]
fn a_custom_ca_in_the_secret_becomes_the_movers_custom_ca() {
    let o = observed();
    let mut data = secret_data();
    data.insert(
        "RESTIC_CUSTOM_CA".into(),
        b"-----BEGIN CERTIFICATE-----".to_vec(),
    );
    let secret = ResticSecret::parse(&data).unwrap();
    let names = Names::new(RequestKind::Backup, "shop", "vsb-orders-db-x7k2p");
    let settings = Settings::default();
    let inputs = inputs(&o, &secret, &names, &settings);
    let ca = inputs
        .replication_source()
        .spec
        .restic
        .unwrap()
        .custom_ca
        .unwrap();
    assert_eq!(ca.secret_name.as_deref(), Some(names.secret().as_str()));
    assert_eq!(ca.key.as_deref(), Some("RESTIC_CUSTOM_CA"));
    assert!(
        inputs
            .secret()
            .string_data
            .unwrap()
            .contains_key("RESTIC_CUSTOM_CA")
    );
    // Without one, no customCA.
    let plain = ResticSecret::parse(&secret_data()).unwrap();
    let inputs = BackupInputs {
        secret: &plain,
        ..inputs
    };
    assert!(
        inputs
            .replication_source()
            .spec
            .restic
            .unwrap()
            .custom_ca
            .is_none()
    );
}

#[test]
fn working_objects_protect_the_users_snapshot_and_use_one_repository_per_volume() {
    let o = observed();
    let secret = ResticSecret::parse(&secret_data()).unwrap();
    let names = Names::new(RequestKind::Backup, "shop", "vsb-orders-db-x7k2p");
    let settings = Settings::default();
    let inputs = inputs(&o, &secret, &names, &settings);
    let content = inputs.content();
    assert_eq!(
        content.spec.deletion_policy.as_str(),
        "Retain",
        "deleting our copy never deletes the user's data"
    );
    assert_eq!(
        content.spec.source.snapshot_handle.as_deref(),
        Some("snap-abc")
    );
    assert_eq!(
        content.spec.volume_snapshot_ref.namespace.as_deref(),
        Some("lifeline-system")
    );
    let pvc = inputs.pvc();
    let spec = pvc.spec.unwrap();
    // max(10Gi request, 20 GiB restore size)
    assert_eq!(
        spec.resources.unwrap().requests.unwrap()["storage"].0,
        "21474836480"
    );
    assert_eq!(spec.storage_class_name.as_deref(), Some("block-fast"));
    let secret = inputs.secret();
    assert_eq!(
        secret.string_data.unwrap()["RESTIC_REPOSITORY"],
        "s3:https://s3.example.com/backups/lifeline/shop/orders-db-data"
    );
    let source = inputs.replication_source();
    assert_eq!(
        source.spec.trigger.unwrap().manual.as_deref(),
        Some("vsb-orders-db-x7k2p")
    );
    let restic = source.spec.restic.unwrap();
    assert_eq!(restic.copy_method.map(|c| c.as_str()), Some("Direct"));
    assert!(restic.retain.is_none(), "by default nothing is pruned");
    assert_eq!(restic.repository.as_deref(), Some(names.secret().as_str()));
    for labels in [
        content.metadata.labels,
        pvc.metadata.labels,
        source.metadata.labels,
    ] {
        assert_eq!(
            labels.unwrap()["datamover.oadp.openshift.io/request-name"],
            "vsb-orders-db-x7k2p"
        );
    }
}

#[test]
fn a_clean_backup_completes_at_once_with_its_point_in_time_recorded() {
    use lifeline_datamover_controller::backup::decide::restore_as_of;
    let done: ReplicationSource = example("replicationsource-done.yaml");
    let as_of = restore_as_of(&done).unwrap();
    // lastSyncTime 01:03:12 is truncated to the second; the point in time is the next second.
    assert_eq!(as_of.to_string(), "2026-03-02T01:03:13Z");
    // The next backup of the volume waits for that second (admission), not this one.
    let mut o = with_status(observed(), "{phase: Cleanup, batchingStatus: Processing}");
    o.vsb.metadata.annotations =
        Some([("datamover.io/restore-as-of".to_owned(), as_of.to_string())].into());
    assert_eq!(decide(&o), Decision::Complete);
}

#[test]
fn oadps_storage_class_configmap_shapes_the_working_claim_cache_and_mover() {
    use lifeline_datamover_controller::storage_config;
    let config = storage_config::parse(
        "block-fast-config",
        &[
            ("SourceStorageClassName", "block-backup"),
            ("SourceAccessMode", "ReadOnlyMany"),
            ("SourceCacheCapacity", "2Gi"),
            ("SourceCacheAccessMode", "ReadWriteOnce"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    )
    .unwrap();
    let o = observed();
    let secret = ResticSecret::parse(&secret_data()).unwrap();
    let names = Names::new(RequestKind::Backup, "shop", "vsb-1");
    // The controller's flags are defaults: the ConfigMap wins over them.
    let settings = Settings {
        storage_class: Some("flag-class".into()),
        ..Settings::default()
    };
    let context: k8s_openapi::api::core::v1::PodSecurityContext =
        yaml("{runAsUser: 1001, fsGroup: 2000}");
    let configured = BackupInputs {
        config: Some(&config.source),
        mover_context: Some(&context),
        ..inputs(&o, &secret, &names, &settings)
    };
    let pvc = configured.pvc().spec.unwrap();
    assert_eq!(pvc.storage_class_name.as_deref(), Some("block-backup"));
    assert_eq!(pvc.access_modes.unwrap(), ["ReadOnlyMany"]);
    let restic = serde_json::to_value(configured.replication_source().spec.restic).unwrap();
    assert_eq!(restic["cacheCapacity"], "2Gi");
    assert_eq!(
        restic["cacheAccessModes"],
        serde_json::json!(["ReadWriteOnce"])
    );
    assert_eq!(
        restic["cacheStorageClassName"], "block-backup",
        "never left to the cluster default when the class has a ConfigMap"
    );
    assert_eq!(restic["moverSecurityContext"]["fsGroup"], 2000);

    // Without a ConfigMap the flags apply, and the cache class is VolSync's default.
    let plain = inputs(&o, &secret, &names, &settings);
    assert_eq!(
        plain.pvc().spec.unwrap().storage_class_name.as_deref(),
        Some("flag-class")
    );
    let restic = serde_json::to_value(plain.replication_source().spec.restic).unwrap();
    assert!(
        restic
            .get("cacheStorageClassName")
            .is_none_or(|v| v.is_null())
    );

    // A bad value in the ConfigMap fails the backup, naming the key and the ConfigMap.
    let mut bad = observed();
    bad.storage_config = Some((
        "block-fast-config".into(),
        [("SourceCacheCapacity".to_owned(), "lots".to_owned())].into(),
    ));
    let Decision::Reject(problem) = decide(&bad) else {
        panic!("a bad ConfigMap is refused")
    };
    assert_eq!(problem.reason(), "StorageConfigInvalid");
    assert!(
        problem
            .to_string()
            .contains("ConfigMap block-fast-config: SourceCacheCapacity"),
        "{problem}"
    );
}
