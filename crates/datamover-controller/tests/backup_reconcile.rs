//! The backup reconcile against an in-memory API: the whole pipeline, a failing mover,
//! deletion mid-way, and concurrency counted from the cluster (surviving a restart).

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use lifeline_api::datamover::VolumeSnapshotBackup;
use lifeline_api::foreign::snapshot::{VolumeSnapshot, VolumeSnapshotClass, VolumeSnapshotContent};
use lifeline_api::foreign::volsync::ReplicationSource;
use lifeline_datamover_controller::context::Context;
use lifeline_datamover_controller::reconcile::backup::{names, reconcile};
use lifeline_datamover_controller::settings::Settings;
use lifeline_testkit::MockApi;
use serde_json::json;

const PROTECTED: &str = "lifeline-system";
const PASSWORD: &str = "pw-do-not-log-123";

fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
    serde_saphyr::from_str(text).unwrap()
}

struct World {
    api: MockApi,
    ctx: Arc<Context>,
}

fn world(max_backups: usize) -> World {
    world_with(Settings::default(), max_backups)
}

fn world_with(settings: Settings, max_backups: usize) -> World {
    let api = MockApi::default();
    api.put::<Namespace>(&yaml(&format!("metadata: {{name: {PROTECTED}}}")));
    api.put::<CustomResourceDefinition>(&yaml(
        "metadata: {name: replicationsources.volsync.backube}\nspec: {group: volsync.backube, names: {plural: replicationsources, kind: ReplicationSource}, scope: Namespaced, versions: []}",
    ));
    api.put::<Secret>(&yaml(&format!(
        "metadata: {{name: default-restic, namespace: {PROTECTED}}}\nstringData: {{RESTIC_PASSWORD: {PASSWORD}, RESTIC_REPOSITORY: \"s3:https://s3.example.com/backups/lifeline\", AWS_ACCESS_KEY_ID: key-id, AWS_SECRET_ACCESS_KEY: key-secret-1}}"
    )));
    api.put::<VolumeSnapshotClass>(&yaml(
        "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshotClass\nmetadata: {name: snapclass}\ndriver: hostpath.lifeline.dev\ndeletionPolicy: Delete",
    ));
    let ctx = Arc::new(Context::new(api.client(), settings, max_backups, 2));
    World { api, ctx }
}

impl World {
    /// A ready user snapshot of claim `pvc` in `shop`, and a VSB for it.
    fn backup_of(&self, vsb: &str, pvc: &str) {
        self.api.put::<PersistentVolumeClaim>(&yaml(&format!(
            "metadata: {{name: {pvc}, namespace: shop}}\nspec: {{storageClassName: fast, accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}"
        )));
        self.api.put::<VolumeSnapshot>(&yaml(&format!(
            "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshot\nmetadata: {{name: snap-{vsb}, namespace: shop}}\nspec: {{source: {{persistentVolumeClaimName: {pvc}}}, volumeSnapshotClassName: snapclass}}"
        )));
        self.api.put::<VolumeSnapshotContent>(&yaml(&format!(
            "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshotContent\nmetadata: {{name: content-{vsb}}}\nspec: {{deletionPolicy: Delete, driver: hostpath.lifeline.dev, volumeSnapshotClassName: snapclass, source: {{volumeHandle: v}}, volumeSnapshotRef: {{namespace: shop, name: snap-{vsb}}}}}\nstatus: {{readyToUse: true, snapshotHandle: handle-{vsb}, restoreSize: 1073741824}}"
        )));
        self.api.put::<VolumeSnapshotBackup>(&yaml(&format!(
            "apiVersion: datamover.oadp.openshift.io/v1alpha1\nkind: VolumeSnapshotBackup\nmetadata: {{name: {vsb}, namespace: shop}}\nspec: {{volumeSnapshotContent: {{name: content-{vsb}}}, protectedNamespace: {PROTECTED}, resticSecretRef: {{name: default-restic}}}}"
        )));
    }

    fn vsb(&self, name: &str) -> Option<VolumeSnapshotBackup> {
        self.api.get(Some("shop"), name)
    }

    async fn reconcile(&self, name: &str) {
        let vsb = self.vsb(name).expect("stored");
        reconcile(Arc::new(vsb), Arc::clone(&self.ctx))
            .await
            .unwrap();
    }

