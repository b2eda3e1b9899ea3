//! The real datamover controller with real restic: a VolumeSnapshotBackup moves a snapshot's
//! data into the volume's repository, a VolumeSnapshotRestore built from the backup's
//! annotations brings it back as a snapshot handle, and a claim bound to that handle holds the
//! same bytes. Nothing is left in the protected namespace; the user's snapshot is untouched.

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use lifeline_api::datamover::{
    MoverPhase, VolumeSnapshotBackup, VolumeSnapshotRestore, annotations,
};
use lifeline_api::foreign::snapshot::{VolumeSnapshot, VolumeSnapshotContent};
use lifeline_api::foreign::volsync::ReplicationSource;
use lifeline_e2e::actors::Site;
use lifeline_e2e::wait;
use serde_json::json;

mod support;
use support::{
    DRIVER, T, World, bound_dir, obj, within_declared_rbac, world, world_on, world_with,
};

/// Binds a new claim to a snapshot handle, as a backup tool does after a restore; returns the
/// claim's directory.
async fn claim_from_handle(
    client: &Client,
    site: &Site,
    ns: &str,
    sc: &str,
    name: &str,
    handle: &str,
) -> std::path::PathBuf {
    Api::<VolumeSnapshotContent>::all(client.clone())
        .create(&PostParams::default(), &obj(json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
            "metadata": {"name": format!("{name}-{ns}")},
            "spec": {"deletionPolicy": "Retain", "driver": DRIVER, "source": {"snapshotHandle": handle},
                     "volumeSnapshotRef": {"namespace": ns, "name": name}}})))
        .await
        .unwrap();
    Api::<VolumeSnapshot>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &obj(json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
            "metadata": {"name": name}, "spec": {"source": {"volumeSnapshotContentName": format!("{name}-{ns}")}}})))
        .await
        .unwrap();
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &obj(json!({"metadata": {"name": name},
            "spec": {"storageClassName": sc, "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                     "dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": name}}})))
        .await
        .unwrap();
    bound_dir(client, site, ns, name).await
}

/// A VSR built from a backup's annotations alone (with its point in time); waits for Completed
/// and returns the snapshot handle.
async fn restore(
    client: &Client,
    ns: &str,
    protected: &str,
    name: &str,
    backup: &VolumeSnapshotBackup,
) -> String {
    let notes = backup.metadata.annotations.clone().unwrap();
    let vsrs = Api::<VolumeSnapshotRestore>::namespaced(client.clone(), ns);
    vsrs.create(&PostParams::default(), &obj(json!({"apiVersion": "datamover.oadp.openshift.io/v1alpha1", "kind": "VolumeSnapshotRestore",
        "metadata": {"name": name, "annotations": {"datamover.io/restore-as-of": notes["datamover.io/restore-as-of"]}},
        "spec": {"protectedNamespace": protected, "resticSecretRef": {"name": "restic"},
                 "volumeSnapshotMoverBackupRef": {
                     "resticrepository": notes[annotations::RESTIC_REPOSITORY],
                     "volumeSnapshotClassName": notes[annotations::SOURCE_PVC_VOLUMESNAPSHOTCLASS],
                     "sourcePVCData": {"name": notes[annotations::SOURCE_PVC_NAME], "size": notes[annotations::SOURCE_PVC_SIZE],
                                       "storageClassName": notes[annotations::SOURCE_PVC_STORAGECLASS]}}}})))
        .await
        .unwrap();
    let restored = wait::for_object(&vsrs, name, T, "Completed", |r| {
        r.status
            .as_ref()
            .and_then(|s| s.phase.as_ref())
            .map(|p| p.as_str())
            == Some("Completed")
    })
    .await
    .unwrap();
    let status = restored.status.unwrap();
    // The mover's report ends in `Done` (its step while restoring is read as for a backup).
    let progress = status.progress.clone().unwrap_or_default();
    assert_eq!(
        progress.phase.as_ref().and_then(|p| p.known()),
        Some(MoverPhase::Done),
        "{progress:?}"
    );
    status.snapshot_handle.unwrap()
}

/// Snapshots `claim` and starts backing the snapshot up through a VSB named `name`; returns
/// the snapshot's content name.
async fn start_backup(
    client: &Client,
    ns: &str,
    protected: &str,
    vsc: &str,
    claim: &str,
    name: &str,
) -> String {
    let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), ns);
    snapshots
        .create(&PostParams::default(), &obj(json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
            "metadata": {"name": format!("{name}-snap")}, "spec": {"volumeSnapshotClassName": vsc, "source": {"persistentVolumeClaimName": claim}}})))
        .await
        .unwrap();
    let snap = wait::for_object(&snapshots, &format!("{name}-snap"), T, "ready", |s| {
        s.status.as_ref().and_then(|s| s.ready_to_use) == Some(true)
    })
    .await
    .unwrap();
    let content = snap
        .status
        .unwrap()
        .bound_volume_snapshot_content_name
        .unwrap();
    let vsbs = Api::<VolumeSnapshotBackup>::namespaced(client.clone(), ns);
    vsbs.create(&PostParams::default(), &obj(json!({"apiVersion": "datamover.oadp.openshift.io/v1alpha1", "kind": "VolumeSnapshotBackup",
        "metadata": {"name": name},
        "spec": {"volumeSnapshotContent": {"name": content}, "protectedNamespace": protected, "resticSecretRef": {"name": "restic"}}})))
        .await
        .unwrap();
    content
}

