//! Velero's pluggable data mover on the real control plane, with Velero v1.18.1's CRDs: the
//! test makes the DataUpload, and later the DataDownload, exactly as Velero's CSI action does
//! (generateName, labels, owner references; `shared/spec/velero-datamover.md`) — the Velero
//! server itself is not run (see e2e/README.md). The data moves through the real VolSync
//! restic mover to an S3 server described by a BackupStorageLocation, and comes back byte for
//! byte into the claim Velero restores; a request for another mover is never touched; a
//! cancel mid-transfer leaves nothing behind.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolume, PersistentVolumeClaim, Secret,
};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use lifeline_api::datamover::VolumeSnapshotBackup;
use lifeline_api::foreign::snapshot::{VolumeSnapshot, VolumeSnapshotContent};
use lifeline_api::foreign::velero::{DataDownload, DataUpload};
use lifeline_api::foreign::volsync::{ReplicationDestination, ReplicationSource};
use lifeline_e2e::wait;
use serde_json::json;

mod support;
use support::{DRIVER, T, World, bound_dir, obj, within_declared_rbac, world_on};

const BACKUP_UID: &str = "6f1c2d3e-0000-4000-8000-000000000001";
const RESTORE_UID: &str = "6f1c2d3e-0000-4000-8000-000000000002";

/// The BackupStorageLocation `default` (S3 at the test's server, its private CA), Velero's
/// `cloud-credentials`, the restic password Secret and the mover's ConfigMap naming it.
async fn velero_install(w: &World) {
    let ns = &w.protected;
    let secrets = Api::<Secret>::namespaced(w.client.clone(), ns);
    let credentials = format!(
        "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        lifeline_e2e::s3::ACCESS_KEY,
        lifeline_e2e::s3::SECRET_KEY
    );
    for (name, data) in [
        ("cloud-credentials", json!({"cloud": credentials})),
        (
            "restic-password",
            json!({"RESTIC_PASSWORD": "velero-e2e-password"}),
        ),
    ] {
        secrets
            .create(
                &PostParams::default(),
                &obj(json!({"metadata": {"name": name}, "stringData": data})),
            )
            .await
            .unwrap();
    }
    Api::<ConfigMap>::namespaced(w.client.clone(), ns)
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "lifeline"}, "data": {"repositoryPasswordSecret": "restic-password"}})),
        )
        .await
        .unwrap();
    let ca = k8s_openapi::ByteString(w.s3.ca.clone().into_bytes());
    Api::<lifeline_api::foreign::velero::BackupStorageLocation>::namespaced(w.client.clone(), ns)
        .create(
            &PostParams::default(),
            &obj(json!({"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
                "metadata": {"name": "default"},
                "spec": {"provider": "aws", "default": true, "accessMode": "ReadWrite",
                         "objectStorage": {"bucket": "backups", "prefix": "cluster-a", "caCert": ca},
                         "config": {"region": "minio", "s3Url": w.s3.endpoint, "s3ForcePathStyle": "true"}}})),
        )
        .await
        .unwrap();
}

/// Velero's CSI action: a VolumeSnapshot of the claim (labelled with the backup), waited for.
async fn velero_snapshot(w: &World, name: &str) {
    let snapshots = Api::<VolumeSnapshot>::namespaced(w.client.clone(), &w.app);
    snapshots
        .create(&PostParams::default(), &obj(json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
            "metadata": {"name": name, "labels": {"velero.io/backup-name": "nightly"}},
            "spec": {"volumeSnapshotClassName": w.vsc, "source": {"persistentVolumeClaimName": "data"}}})))
        .await
        .unwrap();
    wait::for_object(&snapshots, name, T, "ready", |s| {
        s.status.as_ref().and_then(|s| s.ready_to_use) == Some(true)
    })
    .await
    .unwrap();
}

/// A DataUpload as Velero's CSI action creates it; returns its generated name.
async fn data_upload(w: &World, snapshot: &str, datamover: &str) -> String {
    data_upload_to(w, snapshot, datamover, "default").await
}

