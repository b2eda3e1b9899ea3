//! The VolSync restic mover runs the real restic: backups into a repository that successive
//! backups reuse, restores of an older backup, and restic's own message on failure — with no
//! secret value in the status.

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Secret};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use lifeline_api::foreign::volsync::{ReplicationDestination, ReplicationSource};
use lifeline_e2e::actors::{Actors, Site, volsync};
use lifeline_e2e::{TestCluster, wait};
use serde_json::json;

const T: Duration = Duration::from_secs(120);
const DRIVER: &str = "hostpath.lifeline.dev";
const PASSWORD: &str = "correct-horse-battery-staple";

fn obj<K: serde::de::DeserializeOwned>(value: serde_json::Value) -> K {
    serde_json::from_value(value).unwrap()
}

struct World {
    cluster: TestCluster,
    client: Client,
    ns: String,
    site: Site,
    _actors: Actors,
}

/// A cluster with the stand-in mover; `allow_local_repository` is its test-only switch for
/// local-path repositories (the real mover refuses them).
async fn world() -> World {
    world_with(true).await
}

async fn world_with(allow_local_repository: bool) -> World {
    // Actor warnings show in the output of a failing test.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("warn,lifeline_e2e=info")
        .try_init();
    let cluster = TestCluster::start().await.unwrap();
    let client = cluster.client();
    let ns = cluster.namespace("volsync").await.unwrap();
    let site = Site {
        driver: DRIVER.into(),
        root: cluster.dir().join("site"),
        allow_local_repository,
        pod_logs: cluster.pod_logs(),
        upload_limit_kib: None,
    };
    let mut actors = Actors::storage(client.clone(), site.clone());
    actors.merge(volsync::start(client.clone(), site.clone()).await.unwrap());
    Api::<StorageClass>::all(client.clone())
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": format!("sc-{ns}")}, "provisioner": DRIVER})),
        )
        .await
        .unwrap();
    Api::<lifeline_api::foreign::snapshot::VolumeSnapshotClass>::all(client.clone())
        .create(&PostParams::default(), &obj(json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
            "metadata": {"name": format!("vsc-{ns}")}, "driver": DRIVER, "deletionPolicy": "Delete"})))
        .await
        .unwrap();
    World {
        cluster,
        client,
        ns,
        site,
        _actors: actors,
    }
}

impl World {
    async fn bound_claim(&self, name: &str) -> std::path::PathBuf {
        let claims = Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), &self.ns);
        if claims.get_opt(name).await.unwrap().is_none() {
            claims
                .create(&PostParams::default(), &obj(json!({"metadata": {"name": name},
                    "spec": {"storageClassName": format!("sc-{}", self.ns), "accessModes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": "1Gi"}}}})))
                .await
                .unwrap();
        }
        let claim = wait::for_object(&claims, name, T, "bound", |c| {
            c.spec
                .as_ref()
                .and_then(|s| s.volume_name.as_ref())
                .is_some()
        })
        .await
        .unwrap();
        let pv = Api::<PersistentVolume>::all(self.client.clone())
            .get(&claim.spec.unwrap().volume_name.unwrap())
            .await
            .unwrap();
        self.site
            .volume_dir(&pv.spec.unwrap().csi.unwrap().volume_handle)
    }

    async fn repository(&self, name: &str, password: &str) {
        let repository = self.cluster.dir().join("repository").display().to_string();
        self.secret(
            name,
            json!({"RESTIC_REPOSITORY": repository, "RESTIC_PASSWORD": password}),
        )
        .await;
    }

    async fn secret(&self, name: &str, data: serde_json::Value) {
        Api::<Secret>::namespaced(self.client.clone(), &self.ns)
            .create(
                &PostParams::default(),
                &obj(json!({"metadata": {"name": name}, "stringData": data})),
            )
            .await
            .unwrap();
    }

    async fn backup(&self, name: &str, secret: &str, trigger: &str) {
        let sources = Api::<ReplicationSource>::namespaced(self.client.clone(), &self.ns);
        if sources.get_opt(name).await.unwrap().is_none() {
            sources
                .create(&PostParams::default(), &obj(json!({"apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationSource",
                    "metadata": {"name": name},
                    "spec": {"sourcePVC": "app", "trigger": {"manual": trigger},
                             "restic": {"repository": secret, "copyMethod": "Direct"}}})))
                .await
                .unwrap();
        } else {
            sources
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"trigger": {"manual": trigger}}})),
                )
                .await
                .unwrap();
        }
    }
    /// Creates a ReplicationDestination with `restic` settings and waits until it restored.
    async fn restore(&self, name: &str, restic: serde_json::Value) -> ReplicationDestination {
        let destinations = Api::<ReplicationDestination>::namespaced(self.client.clone(), &self.ns);
        destinations
            .create(&PostParams::default(), &obj(json!({"apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationDestination",
                "metadata": {"name": name}, "spec": {"trigger": {"manual": "restore"}, "restic": restic}})))
            .await
            .unwrap();
        wait::for_object(&destinations, name, T, "restored", |d| {
            d.status
                .as_ref()
                .and_then(|s| s.sync.last_manual_sync.as_deref())
                == Some("restore")
        })
        .await
        .unwrap()
    }
}