/// [`start_backup`], then waits for Completed.
async fn backup(
    client: &Client,
    ns: &str,
    protected: &str,
    vsc: &str,
    claim: &str,
    name: &str,
) -> VolumeSnapshotBackup {
    let content = start_backup(client, ns, protected, vsc, claim, name).await;
    let vsbs = Api::<VolumeSnapshotBackup>::namespaced(client.clone(), ns);
    let done = wait::for_object(&vsbs, name, T, "Completed", |b| {
        b.status
            .as_ref()
            .and_then(|s| s.phase.as_ref())
            .map(|p| p.as_str())
            == Some("Completed")
    })
    .await
    .unwrap();
    assert!(
        Api::<VolumeSnapshotContent>::all(client.clone())
            .get_opt(&content)
            .await
            .unwrap()
            .is_some(),
        "the user's snapshot is untouched"
    );
    done
}

#[tokio::test]
async fn backup_and_restore_through_the_datamover_with_real_restic() {
    let World {
        _cluster,
        _storage,
        client,
        app,
        protected,
        site,
        sc,
        vsc,
        dir,
        repository,
        s3: _s3,
        payload,
        mut mover,
    } = world("e2e-password-123").await;
    // OADP's settings and a misspelled credential in the user's Secret: the settings are used,
    // the misspelling is named in the status (never its value), the backup still runs. VolSync's
    // mover runs `restic forget` after each backup: "daily 3" alone keeps one snapshot per
    // day, so the first backup would be gone after the second; "within 1d" keeps both.
    let secrets = Api::<Secret>::namespaced(client.clone(), &protected);
    secrets
        .patch(
            "restic",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {
                "SnapshotRetainPolicyDaily": "3", "SnapshotRetainPolicyWithin": "1d",
                "restic-prune-interval": "14",
                "AWS_SECRET_KEY": "typo-value-xyz"}})),
        )
        .await
        .unwrap();

    // First backup, then a small change and a second backup into the same repository.
    let first = backup(&client, &app, &protected, &vsc, "data", "backup-1").await;
    let said = &first.status.as_ref().unwrap().conditions[0].message;
    assert!(
        said.contains("AWS_SECRET_KEY") && !said.contains("typo-value-xyz"),
        "{said}"
    );
    assert!(
        !said.contains("SnapshotRetainPolicyDaily"),
        "a setting used is not ignored: {said}"
    );
    let notes = first.metadata.annotations.clone().unwrap();
    let repo = notes[annotations::RESTIC_REPOSITORY].clone();
    assert_eq!(
        repo,
        format!("{repository}/{app}/data"),
        "one repository per source volume"
    );
    assert!(
        Api::<ReplicationSource>::namespaced(client.clone(), &protected)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    std::fs::write(dir.join("db/notes.txt"), "second state").unwrap();
    let second = backup(&client, &app, &protected, &vsc, "data", "backup-2").await;
    assert_eq!(
        second.metadata.annotations.clone().unwrap()[annotations::RESTIC_REPOSITORY],
        repo,
        "incremental: same repository"
    );

    // Restoring the first backup returns the first state, not the later one.
    let handle = restore(&client, &app, &protected, "restore-1", &first).await;
    let restored_dir = claim_from_handle(&client, &site, &app, &sc, "first-state", &handle).await;
    assert_eq!(
        std::fs::read(restored_dir.join("db/table.bin")).unwrap(),
        payload,
        "byte-exact"
    );
    assert!(
        !restored_dir.join("db/notes.txt").exists(),
        "the later change is not in the first backup"
    );
    let handle = restore(&client, &app, &protected, "restore-2", &second).await;
    let restored_dir = claim_from_handle(&client, &site, &app, &sc, "second-state", &handle).await;
    assert_eq!(
        std::fs::read_to_string(restored_dir.join("db/notes.txt")).unwrap(),
        "second state"
    );

    // The claims VolSync made for the restores are owned by their ReplicationDestinations:
    // garbage collection removes them after those go, asynchronously as on any cluster.
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &protected);
    let gone = wait::until(T, "nothing left in the protected namespace", || async {
        let left = claims.list(&ListParams::default()).await.ok()?;
        left.items.is_empty().then_some(())
    })
    .await;
    let left: Vec<_> = claims
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| p.metadata.name)
        .collect();
    assert!(gone.is_ok(), "left in the protected namespace: {left:?}");
    assert!(
        !mover.logs().contains("e2e-password-123"),
        "no secret in the logs"
    );
    within_declared_rbac(&_cluster, &protected).await;
    mover.terminate(T).await.unwrap();
}