    fn phase(&self, name: &str) -> (Option<String>, Option<String>) {
        let status = self.vsb(name).and_then(|v| v.status).unwrap_or_default();
        (
            status.phase.map(|p| p.as_str().to_owned()),
            status.batching_status.map(|b| b.as_str().to_owned()),
        )
    }

    /// Plays VolSync: the mover finished (or failed) this VSB's trigger.
    async fn mover(&self, vsb: &str, status: serde_json::Value) {
        let rs = names(&self.vsb(vsb).unwrap()).replication_source();
        Api::<ReplicationSource>::namespaced(self.ctx.client.clone(), PROTECTED)
            .patch_status(
                &rs,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .unwrap();
    }

    fn working_left(&self, vsb: &VolumeSnapshotBackup) -> Vec<&'static str> {
        let n = names(vsb);
        let mut left = Vec::new();
        if self
            .api
            .get::<VolumeSnapshotContent>(None, &n.content())
            .is_some()
        {
            left.push("content")
        }
        if self
            .api
            .get::<VolumeSnapshot>(Some(PROTECTED), &n.snapshot())
            .is_some()
        {
            left.push("snapshot")
        }
        if self
            .api
            .get::<PersistentVolumeClaim>(Some(PROTECTED), &n.pvc())
            .is_some()
        {
            left.push("pvc")
        }
        if self
            .api
            .get::<Secret>(Some(PROTECTED), &n.secret())
            .is_some()
        {
            left.push("secret")
        }
        if self
            .api
            .get::<ReplicationSource>(Some(PROTECTED), &n.replication_source())
            .is_some()
        {
            left.push("rs")
        }
        left
    }
}

fn phase(p: &str, b: &str) -> (Option<String>, Option<String>) {
    (Some(p.into()), Some(b.into()))
}

#[tokio::test]
async fn a_backup_runs_to_completed_and_leaves_nothing_behind() {
    let w = world(4);
    w.backup_of("b1", "orders-db");
    w.reconcile("b1").await; // start
    assert_eq!(w.phase("b1"), phase("InProgress", "Processing"));
    w.reconcile("b1").await; // create working objects
    let vsb = w.vsb("b1").unwrap();
    assert_eq!(
        w.working_left(&vsb),
        ["content", "snapshot", "pvc", "secret", "rs"]
    );
    let secret: Secret = w.api.get(Some(PROTECTED), &names(&vsb).secret()).unwrap();
    assert_eq!(
        secret.string_data.unwrap()["RESTIC_REPOSITORY"],
        "s3:https://s3.example.com/backups/lifeline/shop/orders-db"
    );

    w.reconcile("b1").await; // waiting for the mover: nothing changes
    assert_eq!(w.phase("b1"), phase("InProgress", "Processing"));
    w.mover("b1", json!({"lastManualSync": "b1", "lastSyncStartTime": "2026-03-02T01:00:00Z", "lastSyncTime": "2026-03-02T01:00:05Z"}))
        .await;
    w.reconcile("b1").await; // done
    let vsb = w.vsb("b1").unwrap();
    let status = vsb.status.clone().unwrap();
    assert_eq!(status.phase.unwrap().as_str(), "SnapshotBackupDone");
    assert_eq!(
        status.restic_repository.as_deref(),
        Some("s3:https://s3.example.com/backups/lifeline/shop/orders-db")
    );
    assert_eq!(
        status.source_pvc_data.unwrap().name.as_deref(),
        Some("orders-db")
    );
    let annotations = vsb.metadata.annotations.clone().unwrap();
    assert_eq!(
        annotations["datamover.io/restic-repository"],
        "s3:https://s3.example.com/backups/lifeline/shop/orders-db"
    );
    assert_eq!(annotations["datamover.io/source-pvc-size"], "1Gi");

    w.reconcile("b1").await; // clean up: the working claim first ...
    assert_eq!(
        w.working_left(&vsb),
        ["content", "snapshot"],
        "the snapshot only once the claim restored from it is gone (crate::stuck_snapshot)"
    );
    w.reconcile("b1").await; // ... its snapshot and content once it is gone
    assert!(
        w.working_left(&vsb).is_empty(),
        "left: {:?}",
        w.working_left(&vsb)
    );
    w.reconcile("b1").await; // complete
    assert_eq!(w.phase("b1"), phase("Completed", "Completed"));
    assert!(
        w.api
            .get::<VolumeSnapshotContent>(None, "content-b1")
            .is_some(),
        "the user's snapshot is untouched"
    );
}