impl World {
    /// Waits until the ReplicationSource `name` reports an `Error`; returns its message.
    async fn failure_of(&self, name: &str) -> String {
        let sources = Api::<ReplicationSource>::namespaced(self.client.clone(), &self.ns);
        let failed = wait::for_object(&sources, name, T, "failed", |s| {
            s.status
                .as_ref()
                .is_some_and(|s| s.sync.conditions.iter().any(|c| c.reason == "Error"))
        })
        .await
        .unwrap();
        status_of(&failed).conditions[0].message.clone()
    }
}

fn status_of(source: &ReplicationSource) -> &lifeline_api::foreign::volsync::SyncStatus {
    &source.status.as_ref().unwrap().sync
}

#[tokio::test]
async fn backups_reuse_the_repository_and_an_older_backup_restores() {
    let world = world().await;
    let dir = world.bound_claim("app").await;
    std::fs::create_dir_all(dir.join("db")).unwrap();
    std::fs::write(dir.join("db/big.bin"), vec![7u8; 2 << 20]).unwrap();
    std::fs::write(dir.join("db/state.txt"), "first").unwrap();
    world.repository("repo", PASSWORD).await;
    let sources = Api::<ReplicationSource>::namespaced(world.client.clone(), &world.ns);

    world.backup("app-backup", "repo", "one").await;
    let first = wait::for_object(&sources, "app-backup", T, "synced once", |s| {
        s.status
            .as_ref()
            .and_then(|s| s.sync.last_manual_sync.as_deref())
            == Some("one")
    })
    .await
    .unwrap();
    let first_status = status_of(&first);
    let logs = first_status
        .latest_mover_status
        .as_ref()
        .unwrap()
        .logs
        .clone()
        .unwrap();
    assert!(
        logs.contains("snapshot") && logs.contains("saved"),
        "{logs}"
    );
    let condition = &first_status.conditions[0];
    assert_eq!(
        (
            condition.type_.as_str(),
            condition.status.as_str(),
            condition.reason.as_str()
        ),
        ("Synchronizing", "False", "WaitingForManual")
    );
    let first_done = first_status.last_sync_time.clone().unwrap().0;

    // The second backup starts in a later second than the first ended, so restoreAsOf can
    // tell them apart at the API's one-second precision.
    wait::until(T, "the next second", || async {
        (k8s_openapi::jiff::Timestamp::now().as_second() >= first_done.as_second() + 2)
            .then_some(())
    })
    .await
    .unwrap();
    std::fs::write(dir.join("db/state.txt"), "second").unwrap();
    world.backup("app-backup", "repo", "two").await;
    let second = wait::for_object(&sources, "app-backup", T, "synced twice", |s| {
        s.status
            .as_ref()
            .and_then(|s| s.sync.last_manual_sync.as_deref())
            == Some("two")
    })
    .await
    .unwrap();
    let logs = status_of(&second)
        .latest_mover_status
        .as_ref()
        .unwrap()
        .logs
        .clone()
        .unwrap();
    assert!(
        logs.contains("1 unmodified"),
        "restic reuses the unchanged file: {logs}"
    );

    // Restore the first backup by time into a new claim, exposed as a snapshot.
    let sc = format!("sc-{}", world.ns);
    let vsc = format!("vsc-{}", world.ns);
    let restored = world
        .restore("app-restore", json!({"repository": "repo", "copyMethod": "Snapshot", "capacity": "1Gi",
            "accessModes": ["ReadWriteOnce"], "storageClassName": sc, "volumeSnapshotClassName": vsc,
            "restoreAsOf": status_of(&second).last_sync_start_time.clone().unwrap()}))
        .await;
    let image = restored.status.unwrap().latest_image.unwrap();
    assert_eq!(image.kind, "VolumeSnapshot");
    let handle =
        lifeline_e2e::actors::provisioner::snapshot_handle(&world.client, &world.ns, &image.name)
            .await
            .unwrap()
            .unwrap();
    let snapshot_dir = world.site.snapshot_dir(&handle);
    assert_eq!(
        std::fs::read_to_string(snapshot_dir.join("db/state.txt")).unwrap(),
        "first"
    );
    assert_eq!(
        std::fs::read(snapshot_dir.join("db/big.bin")).unwrap(),
        vec![7u8; 2 << 20]
    );
}