/// A failing restic (wrong password for an existing repository): the VSB is Failed with
/// restic's message; the password is in no status, Event or log; nothing is left behind.
#[tokio::test]
async fn a_wrong_password_fails_the_backup_with_restics_words_and_no_secret() {
    let w = world("right-password-1").await;
    backup(&w.client, &w.app, &w.protected, &w.vsc, "data", "good").await;
    // The repository now exists with the right password; the Secret changes to a wrong one.
    let wrong = "wrong-password-9876";
    Api::<Secret>::namespaced(w.client.clone(), &w.protected)
        .patch(
            "restic",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"stringData": {"RESTIC_PASSWORD": wrong}})),
        )
        .await
        .unwrap();
    start_backup(&w.client, &w.app, &w.protected, &w.vsc, "data", "bad").await;
    let vsbs = Api::<VolumeSnapshotBackup>::namespaced(w.client.clone(), &w.app);
    let failed = wait::for_object(&vsbs, "bad", T, "Failed", |b| {
        b.status
            .as_ref()
            .and_then(|s| s.phase.as_ref())
            .map(|p| p.as_str())
            == Some("Failed")
    })
    .await
    .unwrap();
    let status = serde_json::to_string(&failed.status).unwrap();
    assert!(
        status.contains("wrong password") || status.contains("no key found"),
        "restic's words: {status}"
    );
    assert!(!status.contains(wrong), "no secret in the status");
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(w.client.clone(), &w.app)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("BackupFailed"))
    );
    assert!(
        events
            .items
            .iter()
            .all(|e| !e.note.clone().unwrap_or_default().contains(wrong)),
        "no secret in Events"
    );
    assert!(!w.mover.logs().contains(wrong), "no secret in the logs");
    wait::until(
        T,
        "the failed backup's working objects to be gone",
        || async {
            let left = Api::<ReplicationSource>::namespaced(w.client.clone(), &w.protected)
                .list(&ListParams::default())
                .await
                .ok()?;
            left.items.is_empty().then_some(())
        },
    )
    .await
    .unwrap();
}

