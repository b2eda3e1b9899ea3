//! Velero's pluggable data mover on the real control plane, with Velero v1.18.1 itself: its
//! server (with its AWS object-store plugin, storing backups in the test's S3 server) runs a
//! real `velero backup create --snapshot-move-data --data-mover lifeline` and
//! `velero restore create`, whose DataUpload and DataDownload Lifeline serves; the data moves
//! through the real VolSync restic mover to the same S3 server and comes back byte for byte
//! into the claim Velero restores. A request for another mover is never touched; a location
//! that is ReadOnly is refused; Velero still finds its location valid with Lifeline's
//! repositories in it. The cancel scenario makes its DataUpload exactly as Velero's CSI action
//! does (generateName, labels, owner references; `shared/spec/velero-datamover.md`), without a
//! server: cancelling is what a user does with `kubectl patch`, mid-transfer.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Secret};
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use lifeline_api::datamover::VolumeSnapshotBackup;
use lifeline_api::foreign::snapshot::{VolumeSnapshot, VolumeSnapshotClass, VolumeSnapshotContent};
use lifeline_api::foreign::velero::{BackupStorageLocation, DataDownload, DataUpload};
use lifeline_api::foreign::volsync::{ReplicationDestination, ReplicationSource};
use lifeline_e2e::velero::Velero;
use lifeline_e2e::wait;
use serde_json::json;

mod support;
use support::{DRIVER, T, World, bound_dir, obj, within_declared_rbac, world_on};

/// The Backup the cancel scenario's request names: no Velero server runs there, and without
/// Velero's Backup kind the garbage collector leaves the request alone.
const BACKUP_UID: &str = "6f1c2d3e-0000-4000-8000-000000000001";
/// How long Velero's backup or restore of one 3 MiB claim may take, start to end.
const VELERO: std::time::Duration = std::time::Duration::from_secs(300);

/// The AWS credentials file for the test's S3 server, as `velero install --secret-file` takes it.
fn credentials() -> String {
    format!(
        "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        lifeline_e2e::s3::ACCESS_KEY,
        lifeline_e2e::s3::SECRET_KEY
    )
}