#[tokio::test]
async fn a_controller_restricted_to_another_protected_namespace_refuses_without_touching_it() {
    let w = world_with(
        Settings {
            protected_namespace: Some("other-system".into()),
            ..Settings::default()
        },
        4,
    );
    w.backup_of("b1", "orders-db");
    w.api.take_writes();
    w.reconcile("b1").await;
    w.reconcile("b1").await;
    let vsb = w.vsb("b1").unwrap();
    let condition = &vsb.status.clone().unwrap().conditions[0];
    assert_eq!(condition.status, "False");
    assert!(
        condition.message.contains("not served") && condition.message.contains("other-system"),
        "{}",
        condition.message
    );
    assert!(
        vsb.finalizers().is_empty(),
        "no finalizer it could not honour"
    );
    assert!(w.working_left(&vsb).is_empty());
    let writes = w.api.take_writes();
    assert_eq!(
        writes.len(),
        1,
        "one status write, not one per reconcile: {writes:?}"
    );
    assert!(writes[0].contains("/status"), "{writes:?}");
    let events = w.api.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].1, "ProtectedNamespaceNotServed");
}

#[tokio::test]
async fn a_failing_mover_fails_the_backup_without_the_secret_and_cleans_up() {
    let w = world(4);
    w.backup_of("b1", "orders-db");
    for _ in 0..2 {
        w.reconcile("b1").await;
    }
    w.mover("b1", json!({"latestMoverStatus": {"result": "Failed", "logs": format!("Fatal: wrong password {PASSWORD}")}}))
        .await;
    w.reconcile("b1").await;
    let status = w.vsb("b1").unwrap().status.unwrap();
    assert_eq!(status.phase.unwrap().as_str(), "Failed");
    let message = &status.conditions[0].message;
    assert!(
        message.contains("wrong password") && !message.contains(PASSWORD),
        "{message}"
    );
    assert!(
        w.api
            .events()
            .iter()
            .all(|(_, _, note)| !note.contains(PASSWORD))
    );
    w.reconcile("b1").await;
    w.reconcile("b1").await; // the snapshot, once its claim is gone
    assert!(w.working_left(&w.vsb("b1").unwrap()).is_empty());
}

#[tokio::test]
async fn deleting_a_backup_midway_removes_every_working_object() {
    let w = world(4);
    w.backup_of("b1", "orders-db");
    for _ in 0..2 {
        w.reconcile("b1").await;
    }
    let vsb = w.vsb("b1").unwrap();
    Api::<VolumeSnapshotBackup>::namespaced(w.ctx.client.clone(), "shop")
        .delete("b1", &DeleteParams::default())
        .await
        .unwrap();
    w.reconcile("b1").await; // clean up: the claim ...
    w.reconcile("b1").await; // ... then the snapshot
    assert!(w.working_left(&vsb).is_empty());
    w.reconcile("b1").await; // release
    assert!(
        w.vsb("b1").is_none(),
        "the finalizer is gone and so is the VSB"
    );
    assert!(
        w.api
            .get::<VolumeSnapshotContent>(None, "content-b1")
            .is_some(),
        "the user's snapshot is untouched"
    );
}

/// The working VolumeSnapshot goes before its content: while the snapshot-controller still
/// holds the snapshot (a finalizer), the content is left alone — a bound content deleted first
/// kept the csi-snapshotter's finalizer for good on the real sidecars.
#[tokio::test]
async fn the_working_content_is_deleted_only_after_its_snapshot_is_gone() {
    let w = world(4);
    w.backup_of("b1", "orders-db");
    for _ in 0..2 {
        w.reconcile("b1").await;
    }
    let vsb = w.vsb("b1").unwrap();
    let n = names(&vsb);
    let mut snapshot: VolumeSnapshot = w.api.get(Some(PROTECTED), &n.snapshot()).unwrap();
    snapshot.metadata.finalizers = Some(vec![
        "snapshot.storage.kubernetes.io/volumesnapshot-bound-protection".into(),
    ]);
    w.api.put(&snapshot);
    Api::<VolumeSnapshotBackup>::namespaced(w.ctx.client.clone(), "shop")
        .delete("b1", &DeleteParams::default())
        .await
        .unwrap();
    w.reconcile("b1").await;
    assert_eq!(w.working_left(&vsb), vec!["content", "snapshot"]);
    // The snapshot-controller lets the snapshot go.
    w.api
        .remove::<VolumeSnapshot>(Some(PROTECTED), &n.snapshot());
    w.reconcile("b1").await;
    assert!(
        w.working_left(&vsb).is_empty(),
        "{:?}",
        w.working_left(&vsb)
    );
}