/// [`data_upload`] naming another BackupStorageLocation.
async fn data_upload_to(w: &World, snapshot: &str, datamover: &str, location: &str) -> String {
    let pvc_uid = Api::<PersistentVolumeClaim>::namespaced(w.client.clone(), &w.app)
        .get("data")
        .await
        .unwrap()
        .uid()
        .unwrap();
    let created = Api::<DataUpload>::namespaced(w.client.clone(), &w.protected)
        .create(&PostParams::default(), &obj(json!({"apiVersion": "velero.io/v2alpha1", "kind": "DataUpload",
            "metadata": {"generateName": "nightly-",
                "labels": {"velero.io/backup-name": "nightly", "velero.io/backup-uid": BACKUP_UID,
                           "velero.io/pvc-uid": pvc_uid, "velero.io/async-operation-id": format!("du-{snapshot}")},
                "ownerReferences": [{"apiVersion": "velero.io/v1", "kind": "Backup", "name": "nightly",
                                     "uid": BACKUP_UID, "controller": true}]},
            "spec": {"snapshotType": "CSI", "sourcePVC": "data", "sourceNamespace": w.app, "datamover": datamover,
                     "backupStorageLocation": location, "operationTimeout": "10m0s",
                     "csiSnapshot": {"volumeSnapshot": snapshot, "storageClass": w.sc, "snapshotClass": w.vsc, "driver": DRIVER}}})))
        .await
        .unwrap();
    created.name_any()
}

fn phase_of(status: Option<String>) -> String {
    status.unwrap_or_default()
}

fn upload_phase(du: &DataUpload) -> String {
    phase_of(
        du.status
            .as_ref()
            .and_then(|s| s.phase.as_ref())
            .map(|p| p.as_str().to_owned()),
    )
}

/// Nothing made for `request`'s transfer is left in Velero's namespace, and Velero's snapshot
/// in the application's namespace is gone.
async fn nothing_left(w: &World, request: &str, snapshot: &str) {
    let c = &w.client;
    let ns = &w.protected;
    wait::until(T, "everything made for the transfer to be gone", || async {
        let backup = Api::<VolumeSnapshotBackup>::namespaced(c.clone(), ns)
            .get_opt(request)
            .await
            .ok()?;
        let secret = Api::<Secret>::namespaced(c.clone(), ns)
            .get_opt(&format!("{request}-repository"))
            .await
            .ok()?;
        let velero_snapshot = Api::<VolumeSnapshot>::namespaced(c.clone(), &w.app)
            .get_opt(snapshot)
            .await
            .ok()?;
        let working = ListParams::default().labels("datamover.oadp.openshift.io/request-kind=vsb");
        let sources = Api::<ReplicationSource>::namespaced(c.clone(), ns)
            .list(&working)
            .await
            .ok()?;
        let claims = Api::<PersistentVolumeClaim>::namespaced(c.clone(), ns)
            .list(&working)
            .await
            .ok()?;
        let contents = Api::<VolumeSnapshotContent>::all(c.clone())
            .list(&working)
            .await
            .ok()?;
        (backup.is_none()
            && secret.is_none()
            && velero_snapshot.is_none()
            && sources.items.is_empty()
            && claims.items.is_empty()
            && contents.items.is_empty())
        .then_some(())
    })
    .await
    .unwrap();
}

