//! What the data mover's scenarios share: a cluster with the hostpath driver, VolSync and an
//! S3 server, an application claim with data, and the data mover running (serving
//! VolumeSnapshotBackups/Restores and Velero's DataUploads/DataDownloads).
#![allow(dead_code)]

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Secret};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::PostParams;
use kube::{Api, Client};
use lifeline_api::foreign::snapshot::VolumeSnapshotClass;
use lifeline_e2e::actors::Site;
use lifeline_e2e::process::{Process, binary};
use lifeline_e2e::{TestCluster, rbac, wait};
use serde_json::json;

pub const T: Duration = Duration::from_secs(120);
pub const DRIVER: &str = "hostpath.lifeline.dev";

pub fn obj<K: serde::de::DeserializeOwned>(value: serde_json::Value) -> K {
    serde_json::from_value(value).unwrap()
}

pub async fn bound_dir(client: &Client, site: &Site, ns: &str, claim: &str) -> std::path::PathBuf {
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns);
    let bound = wait::for_object(&claims, claim, T, "bound", |c| {
        c.spec
            .as_ref()
            .and_then(|s| s.volume_name.as_ref())
            .is_some()
    })
    .await
    .unwrap();
    let pv = Api::<PersistentVolume>::all(client.clone())
        .get(&bound.spec.unwrap().volume_name.unwrap())
        .await
        .unwrap();
    site.volume_dir(&pv.spec.unwrap().csi.unwrap().volume_handle)
}

/// A cluster with the storage and VolSync actors, an application claim with data, the user's
/// restic Secret (with `password`) in the protected namespace, and the datamover running.
pub struct World {
    /// Held: dropping it stops the API server.
    pub _cluster: TestCluster,
    pub client: Client,
    pub app: String,
    pub protected: String,
    pub site: Site,
    pub sc: String,
    pub vsc: String,
    pub dir: std::path::PathBuf,
    /// The repository base (S3 over HTTPS, private CA) in the user's restic Secret.
    pub repository: String,
    pub s3: lifeline_e2e::s3::S3Server,
    pub payload: Vec<u8>,
    pub mover: Process,
    /// The hostpath driver and its sidecars.
    pub _storage: (Process, lifeline_e2e::storage_controllers::Sidecars),
}

pub async fn world(password: &str) -> World {
    world_with(password, &[]).await
}

/// [`world`], with more flags for the data mover.
pub async fn world_with(password: &str, flags: &[&str]) -> World {
    world_on(password, flags, None).await
}

/// [`world_with`], the mover's uploads limited to `upload_limit_kib` KiB/s (a slow link).
pub async fn world_on(password: &str, flags: &[&str], upload_limit_kib: Option<u32>) -> World {
    let cluster = TestCluster::start().await.unwrap();
    let client = cluster.client();
    let app = cluster.namespace("app").await.unwrap();
    let protected = cluster.namespace("lifeline-system").await.unwrap();
    // The hostpath driver with the real CSI sidecars on its socket.
    let (site, storage) = cluster.lone_driver(DRIVER).await.unwrap();
    let (sc, vsc) = (format!("sc-{app}"), format!("vsc-{app}"));
    // The cluster's default class, as every real cluster has one: VolSync's restic cache claim
    // names no class unless a storage-class ConfigMap gives one.
    Api::<StorageClass>::all(client.clone())
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": sc, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": DRIVER})),
        )
        .await
        .unwrap();
    Api::<VolumeSnapshotClass>::all(client.clone())
        .create(
            &PostParams::default(),
            &obj(
                json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
            "metadata": {"name": vsc}, "driver": DRIVER, "deletionPolicy": "Delete"}),
            ),
        )
        .await
        .unwrap();

    // The application's data, and a CSI snapshot of it, as a backup tool would take.
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), &app)
        .create(&PostParams::default(), &obj(json!({"metadata": {"name": "data"},
            "spec": {"storageClassName": sc, "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})))
        .await
        .unwrap();
    let dir = bound_dir(&client, &site, &app, "data").await;
    std::fs::create_dir_all(dir.join("db")).unwrap();
    let payload: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
    std::fs::write(dir.join("db/table.bin"), &payload).unwrap();
    let s3 =
        lifeline_e2e::s3::S3Server::require_limited(cluster.dir(), "backups", upload_limit_kib)
            .await
            .unwrap();
    let repository = s3.repository("backups", "lifeline");
    Api::<Secret>::namespaced(client.clone(), &protected)
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "restic"},
            "stringData": s3.restic_secret("backups", "lifeline", password)})),
        )
        .await
        .unwrap();
    // Velero's CRDs, as Velero v1.18.1 publishes them: the mover serves its requests too.
    cluster
        .install_crds(&lifeline_e2e::upstream::velero().unwrap())
        .await
        .unwrap();
    let kubeconfig = cluster
        .controller_kubeconfig(rbac::Controller::Datamover, &protected, Some(&protected))
        .await
        .unwrap();
    let mut mover = Process::spawn(
        cluster.dir(),
        "datamover",
        &binary(
            "lifeline-datamover-controller",
            "lifeline-datamover-controller",
        )
        .unwrap(),
        &[
            "--admin-address".into(),
            "127.0.0.1:0".into(),
            "--log-level".into(),
            "info,lifeline_datamover_controller=debug".into(),
            "--protected-namespace".into(),
            protected.clone(),
        ]
        .into_iter()
        .chain(flags.iter().map(|f| f.to_string()))
        .collect::<Vec<_>>(),
        &[("KUBECONFIG".into(), kubeconfig.display().to_string())],
    )
    .unwrap();
    mover.wait_for_line("admin-listen", T).await.unwrap();
    World {
        _cluster: cluster,
        client,
        app,
        protected,
        site,
        sc,
        vsc,
        dir,
        repository,
        s3,
        payload,
        mover,
        _storage: storage,
    }
}

/// Every request the data mover made is allowed by the rules its crate declares (which the
/// Helm chart grants, in the protected namespace where they are namespaced).
pub async fn within_declared_rbac(cluster: &TestCluster, protected: &str) {
    rbac::check(
        cluster,
        "lifeline-datamover-controller/",
        lifeline_datamover_controller::rbac::RULES,
        &rbac::Namespaces {
            own: "default",
            protected: Some(protected),
        },
    )
    .await
    .unwrap();
}