#[tokio::test]
async fn a_wrong_password_fails_with_restics_message_and_no_secret() {
    let world = world().await;
    let dir = world.bound_claim("app").await;
    std::fs::write(dir.join("f"), "x").unwrap();
    world.repository("repo", PASSWORD).await;
    world.backup("good", "repo", "one").await;
    let sources = Api::<ReplicationSource>::namespaced(world.client.clone(), &world.ns);
    wait::for_object(&sources, "good", T, "synced", |s| {
        s.status
            .as_ref()
            .and_then(|s| s.sync.last_manual_sync.as_deref())
            == Some("one")
    })
    .await
    .unwrap();

    let wrong = "not-the-password-1234";
    world.repository("wrong", wrong).await;
    world.backup("bad", "wrong", "one").await;
    let failed = wait::for_object(&sources, "bad", T, "failed", |s| {
        s.status
            .as_ref()
            .is_some_and(|s| s.sync.conditions.iter().any(|c| c.reason == "Error"))
    })
    .await
    .unwrap();
    let status = status_of(&failed);
    let mover = status.latest_mover_status.as_ref().unwrap();
    assert_eq!(mover.result.as_ref().map(|r| r.as_str()), Some("Failed"));
    let text = serde_json::to_string(&failed.status).unwrap();
    assert!(
        text.contains("wrong password") || text.contains("no key found"),
        "{text}"
    );
    assert!(
        !text.contains(wrong) && !text.contains(PASSWORD),
        "a secret value in the status: {text}"
    );
    assert_ne!(
        status.last_manual_sync.as_deref(),
        Some("one"),
        "a failed sync is not done"
    );
}

/// The real mover can write only to its volume, cache and /tmp: a local path is refused.
#[tokio::test]
async fn a_local_repository_is_refused_like_the_real_mover_does() {
    let world = world_with(false).await;
    let dir = world.bound_claim("app").await;
    std::fs::write(dir.join("f"), "x").unwrap();
    world.repository("repo", PASSWORD).await;
    world.backup("local", "repo", "one").await;
    let message = world.failure_of("local").await;
    assert!(
        message.contains("RESTIC_REPOSITORY is a local path"),
        "{message}"
    );
    assert!(
        !world.cluster.dir().join("repository").exists(),
        "nothing written outside the mover's directories"
    );
}

/// Only the keys the real mover passes reach restic.
#[test]
fn only_the_keys_volsync_passes_reach_restic() {
    for key in [
        "RESTIC_REPOSITORY",
        "RESTIC_PASSWORD",
        "AWS_PROFILE",
        "OS_AUTH_URL",
        "AZURE_FEDERATED_TOKEN_FILE",
    ] {
        assert!(volsync::passed(key), "{key}");
    }
    for key in [
        "RESTIC_CUSTOM_CA",
        "RESTIC_CACERT",
        "RESTIC_PASSWORD_FILE",
        "OS_SOMETHING",
        "HOME",
        "restic-prune-interval",
    ] {
        assert!(!volsync::passed(key), "{key}");
    }
}

/// S3 over HTTPS with a private CA: the CA in the repository Secret alone is not enough (the
/// mover never reads it from the environment); named by `customCA`, restic trusts it.
#[tokio::test]
async fn backup_and_restore_through_an_s3_repository_with_a_private_ca() {
    let world = world_with(false).await;
    let s3 = lifeline_e2e::s3::S3Server::require(world.cluster.dir(), "backups")
        .await
        .unwrap();
    let dir = world.bound_claim("app").await;
    std::fs::write(dir.join("object.txt"), "through s3").unwrap();
    world
        .secret("s3-repo", s3.restic_secret("backups", &world.ns, PASSWORD))
        .await;
    let sources = Api::<ReplicationSource>::namespaced(world.client.clone(), &world.ns);
    // Without customCA: restic does not trust the server.
    world.backup("no-ca", "s3-repo", "one").await;
    let message = world.failure_of("no-ca").await;
    assert!(message.contains("certificate"), "{message}");

    sources
        .create(&PostParams::default(), &obj(json!({"apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationSource",
            "metadata": {"name": "s3-backup"},
            "spec": {"sourcePVC": "app", "trigger": {"manual": "one"},
                     "restic": {"repository": "s3-repo", "copyMethod": "Direct",
                                "customCA": {"secretName": "s3-repo", "key": "RESTIC_CUSTOM_CA"}}}})))
        .await
        .unwrap();
    wait::for_object(&sources, "s3-backup", T, "synced", |s| {
        s.status
            .as_ref()
            .and_then(|s| s.sync.last_manual_sync.as_deref())
            == Some("one")
    })
    .await
    .unwrap();
    let sc = format!("sc-{}", world.ns);
    let restored = world
        .restore("s3-restore", json!({"repository": "s3-repo", "copyMethod": "Direct", "capacity": "1Gi", "storageClassName": sc,
            "customCA": {"secretName": "s3-repo", "key": "RESTIC_CUSTOM_CA"}}))
        .await;
    let image = restored.status.unwrap().latest_image.unwrap();
    assert_eq!(image.kind, "PersistentVolumeClaim");
    let restored_dir = world.bound_claim(&image.name).await;
    assert_eq!(
        std::fs::read_to_string(restored_dir.join("object.txt")).unwrap(),
        "through s3"
    );
}