#[tokio::test]
async fn the_concurrency_limit_is_counted_from_the_cluster_and_survives_a_restart() {
    let w = world(1);
    w.backup_of("b1", "db-1");
    w.backup_of("b2", "db-2");
    w.reconcile("b1").await;
    w.reconcile("b2").await;
    assert_eq!(w.phase("b1").1.as_deref(), Some("Processing"));
    assert_eq!(w.phase("b2").1.as_deref(), Some("Queued"));
    // A restarted controller (a fresh context, nothing in memory) sees the same.
    let restarted = World {
        api: w.api.clone(),
        ctx: Arc::new(Context::new(w.api.client(), Settings::default(), 1, 2)),
    };
    restarted.reconcile("b2").await;
    assert_eq!(restarted.phase("b2").1.as_deref(), Some("Queued"));
    // When b1 has finished (moved, cleaned up, completed), b2 gets its slot.
    restarted.reconcile("b1").await; // create
    restarted.mover("b1", json!({"lastManualSync": "b1"})).await;
    restarted.reconcile("b1").await; // done
    restarted.reconcile("b2").await;
    assert_eq!(
        restarted.phase("b2").1.as_deref(),
        Some("Queued"),
        "b1 still holds its slot while cleaning up"
    );
    restarted.reconcile("b1").await; // clean up: the claim ...
    restarted.reconcile("b1").await; // ... then the snapshot
    restarted.reconcile("b1").await; // complete
    assert_eq!(restarted.phase("b1"), phase("Completed", "Completed"));
    restarted.reconcile("b2").await;
    assert_eq!(restarted.phase("b2").1.as_deref(), Some("Processing"));
}

#[tokio::test]
async fn two_backups_of_one_volume_never_run_together() {
    let w = world(10);
    w.backup_of("b1", "db");
    w.backup_of("b2", "db");
    w.reconcile("b1").await;
    w.reconcile("b2").await;
    assert_eq!(w.phase("b1").1.as_deref(), Some("Processing"));
    assert_eq!(
        w.phase("b2").1.as_deref(),
        Some("Queued"),
        "same repository: wait"
    );
}

/// A finished backup completes at once, but the next backup of its volume starts only after
/// the first one's point in time, so `restore-as-of` names exactly one backup.
#[tokio::test]
async fn the_next_backup_of_a_volume_waits_for_the_previous_ones_point_in_time() {
    let w = world(10);
    w.backup_of("b1", "db");
    w.backup_of("b2", "db");
    w.reconcile("b1").await; // start
    w.reconcile("b1").await; // create
    w.mover(
        "b1",
        json!({"lastManualSync": "b1", "lastSyncTime": "2999-01-01T00:00:00Z"}),
    )
    .await;
    w.reconcile("b1").await; // done: its point in time is 2999-01-01T00:00:01Z
    w.reconcile("b1").await; // clean up: the claim ...
    w.reconcile("b1").await; // ... then the snapshot
    w.reconcile("b1").await; // complete
    assert_eq!(
        w.phase("b1"),
        phase("Completed", "Completed"),
        "no waiting on completion"
    );
    w.reconcile("b2").await;
    assert_eq!(
        w.phase("b2").1.as_deref(),
        Some("Queued"),
        "b1's point in time has not passed"
    );
    // Once it has, b2 starts.
    let b1 = w.vsb("b1").unwrap();
    Api::<VolumeSnapshotBackup>::namespaced(w.ctx.client.clone(), "shop")
        .patch(
            "b1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"datamover.io/restore-as-of": "2020-01-01T00:00:00Z"}}})),
        )
        .await
        .unwrap();
    assert!(b1.annotations().contains_key("datamover.io/restore-as-of"));
    w.reconcile("b2").await;
    assert_eq!(w.phase("b2").1.as_deref(), Some("Processing"));
}

#[tokio::test]
async fn a_bad_input_is_a_condition_and_an_event_once() {
    let w = world(4);
    w.backup_of("b1", "db");
    w.api.remove::<Secret>(Some(PROTECTED), "default-restic");
    w.reconcile("b1").await;
    let condition = w.vsb("b1").unwrap().status.unwrap().conditions[0].clone();
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("False", "Error")
    );
    assert!(
        condition
            .message
            .contains("restic Secret lifeline-system/default-restic not found"),
        "{}",
        condition.message
    );
    w.api.take_writes();
    w.reconcile("b1").await;
    assert!(
        w.api.take_writes().is_empty(),
        "an unchanged problem is not rewritten"
    );
    assert!(
        w.api
            .events()
            .iter()
            .any(|(ty, reason, _)| ty == "Warning" && reason == "ResticSecretMissing")
    );
}

