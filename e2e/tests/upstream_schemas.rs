//! Every foreign object the data mover writes — its copy of the user's VolumeSnapshotContent,
//! the VolumeSnapshot bound to it, the ReplicationSource and the ReplicationDestination — is
//! accepted by the real API server under the upstream CRDs (VolSync v0.12.0, external-snapshotter
//! v8.2.0): the OpenAPI schema, strict field validation and every CEL rule
//! ([`lifeline_e2e::verdict`], a server-side dry run). Built with every option that changes
//! their shape (retention, private CA, mover user, point-in-time restore).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use lifeline_api::datamover::{VolumeSnapshotBackup, VolumeSnapshotRestore};
use lifeline_api::foreign::snapshot::VolumeSnapshotContent;
use lifeline_api::foreign::volsync::ResticRetainPolicy;
use lifeline_datamover_controller::backup::build::BackupInputs;
use lifeline_datamover_controller::names::{Names, RequestKind};
use lifeline_datamover_controller::repository::ResticSecret;
use lifeline_datamover_controller::restore::build::RestoreInputs;
use lifeline_datamover_controller::settings::Settings;
use lifeline_e2e::TestCluster;
use serde_json::{Value, json};

fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
    serde_saphyr::from_str(text).unwrap()
}

fn example<T: serde::de::DeserializeOwned>(file: &str) -> T {
    yaml(
        &std::fs::read_to_string(format!(
            "{}/../../shared/examples/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
}

/// The upstream group-version of each foreign kind the data mover writes.
fn api_version(kind: &str) -> &'static str {
    match kind {
        "ReplicationSource" | "ReplicationDestination" => "volsync.backube/v1alpha1",
        _ => "snapshot.storage.k8s.io/v1",
    }
}

/// What the real API server says about `object` of `kind`.
async fn problems(
    cluster: &TestCluster,
    kind: &str,
    object: &impl serde::Serialize,
) -> Vec<String> {
    let mut object = serde_json::to_value(object).unwrap();
    object["apiVersion"] = api_version(kind).into();
    object["kind"] = kind.into();
    lifeline_e2e::verdict::problems(&cluster.client(), "default", &object, None)
        .await
        .unwrap()
}

fn secret(with_ca: bool) -> ResticSecret {
    let mut data: BTreeMap<String, Vec<u8>> = [
        ("RESTIC_PASSWORD", "pw-123456"),
        ("RESTIC_REPOSITORY", "s3:https://s3.example.com/backups"),
        ("AWS_ACCESS_KEY_ID", "id"),
        ("AWS_SECRET_ACCESS_KEY", "key-secret"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
    .collect();
    if with_ca {
        data.insert(
            "RESTIC_CUSTOM_CA".into(),
            b"-----BEGIN CERTIFICATE-----".to_vec(),
        );
        // And OADP's settings in the Secret: they win over the controller's defaults.
        for (key, value) in [
            ("restic-prune-interval", "14"),
            ("SnapshotRetainPolicyDaily", "10"),
            ("SnapshotRetainPolicyWithin", "1y6m"),
        ] {
            data.insert(key.into(), value.as_bytes().to_vec());
        }
    }
    ResticSecret::parse(&data).unwrap()
}

fn settings(full: bool) -> Settings {
    if !full {
        return Settings::default();
    }
    Settings {
        storage_class: Some("fast".into()),
        access_mode: Some("ReadWriteOnce".into()),
        mover_service_account: Some("volsync-mover".into()),
        mover_run_as_user: Some(1000),
        retain: Some(ResticRetainPolicy {
            last: Some("5".into()),
            daily: Some(7),
            weekly: Some(4),
            monthly: Some(6),
            ..ResticRetainPolicy::default()
        }),
        ..Settings::default()
    }
}

#[tokio::test]
async fn backup_objects_are_valid_under_the_upstream_crds() {
    let cluster = TestCluster::start().await.unwrap();
    let vsb: VolumeSnapshotBackup = example("volumesnapshotbackup.yaml");
    let content: VolumeSnapshotContent = yaml(
        "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshotContent\nmetadata: {name: snapcontent-1}\nspec:\n  deletionPolicy: Delete\n  driver: hostpath.lifeline.dev\n  volumeSnapshotClassName: block-snapclass\n  source: {volumeHandle: vol-1}\n  volumeSnapshotRef: {namespace: shop, name: snap-1}\nstatus: {readyToUse: true, snapshotHandle: snap-abc, restoreSize: 1073741824}",
    );
    let pvc: PersistentVolumeClaim = yaml(
        "metadata: {name: orders-db-data, namespace: shop}\nspec: {storageClassName: block-fast, accessModes: [ReadWriteOnce], resources: {requests: {storage: 10Gi}}}",
    );
    let names = Names::new(RequestKind::Backup, "shop", "vsb-orders-db-x7k2p");
    let side = lifeline_datamover_controller::storage_config::parse(
        "block-fast-config",
        &[
            ("SourceStorageClassName", "block-backup"),
            ("SourceCacheCapacity", "2Gi"),
            ("SourceCacheAccessMode", "ReadWriteOnce"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    )
    .unwrap()
    .source;
    let context: k8s_openapi::api::core::v1::PodSecurityContext =
        yaml("{runAsUser: 1001, runAsGroup: 1001, fsGroup: 2000, runAsNonRoot: true}");
    for (with_ca, full) in [(false, false), (true, true)] {
        let (secret, settings) = (secret(with_ca), settings(full));
        let inputs = BackupInputs {
            vsb: &vsb,
            source_content: &content,
            source_pvc: &pvc,
            secret: &secret,
            names: &names,
            settings: &settings,
            // The full case with OADP's ConfigMap and the workload's security context too.
            config: full.then_some(&side),
            mover_context: full.then_some(&context),
        };
        let source = inputs.replication_source();
        if full {
            // The shape this case is for: a real API server rejected an integer here.
            let restic = serde_json::to_value(&source.spec.restic).unwrap();
            assert_eq!(restic["retain"]["last"], json!("5"));
            assert_eq!(restic["customCA"]["key"], json!("RESTIC_CUSTOM_CA"));
            // The Secret's SnapshotRetainPolicyDaily over --retain-daily; the flags' others kept.
            assert_eq!(restic["retain"]["daily"], json!(10));
            assert_eq!(restic["retain"]["weekly"], json!(4));
            assert_eq!(restic["retain"]["within"], json!("1y6m"));
            assert_eq!(restic["pruneIntervalDays"], json!(14));
            // The per-request Secret carries none of OADP's settings, only what restic reads.
            let passed = inputs.secret().string_data.unwrap();
            assert!(
                passed
                    .keys()
                    .all(|k| !k.starts_with("Snapshot") && k != "restic-prune-interval"),
                "{:?}",
                passed.keys()
            );
        }
        for (kind, problems) in [
            (
                "ReplicationSource",
                problems(&cluster, "ReplicationSource", &source).await,
            ),
            (
                "VolumeSnapshotContent",
                problems(&cluster, "VolumeSnapshotContent", &inputs.content()).await,
            ),
            (
                "VolumeSnapshot",
                problems(&cluster, "VolumeSnapshot", &inputs.snapshot()).await,
            ),
        ] {
            assert_eq!(
                problems,
                Vec::<String>::new(),
                "{kind} (ca {with_ca}, full {full})"
            );
        }
    }
}

#[tokio::test]
async fn restore_objects_are_valid_under_the_upstream_crds() {
    let cluster = TestCluster::start().await.unwrap();
    let mut vsr: VolumeSnapshotRestore = example("volumesnapshotrestore.yaml");
    vsr.metadata.annotations = Some(
        [(
            "datamover.io/restore-as-of".to_owned(),
            "2026-03-02T01:03:13Z".to_owned(),
        )]
        .into(),
    );
    let names = Names::new(RequestKind::Restore, "shop", "vsr-orders-db-q9w3e");
    for (with_ca, full) in [(false, false), (true, true)] {
        let (secret, settings) = (secret(with_ca), settings(full));
        let destination_side = lifeline_datamover_controller::storage_config::parse(
            "block-fast-config",
            &[
                ("DestinationStorageClassName", "block-restore"),
                ("DestinationCacheCapacity", "1Gi"),
                ("DestinationCacheAccessMode", "ReadWriteOnce"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        )
        .unwrap()
        .destination;
        let inputs = RestoreInputs {
            vsr: &vsr,
            secret: &secret,
            names: &names,
            settings: &settings,
            config: full.then_some(&destination_side),
        };
        let destination = inputs.replication_destination();
        let restic = serde_json::to_value(&destination.spec.restic).unwrap();
        assert_eq!(restic["restoreAsOf"], json!("2026-03-02T01:03:13Z"));
        if full {
            // OADP's ConfigMap shapes the restored claim and the cache.
            assert_eq!(restic["storageClassName"], json!("block-restore"));
            assert_eq!(restic["cacheStorageClassName"], json!("block-restore"));
            assert_eq!(restic["cacheCapacity"], json!("1Gi"));
        }
        assert_eq!(
            problems(&cluster, "ReplicationDestination", &destination).await,
            Vec::<String>::new(),
            "ca {with_ca}, full {full}"
        );
    }
}

/// The check itself refuses what it should: a wrong type (the `retain.last` mistake), a CEL
/// rule (a snapshot with both sources, a content reference without a namespace) and a field
/// the CRD does not declare.
#[tokio::test]
async fn the_upstream_checks_refuse_what_the_api_server_refuses() {
    let cluster = TestCluster::start().await.unwrap();
    let mut source: Value = json!({"apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationSource",
        "metadata": {"name": "x"}, "spec": {"sourcePVC": "p", "restic": {"repository": "s", "retain": {"last": 5}}}});
    let found = problems(&cluster, "ReplicationSource", &source).await;
    assert!(
        found.iter().any(|p| p.contains("spec.restic.retain.last")),
        "{found:?}"
    );
    source["spec"]["restic"]["retain"]["last"] = json!("5");
    assert_eq!(
        problems(&cluster, "ReplicationSource", &source).await,
        Vec::<String>::new()
    );
    source["spec"]["restic"]["retainPolicy"] = json!({"last": "5"});
    let found = problems(&cluster, "ReplicationSource", &source).await;
    assert!(
        found.iter().any(|p| p.contains("retainPolicy")),
        "{found:?}"
    );

    let both = json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot", "metadata": {"name": "s"},
        "spec": {"source": {"persistentVolumeClaimName": "a", "volumeSnapshotContentName": "b"}}});
    let found = problems(&cluster, "VolumeSnapshot", &both).await;
    assert!(
        found.iter().any(|p| p.contains(
            "exactly one of volumeSnapshotContentName and persistentVolumeClaimName must be set"
        )),
        "{found:?}"
    );
    let content = json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent", "metadata": {"name": "c"},
        "spec": {"deletionPolicy": "Retain", "driver": "d", "source": {"snapshotHandle": "h"}, "volumeSnapshotRef": {"name": "s"}}});
    let found = problems(&cluster, "VolumeSnapshotContent", &content).await;
    assert!(
        found.iter().any(|p| p.contains(
            "both spec.volumeSnapshotRef.name and spec.volumeSnapshotRef.namespace must be set"
        )),
        "{found:?}"
    );
}