/// The BackupStorageLocation `default` (S3 at the test's server, its private CA), Velero's
/// `cloud-credentials`, the restic password Secret and the mover's ConfigMap naming it.
async fn velero_install(w: &World) {
    let ns = &w.protected;
    let secrets = Api::<Secret>::namespaced(w.client.clone(), ns);
    for (name, data) in [
        ("cloud-credentials", json!({"cloud": credentials()})),
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
    Api::<BackupStorageLocation>::namespaced(w.client.clone(), ns)
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

/// A DataUpload as Velero's CSI action creates it for the Backup `nightly` whose uid is
/// `backup_uid`; returns its generated name.
async fn data_upload(
    w: &World,
    snapshot: &str,
    datamover: &str,
    location: &str,
    backup_uid: &str,
) -> String {
    let pvc_uid = Api::<PersistentVolumeClaim>::namespaced(w.client.clone(), &w.app)
        .get("data")
        .await
        .unwrap()
        .uid()
        .unwrap();
    let created = Api::<DataUpload>::namespaced(w.client.clone(), &w.protected)
        .create(&PostParams::default(), &obj(json!({"apiVersion": "velero.io/v2alpha1", "kind": "DataUpload",
            "metadata": {"generateName": "nightly-",
                "labels": {"velero.io/backup-name": "nightly", "velero.io/backup-uid": backup_uid,
                           "velero.io/pvc-uid": pvc_uid, "velero.io/async-operation-id": format!("du-{snapshot}")},
                "ownerReferences": [{"apiVersion": "velero.io/v1", "kind": "Backup", "name": "nightly",
                                     "uid": backup_uid, "controller": true}]},
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

/// Velero's own server, in the data mover's namespace, with the location [`velero_install`]
/// made (Available before it is used) and Velero's CSI action choosing the test's snapshot
/// class.
async fn velero_server(w: &World) -> Velero {
    Api::<VolumeSnapshotClass>::all(w.client.clone())
        .patch(
            &w.vsc,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {"velero.io/csi-volumesnapshot-class": "true"}}}),
            ),
        )
        .await
        .unwrap();
    let velero = Velero::start(
        &w.client,
        w._cluster.dir(),
        w._cluster.kubeconfig(),
        &w.protected,
        &credentials(),
    )
    .await
    .unwrap();
    let locations = Api::<BackupStorageLocation>::namespaced(w.client.clone(), &w.protected);
    let checked = wait::for_object(&locations, "default", T, "checked by Velero", |l| {
        l.status.as_ref().and_then(|s| s.phase.as_deref()).is_some()
    })
    .await
    .unwrap();
    assert_eq!(
        checked.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Available"),
        "{:?}\n{}",
        checked.status,
        velero.tail(30)
    );
    velero
}

/// Velero's requests of one backup or restore (by its name label), once there is one.
async fn requests_of<K>(api: &Api<K>, label: &str) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let selector = ListParams::default().labels(label);
    wait::until(T, &format!("a request labelled {label}"), || async {
        let mut found = api.list(&selector).await.ok()?.items;
        (found.len() == 1).then(|| found.remove(0))
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_velero_backup_and_restore_move_the_data_through_lifeline() {
    let w = world_on("e2e-password-123", &[], None).await;
    velero_install(&w).await;
    let velero = velero_server(&w).await;
    let c = &w.client;
    let uploads = Api::<DataUpload>::namespaced(c.clone(), &w.protected);

    // `velero backup create`: its CSI action snapshots the claim and asks for the data to be
    // moved by the mover named, and the backup waits for that request.
    let backup = velero
        .complete(
            c,
            "Backup",
            "nightly",
            &[
                "--include-namespaces",
                &w.app,
                "--snapshot-move-data",
                "--data-mover",
                "lifeline",
            ],
            VELERO,
        )
        .await
        .unwrap();
    let done = requests_of(&uploads, "velero.io/backup-name=nightly").await;
    let ours = done.name_any();
    assert_eq!(done.spec.datamover.as_deref(), Some("lifeline"));
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
    // Under the location's prefix, in the one folder Velero lets plugins have: Velero marks a
    // location with any other unknown folder Unavailable (checked again below).
    assert_eq!(
        result["repository"],
        format!(
            "s3:{}/backups/cluster-a/plugins/lifeline/{}/data",
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
    let velero_snapshot_name = done
        .spec
        .csi_snapshot
        .as_ref()
        .and_then(|s| s.volume_snapshot.clone())
        .unwrap();
    nothing_left(&w, &ours, &velero_snapshot_name).await;

    // A request for Velero's built-in mover (no node-agent here to serve it), made as its CSI
    // action makes one for this backup: never touched.
    let backup_uid = backup.metadata.uid.clone().unwrap();
    velero_snapshot(&w, "velero-data-other").await;
    let theirs = data_upload(&w, "velero-data-other", "velero", "default", &backup_uid).await;

    // `velero restore create`, into another namespace: Velero restores the claim unbound with
    // a selector and asks the mover that made the upload for the data.
    let target = format!("{}-restored", w.app);
    let mapping = format!("{}:{target}", w.app);
    velero
        .complete(
            c,
            "Restore",
            "restore-1",
            &["--from-backup", "nightly", "--namespace-mappings", &mapping],
            VELERO,
        )
        .await
        .unwrap();
    let downloads = Api::<DataDownload>::namespaced(c.clone(), &w.protected);
    let restored = requests_of(&downloads, "velero.io/restore-name=restore-1").await;
    let dd = restored.name_any();
    assert_eq!(
        restored.spec.snapshot_id.as_deref(),
        Some(snapshot_id.as_str())
    );
    assert_eq!(
        restored
            .status
            .as_ref()
            .and_then(|s| s.phase.as_ref())
            .map(|p| p.as_str().to_owned())
            .as_deref(),
        Some("Completed"),
        "{:?}",
        restored.status
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
    let spec = claim.spec.unwrap();
    let volume = Api::<PersistentVolume>::all(c.clone())
        .get(spec.volume_name.as_deref().unwrap())
        .await
        .unwrap();
    let labels: BTreeMap<String, String> = volume.metadata.labels.clone().unwrap_or_default();
    let selected = &spec.selector.unwrap().match_labels.unwrap()["velero.io/dynamic-pv-restore"];
    assert_eq!(&labels["velero.io/dynamic-pv-restore"], selected);
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

    // A location that takes no new backups fails the request, saying so; nothing is made.
    // (Velero's server refuses such backups itself; the mover does not rely on it.)
    let locations = Api::<BackupStorageLocation>::namespaced(c.clone(), &w.protected);
    let mut read_only = locations.get("default").await.unwrap();
    read_only.metadata = obj(json!({"name": "archive"}));
    read_only.spec.access_mode = Some("ReadOnly".into());
    read_only.spec.default = Some(false);
    read_only.status = None;
    locations
        .create(&PostParams::default(), &read_only)
        .await
        .unwrap();
    let refused = data_upload(&w, "velero-data-none", "lifeline", "archive", &backup_uid).await;
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
    // Velero still finds its location valid with the mover's repository in it, in a check
    // made after the upload finished.
    let uploaded = status.completion_timestamp.clone().unwrap().0;
    let dynamic = Api::<DynamicObject>::namespaced_with(
        c.clone(),
        &w.protected,
        &ApiResource::erase::<BackupStorageLocation>(&()),
    );
    let checked = wait::for_object(&dynamic, "default", T, "checked after the upload", |l| {
        l.data["status"]["lastValidationTime"]
            .as_str()
            .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
            .is_some_and(|t| t > uploaded)
    })
    .await
    .unwrap();
    assert_eq!(
        checked.data["status"]["phase"], "Available",
        "{}",
        checked.data["status"]
    );
    within_declared_rbac(&w._cluster, &w.protected).await;
    velero.stop().await;
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
    let name = data_upload(&w, "velero-data-slow", "lifeline", "default", BACKUP_UID).await;
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