/// The datamover killed mid-backup: restarted, it finishes the same backup once, and leaks
/// nothing.
#[tokio::test]
async fn a_backup_survives_a_controller_crash() {
    let mut w = world("crash-password-1").await;
    start_backup(&w.client, &w.app, &w.protected, &w.vsc, "data", "crash").await;
    let vsbs = Api::<VolumeSnapshotBackup>::namespaced(w.client.clone(), &w.app);
    // Kill it once its working objects exist, mid-way.
    wait::until(T, "the ReplicationSource to exist", || async {
        let rs = Api::<ReplicationSource>::namespaced(w.client.clone(), &w.protected)
            .list(&ListParams::default())
            .await
            .ok()?;
        (!rs.items.is_empty()).then_some(())
    })
    .await
    .unwrap();
    w.mover.kill().await;
    w.mover.restart().await.unwrap();
    wait::for_object(&vsbs, "crash", T, "Completed", |b| {
        b.status
            .as_ref()
            .and_then(|s| s.phase.as_ref())
            .map(|p| p.as_str())
            == Some("Completed")
    })
    .await
    .unwrap();
    // Exactly one restic snapshot: the backup ran once.
    let env = [
        (
            "RESTIC_REPOSITORY",
            format!("{}/{}/data", w.repository, w.app),
        ),
        ("RESTIC_PASSWORD", "crash-password-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", lifeline_e2e::s3::ACCESS_KEY.to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY",
            lifeline_e2e::s3::SECRET_KEY.to_owned(),
        ),
    ];
    let output =
        std::process::Command::new(lifeline_e2e::storage_controllers::program("restic").unwrap())
            .arg("--cacert")
            .arg(&w.s3.ca_file)
            .args(["snapshots", "--json"])
            .envs(env)
            .output()
            .unwrap();
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(listed.len(), 1, "one backup, once");
    assert!(
        Api::<ReplicationSource>::namespaced(w.client.clone(), &w.protected)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // VolSync's cache claim goes with its ReplicationSource, by garbage collection.
    let claims = Api::<PersistentVolumeClaim>::namespaced(w.client.clone(), &w.protected);
    wait::until(T, "no claim left in the protected namespace", || async {
        claims
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .is_empty()
            .then_some(())
    })
    .await
    .unwrap();
}

/// Deleting a VSB mid-backup leaves no working object in the protected namespace and does not
/// touch the user's snapshot.
#[tokio::test]
async fn deleting_a_backup_midway_leaves_nothing_and_spares_the_users_snapshot() {
    let w = world("delete-password-1").await;
    let snapshots = Api::<VolumeSnapshot>::namespaced(w.client.clone(), &w.app);
    snapshots
        .create(&PostParams::default(), &obj(json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
            "metadata": {"name": "snap"}, "spec": {"volumeSnapshotClassName": w.vsc, "source": {"persistentVolumeClaimName": "data"}}})))
        .await
        .unwrap();
    let snap = wait::for_object(&snapshots, "snap", T, "ready", |s| {
        s.status.as_ref().and_then(|s| s.ready_to_use) == Some(true)
    })
    .await
    .unwrap();
    let content = snap
        .status
        .unwrap()
        .bound_volume_snapshot_content_name
        .unwrap();
    let contents = Api::<VolumeSnapshotContent>::all(w.client.clone());
    let before = contents.get(&content).await.unwrap();
    let vsbs = Api::<VolumeSnapshotBackup>::namespaced(w.client.clone(), &w.app);
    vsbs.create(&PostParams::default(), &obj(json!({"apiVersion": "datamover.oadp.openshift.io/v1alpha1", "kind": "VolumeSnapshotBackup",
        "metadata": {"name": "doomed"},
        "spec": {"volumeSnapshotContent": {"name": content}, "protectedNamespace": w.protected, "resticSecretRef": {"name": "restic"}}})))
        .await
        .unwrap();
    wait::until(T, "the working objects to exist", || async {
        let rs = Api::<ReplicationSource>::namespaced(w.client.clone(), &w.protected)
            .list(&ListParams::default())
            .await
            .ok()?;
        (!rs.items.is_empty()).then_some(())
    })
    .await
    .unwrap();
    vsbs.delete("doomed", &Default::default()).await.unwrap();
    wait::for_deletion(&vsbs, "doomed", T).await.unwrap();
    let labelled = ListParams::default().labels("datamover.oadp.openshift.io/request-name=doomed");
    assert!(
        Api::<ReplicationSource>::namespaced(w.client.clone(), &w.protected)
            .list(&labelled)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        Api::<Secret>::namespaced(w.client.clone(), &w.protected)
            .list(&labelled)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        Api::<VolumeSnapshot>::namespaced(w.client.clone(), &w.protected)
            .list(&labelled)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        contents.list(&labelled).await.unwrap().items.is_empty(),
        "our copy of the content is gone"
    );
    wait::until(T, "the backup claim to be gone", || async {
        let claims = Api::<PersistentVolumeClaim>::namespaced(w.client.clone(), &w.protected)
            .list(&labelled)
            .await
            .ok()?;
        claims.items.is_empty().then_some(())
    })
    .await
    .unwrap();
    let after = contents.get(&content).await.unwrap();
    assert_eq!(
        after.spec, before.spec,
        "the user's snapshot content is unchanged"
    );
    assert!(
        w.site
            .snapshot_dir(&after.status.unwrap().snapshot_handle.unwrap())
            .exists(),
        "and so is its data"
    );
    within_declared_rbac(&w._cluster, &w.protected).await;
}