/// Velero's restore of the claim: a namespace, the claim without a volume and with the
/// selector Velero sets, and the DataDownload; returns the DataDownload's name.
async fn data_download(w: &World, target_ns: &str, snapshot_id: &str) -> String {
    Api::<Namespace>::all(w.client.clone())
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": target_ns}})),
        )
        .await
        .unwrap();
    Api::<PersistentVolumeClaim>::namespaced(w.client.clone(), target_ns)
        .create(&PostParams::default(), &obj(json!({"metadata": {"name": "data", "labels": {"velero.io/restore-name": "restore-1"}},
            "spec": {"storageClassName": w.sc, "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                     "selector": {"matchLabels": {"velero.io/dynamic-pv-restore": format!("{target_ns}.data.k2j4x")}}}})))
        .await
        .unwrap();
    Api::<DataDownload>::namespaced(w.client.clone(), &w.protected)
        .create(&PostParams::default(), &obj(json!({"apiVersion": "velero.io/v2alpha1", "kind": "DataDownload",
            "metadata": {"generateName": "restore-1-",
                "labels": {"velero.io/restore-name": "restore-1", "velero.io/restore-uid": RESTORE_UID,
                           "velero.io/async-operation-id": "dd-restore-1"},
                "ownerReferences": [{"apiVersion": "velero.io/v1", "kind": "Restore", "name": "restore-1",
                                     "uid": RESTORE_UID, "controller": true}]},
            "spec": {"targetVolume": {"pvc": "data", "pv": "", "namespace": target_ns},
                     "backupStorageLocation": "default", "datamover": "lifeline", "snapshotID": snapshot_id,
                     "sourceNamespace": w.app, "operationTimeout": "10m0s"}})))
        .await
        .unwrap()
        .name_any()
}

#[tokio::test]
async fn a_velero_backup_and_restore_move_the_data_through_lifeline() {
    let w = world_on("e2e-password-123", &[], None).await;
    velero_install(&w).await;
    let c = &w.client;
    let uploads = Api::<DataUpload>::namespaced(c.clone(), &w.protected);

    // A request for Velero's built-in mover, made first: never touched.
    velero_snapshot(&w, "velero-data-other").await;
    let theirs = data_upload(&w, "velero-data-other", "velero").await;
    velero_snapshot(&w, "velero-data-abcde").await;
    let ours = data_upload(&w, "velero-data-abcde", "lifeline").await;

    let done = wait::for_object(&uploads, &ours, T, "Completed", |du| {
        matches!(upload_phase(du).as_str(), "Completed" | "Failed")
    })
    .await
    .unwrap();
    let status = done.status.clone().unwrap();
    assert_eq!(upload_phase(&done), "Completed", "{status:?}");
    let snapshot_id = status.snapshot_id.clone().unwrap();
    let result = status.data_mover_result.clone().unwrap();
    assert!(
        snapshot_id.ends_with(&format!("@{}", result["restoreAsOf"])),
        "{snapshot_id} {result:?}"
    );
    assert!(
        snapshot_id.starts_with(&result["resticSnapshotID"]),
        "{snapshot_id}"
    );
    assert_eq!(
        result["repository"],
        format!(
            "s3:{}/backups/cluster-a/lifeline/{}/data",
            w.s3.endpoint, w.app
        )
    );
    let progress = status.progress.clone().unwrap();
    assert!(
        progress
            .bytes_done
            .is_some_and(|b| b >= w.payload.len() as i64),
        "{progress:?}"
    );
    assert!(status.accepted_timestamp.is_some() && status.completion_timestamp.is_some());
    nothing_left(&w, &ours, "velero-data-abcde").await;

    let untouched = uploads.get(&theirs).await.unwrap();
    assert!(
        untouched.status.is_none(),
        "another mover's request: {untouched:?}"
    );
    assert!(
        Api::<VolumeSnapshotBackup>::namespaced(c.clone(), &w.protected)
            .get_opt(&theirs)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Api::<VolumeSnapshot>::namespaced(c.clone(), &w.app)
            .get_opt("velero-data-other")
            .await
            .unwrap()
            .is_some(),
        "another mover's snapshot stays"
    );

    // The restore, into another namespace, as Velero restores a claim.
    let target = format!("{}-restored", w.app);
    let downloads = Api::<DataDownload>::namespaced(c.clone(), &w.protected);
    let dd = data_download(&w, &target, &snapshot_id).await;
    let restored = wait::for_object(&downloads, &dd, T, "Completed", |d| {
        let phase = d
            .status
            .as_ref()
            .and_then(|s| s.phase.as_ref())
            .map(|p| p.as_str().to_owned());
        matches!(phase.as_deref(), Some("Completed" | "Failed"))
    })
    .await
    .unwrap();
    let status = restored.status.clone().unwrap();
    assert_eq!(
        status.phase.unwrap().as_str(),
        "Completed",
        "{:?}",
        status.message
    );
    let dir = bound_dir(c, &w.site, &target, "data").await;
    assert_eq!(
        std::fs::read(dir.join("db/table.bin")).unwrap(),
        w.payload,
        "byte for byte"
    );
    let claim = Api::<PersistentVolumeClaim>::namespaced(c.clone(), &target)
        .get("data")
        .await
        .unwrap();
    let volume = Api::<PersistentVolume>::all(c.clone())
        .get(claim.spec.unwrap().volume_name.as_deref().unwrap())
        .await
        .unwrap();
    let labels: BTreeMap<String, String> = volume.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels["velero.io/dynamic-pv-restore"],
        format!("{target}.data.k2j4x")
    );
    assert_eq!(
        volume
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.as_deref()),
        Some("Delete"),
        "the class's reclaim policy is given back"
    );
    // Nothing of the restore is left in Velero's namespace.
    wait::until(T, "the restore's working objects to be gone", || async {
        let rd = Api::<ReplicationDestination>::namespaced(c.clone(), &w.protected)
            .get_opt(&format!("{dd}-restore"))
            .await
            .ok()?;
        let claim = Api::<PersistentVolumeClaim>::namespaced(c.clone(), &w.protected)
            .get_opt(&format!("{dd}-restore"))
            .await
            .ok()?;
        let secret = Api::<Secret>::namespaced(c.clone(), &w.protected)
            .get_opt(&format!("{dd}-repository"))
            .await
            .ok()?;
        (rd.is_none() && claim.is_none() && secret.is_none()).then_some(())
    })
    .await
    .unwrap();
    assert!(uploads.get(&theirs).await.unwrap().status.is_none());

    // A location that takes no new backups fails the request, saying so; nothing is made.
    let mut read_only = Api::<lifeline_api::foreign::velero::BackupStorageLocation>::namespaced(
        c.clone(),
        &w.protected,
    )
    .get("default")
    .await
    .unwrap();
    read_only.metadata = obj(json!({"name": "archive"}));
    read_only.spec.access_mode = Some("ReadOnly".into());
    Api::<lifeline_api::foreign::velero::BackupStorageLocation>::namespaced(
        c.clone(),
        &w.protected,
    )
    .create(&PostParams::default(), &read_only)
    .await
    .unwrap();
    let refused = data_upload_to(&w, "velero-data-none", "lifeline", "archive").await;
    let failed = wait::for_object(&uploads, &refused, T, "Failed", |du| {
        upload_phase(du) == "Failed"
    })
    .await
    .unwrap();
    let message = failed.status.unwrap().message.unwrap_or_default();
    assert!(
        message.contains("BackupStorageLocation \"archive\" has spec.accessMode ReadOnly"),
        "{message}"
    );
    assert!(
        Api::<VolumeSnapshotBackup>::namespaced(c.clone(), &w.protected)
            .get_opt(&refused)
            .await
            .unwrap()
            .is_none()
    );
    within_declared_rbac(&w._cluster, &w.protected).await;
}

/// The Bytes Done and Total Bytes cells of `kubectl get datauploads` for `name`.
async fn kubectl_progress(w: &World, name: &str) -> (String, String) {
    // LIFELINE_KUBECTL may name several, ':'-separated (CI: the control plane's first).
    let kubectl = std::env::var("LIFELINE_KUBECTL")
        .ok()
        .and_then(|all| all.split(':').find(|k| !k.is_empty()).map(str::to_owned))
        .unwrap_or_else(|| "kubectl".into());
    let output = tokio::process::Command::new(&kubectl)
        .args(["get", "datauploads", "-n", &w.protected, name])
        .env("KUBECONFIG", w._cluster.kubeconfig())
        .output()
        .await
        .unwrap_or_else(|e| panic!("{kubectl} (LIFELINE_KUBECTL, else PATH) does not run: {e}"));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let row = lines.next().unwrap_or_default();
    let cell = |column: &str| {
        let at = header
            .find(column)
            .unwrap_or_else(|| panic!("no {column} in {header}"));
        row.get(at..)
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    (cell("BYTES DONE"), cell("TOTAL BYTES"))
}

#[tokio::test]
async fn kubectl_shows_the_progress_and_a_cancel_mid_transfer_leaves_nothing() {
    // 6 MiB restic cannot compress, through an object store serving 192 KiB/s: half a minute
    // of upload, the mover's log read every second.
    let w = world_on(
        "e2e-password-123",
        &["--progress-interval-seconds", "1"],
        Some(192),
    )
    .await;
    velero_install(&w).await;
    for i in 0..4 {
        let noise = lifeline_e2e::actors::files::noise(i + 1, 1536 * 1024);
        std::fs::write(w.dir.join(format!("noise-{i}.bin")), noise).unwrap();
    }
    velero_snapshot(&w, "velero-data-slow").await;
    let name = data_upload(&w, "velero-data-slow", "lifeline").await;
    let uploads = Api::<DataUpload>::namespaced(w.client.clone(), &w.protected);
    let running = wait::for_object(&uploads, &name, T, "bytes moving", |du| {
        upload_phase(du) == "InProgress"
            && du
                .status
                .as_ref()
                .and_then(|s| s.progress.as_ref())
                .is_some_and(|p| p.bytes_done.is_some_and(|b| b > 0) && p.total_bytes.is_some())
    })
    .await
    .unwrap();
    let total = running
        .status
        .unwrap()
        .progress
        .unwrap()
        .total_bytes
        .unwrap();
    assert!(total > 6 << 20, "the noise and the payload: {total}");
    let (done, all) = kubectl_progress(&w, &name).await;
    assert!(
        done.parse::<i64>().is_ok_and(|b| b > 0),
        "Bytes Done {done:?}"
    );
    assert_eq!(all, total.to_string(), "Total Bytes");

    uploads
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"cancel": true}})),
        )
        .await
        .unwrap();
    let canceled = wait::for_object(&uploads, &name, T, "Canceled", |du| {
        matches!(
            upload_phase(du).as_str(),
            "Canceled" | "Completed" | "Failed"
        )
    })
    .await
    .unwrap();
    assert_eq!(upload_phase(&canceled), "Canceled", "{:?}", canceled.status);
    nothing_left(&w, &name, "velero-data-slow").await;
    // The mover's Job went with its ReplicationSource.
    wait::until(T, "the mover's Pods to be gone", || async {
        let pods =
            Api::<k8s_openapi::api::core::v1::Pod>::namespaced(w.client.clone(), &w.protected)
                .list(&ListParams::default())
                .await
                .ok()?;
        pods.items
            .iter()
            .all(|p| !p.name_any().starts_with("volsync-src-"))
            .then_some(())
    })
    .await
    .unwrap();
}