/// While the mover runs, `status.progress` says so — written at most once per interval —
/// and when it finishes the status keeps its totals and the completion says them.
#[tokio::test]
async fn progress_is_reported_at_most_every_interval_and_totals_kept_to_the_end() {
    let w = world_with(
        Settings {
            progress_interval: std::time::Duration::from_secs(3600),
            ..Settings::default()
        },
        4,
    );
    w.backup_of("b1", "orders-db");
    w.reconcile("b1").await; // start
    w.reconcile("b1").await; // create working objects
    w.reconcile("b1").await; // the mover runs: no Pod log to read here, so "Preparing"
    let progress = w.vsb("b1").unwrap().status.unwrap().progress.unwrap();
    assert_eq!(
        progress.phase.and_then(|p| p.known()),
        Some(lifeline_api::datamover::MoverPhase::Preparing)
    );
    assert!(progress.summary.unwrap().starts_with("Preparing, "));
    assert!(progress.updated.is_some());
    w.api.take_writes();
    w.reconcile("b1").await; // not due again yet: nothing written
    assert!(w.api.take_writes().is_empty());

    w.mover("b1", json!({"lastManualSync": "b1", "lastSyncTime": "2026-03-02T01:00:05Z",
        "latestMoverStatus": {"result": "Successful", "logs": "Added to the repository: 1.500 MiB (1.200 MiB stored)\nprocessed 3 files, 2.000 MiB in 0:02\nRestic completed in 4s"}}))
        .await;
    w.reconcile("b1").await; // done
    let progress = w.vsb("b1").unwrap().status.unwrap().progress.unwrap();
    assert_eq!(progress.bytes_added, Some(1_572_864));
    assert_eq!(progress.files_done, Some(3));
    assert!(
        progress
            .summary
            .unwrap()
            .starts_with("Done 1.5 MiB added, 3 files, ")
    );
    w.reconcile("b1").await; // clean up: the claim ...
    w.reconcile("b1").await; // ... then the snapshot
    w.reconcile("b1").await; // complete
    let status = w.vsb("b1").unwrap().status.unwrap();
    assert!(
        status.conditions[0]
            .message
            .starts_with("backup completed: 1.5 MiB added to the repository, 3 files, in "),
        "{}",
        status.conditions[0].message
    );
}

/// OADP's ConfigMap asks for the workload's security context and no Pod mounts the claim:
/// the status says so (into Completed) and the mover runs without one.
#[tokio::test]
async fn no_workload_pod_for_the_movers_security_context_is_said_in_the_status() {
    let w = world(4);
    w.api.put::<k8s_openapi::api::core::v1::ConfigMap>(&yaml(&format!(
        "metadata: {{name: fast-config, namespace: {PROTECTED}}}\ndata: {{SourceMoverSecurityContext: \"true\"}}"
    )));
    w.backup_of("b1", "orders-db");
    w.reconcile("b1").await; // start
    w.reconcile("b1").await; // create working objects
    let vsb = w.vsb("b1").unwrap();
    let notice = lifeline_datamover_controller::reconcile::backup::no_workload_pod("orders-db");
    assert!(
        vsb.status.clone().unwrap().conditions[0]
            .message
            .contains(&notice),
        "{:?}",
        vsb.status
    );
    let rs: ReplicationSource = w
        .api
        .get(Some(PROTECTED), &names(&vsb).replication_source())
        .unwrap();
    assert!(
        rs.spec
            .restic
            .unwrap()
            .mover
            .mover_security_context
            .is_none()
    );
    w.api.take_writes();
    w.reconcile("b1").await; // said once
    assert!(w.api.take_writes().iter().all(|w| !w.contains("/status")));
    w.mover(
        "b1",
        json!({"lastManualSync": "b1", "lastSyncTime": "2026-03-02T01:00:05Z"}),
    )
    .await;
    for _ in 0..4 {
        w.reconcile("b1").await; // done, clean up (claim, then snapshot), complete
    }
    let status = w.vsb("b1").unwrap().status.unwrap();
    assert_eq!(status.phase.unwrap().as_str(), "Completed");
    assert!(status.conditions[0].message.contains(&notice));
}