/// Watch-driven to the end: with one backup slot, a queued backup starts on the event that
/// frees the slot, and a backup refused for a broken Secret goes on as soon as the Secret is
/// fixed — both well within the waits here, which are shorter than the controller's fallback
/// rechecks (60 s for the queue, 5 minutes after a problem).
#[tokio::test]
async fn a_freed_slot_and_a_fixed_secret_are_noticed_at_once() {
    let world = world_with("e2e-password-123", &["--max-concurrent-backups", "1"]).await;
    let (client, app, protected) = (&world.client, &world.app, &world.protected);
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), app)
        .create(&PostParams::default(), &obj(json!({"metadata": {"name": "logs"},
            "spec": {"storageClassName": world.sc, "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})))
        .await
        .unwrap();
    std::fs::write(
        bound_dir(client, &world.site, app, "logs").await.join("l"),
        "x",
    )
    .unwrap();
    let quick = Duration::from_secs(30);
    let vsbs = Api::<VolumeSnapshotBackup>::namespaced(client.clone(), app);
    let phase = |b: &VolumeSnapshotBackup| {
        b.status
            .as_ref()
            .and_then(|s| s.phase.as_ref())
            .map(|p| p.as_str().to_owned())
    };
    start_backup(client, app, protected, &world.vsc, "data", "first").await;
    start_backup(client, app, protected, &world.vsc, "logs", "second").await;
    wait::for_object(&vsbs, "second", quick, "queued behind the first", |b| {
        b.status.as_ref().and_then(|s| s.batching())
            == Some(lifeline_api::datamover::BatchingStatus::Queued)
    })
    .await
    .unwrap();
    for name in ["first", "second"] {
        wait::for_object(&vsbs, name, quick, "Completed", |b| {
            phase(b).as_deref() == Some("Completed")
        })
        .await
        .unwrap();
    }

    // The Secret broken (no password): the next backup is refused; fixed: it goes on.
    let secrets = Api::<Secret>::namespaced(client.clone(), protected);
    let set_password = |password: serde_json::Value| {
        let secrets = secrets.clone();
        async move {
            secrets
                .patch(
                    "restic",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"data": {"RESTIC_PASSWORD": password}})),
                )
                .await
                .unwrap();
        }
    };
    let good = secrets.get("restic").await.unwrap().data.unwrap()["RESTIC_PASSWORD"].clone();
    set_password(serde_json::Value::Null).await;
    start_backup(client, app, protected, &world.vsc, "data", "third").await;
    let refused = wait::for_object(&vsbs, "third", quick, "refused", |b| {
        b.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.status == "False" && c.message.contains("RESTIC_PASSWORD"))
        })
    })
    .await
    .unwrap();
    assert_ne!(phase(&refused).as_deref(), Some("Completed"));
    set_password(serde_json::to_value(good).unwrap()).await;
    wait::for_object(
        &vsbs,
        "third",
        quick,
        "Completed once the Secret is fixed",
        |b| phase(b).as_deref() == Some("Completed"),
    )
    .await
    .unwrap();
}

/// While a backup runs over a slow link, its status shows the mover's step and restic's counts
/// (read from the mover Pod's log, as `kubectl get vsb` shows them in its Progress column);
/// when it completes, the status keeps the totals and the Events say bytes added, files and
/// how long. The log is read through `pods/log`, which the API server proxies to the node's
/// kubelet (the harness's stand-in): a backend without that node log fails the test.
#[tokio::test]
async fn a_running_backup_shows_the_movers_progress_and_its_totals() {
    // 6 MiB that do not compress through an object store serving 192 KiB/s: about 30 s of
    // upload, so VolSync's mover (restic reporting every 10 s) reports while it runs; the log
    // read every second.
    let w = world_on(
        "e2e-password-123",
        &["--progress-interval-seconds", "1"],
        Some(192),
    )
    .await;
    assert!(
        w._cluster.pod_logs().is_some(),
        "progress is read from the mover's log: this needs the kubelet stand-in's node log (the control-plane backend)"
    );
    // Data restic cannot compress away, so that the limit slows the upload: 6 MiB in 4 files.
    for i in 0..4 {
        let noise = lifeline_e2e::actors::files::noise(i + 1, 1536 * 1024);
        std::fs::write(w.dir.join(format!("noise-{i}.bin")), noise).unwrap();
    }
    let vsbs = Api::<VolumeSnapshotBackup>::namespaced(w.client.clone(), &w.app);
    start_backup(&w.client, &w.app, &w.protected, &w.vsc, "data", "slow").await;
    let progress = |b: &VolumeSnapshotBackup| b.status.as_ref().and_then(|s| s.progress.clone());
    let phase = |b: &VolumeSnapshotBackup| {
        b.status
            .as_ref()
            .and_then(|s| s.phase.as_ref())
            .map(|p| p.as_str().to_owned())
    };
    let running = wait::for_object(&vsbs, "slow", T, "restic's counts while backing up", |b| {
        phase(b).as_deref() == Some("InProgress")
            && progress(b).is_some_and(|p| {
                p.phase.and_then(|p| p.known()) == Some(MoverPhase::BackingUp)
                    && p.bytes_done.is_some_and(|n| n > 0)
            })
    })
    .await
    .unwrap();
    let p = progress(&running).unwrap();
    assert!(
        p.bytes_total.is_some_and(|n| n > 2 << 20),
        "the payload and the noise: {p:?}"
    );
    assert_eq!(p.files_total, Some(5), "{p:?}");
    let summary = p.summary.clone().unwrap();
    assert!(
        summary.starts_with("BackingUp ") && summary.contains("MiB"),
        "{summary}"
    );
    // `kubectl get vsb`: the Progress column is the summary (of the same read).
    let (cell, row) = table_cell(&w.client, &w.app, "slow", "Progress").await;
    assert_eq!(Some(cell), progress(&row).and_then(|p| p.summary));
    let done = wait::for_object(&vsbs, "slow", T, "Completed", |b| {
        phase(b).as_deref() == Some("Completed")
    })
    .await
    .unwrap();
    let p = progress(&done).unwrap();
    assert_eq!(
        p.phase.as_ref().and_then(|p| p.known()),
        Some(MoverPhase::Done)
    );
    assert_eq!(p.files_done, Some(5));
    assert!(p.bytes_added.is_some_and(|n| n > 0), "{p:?}");
    assert!(p.summary.as_deref().unwrap().starts_with("Done "), "{p:?}");
    // The Event is published after the phase is written: wait for it.
    let event_api =
        Api::<k8s_openapi::api::events::v1::Event>::namespaced(w.client.clone(), &w.app);
    let events = wait::until(T, "the Completed Event", || async {
        let events = event_api.list(&ListParams::default()).await.ok()?;
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Completed"))
            .then_some(events)
    })
    .await
    .unwrap();
    let note = |reason: &str| {
        events
            .items
            .iter()
            .find(|e| e.reason.as_deref() == Some(reason))
            .and_then(|e| e.note.clone())
            .unwrap_or_default()
    };
    let completed = note("Completed");
    assert!(
        completed.contains("MiB added to the repository, 5 files, in "),
        "{completed}"
    );
    let moved = note("SnapshotBackupDone");
    assert!(moved.contains("(the mover ran "), "{moved}");
    within_declared_rbac(&w._cluster, &w.protected).await;
}

/// One cell of `kubectl get vsb NAME` (the server's Table), and the object the row is of.
async fn table_cell(
    client: &Client,
    ns: &str,
    name: &str,
    column: &str,
) -> (String, VolumeSnapshotBackup) {
    let request = http::Request::get(format!(
        "/apis/datamover.oadp.openshift.io/v1alpha1/namespaces/{ns}/volumesnapshotbackups/{name}?includeObject=Object"
    ))
    .header(
        "Accept",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )
    .body(Vec::new())
    .unwrap();
    let table: serde_json::Value = client.request(request).await.unwrap();
    let index = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c["name"] == column)
        .unwrap_or_else(|| panic!("no column {column} in {table}"));
    let cell = table["rows"][0]["cells"][index]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (
        cell,
        serde_json::from_value(table["rows"][0]["object"].clone()).unwrap(),
    )
}
