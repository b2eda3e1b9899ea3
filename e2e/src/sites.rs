//! Two DR sites, each with its own API server (a `TestCluster`: local by default, or a cluster
//! named by a kubeconfig), hostpath driver, replication controller and storage actors; the two
//! drivers peer over loopback TCP. The building block of the DR scenarios and the demo.
//!
//! Each site has names of its own — namespaces (unique), driver name, storage, replication and
//! snapshot classes — its replication controller watches only its application namespace and
//! serves only its driver, and its actors serve only its driver, so both sites can share one
//! cluster (a `kubeconfig` backend) as well as run on two.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use lifeline_api::replication::{CurrentState, VolumeReplication, VolumeReplicationClass};
use serde_json::json;

use crate::actors::Site;
use crate::process::{Process, binary};
use crate::{TestCluster, wait};

const T: Duration = Duration::from_secs(60);

/// The sites' controllers' `--info-refresh`: how stale the sync facts they report may be.
pub const INFO_REFRESH_SECONDS: u64 = 5;

fn obj<K: serde::de::DeserializeOwned>(value: serde_json::Value) -> K {
    serde_json::from_value(value).expect("a valid object")
}

fn replicas_of(replicas: Option<i32>, meta: ObjectMeta) -> (i32, Option<String>) {
    (
        replicas.unwrap_or(1),
        meta.annotations
            .and_then(|a| a.get("lifeline.dev/replicas").cloned()),
    )
}

/// One site.
pub struct SiteEnv {
    pub name: &'static str,
    pub cluster: TestCluster,
    /// The kubeconfig `kubectl lifeline` runs with at this site ([`TestCluster::cli_kubeconfig`]).
    pub cli_kubeconfig: PathBuf,
    pub site: Site,
    pub driver: Process,
    pub controller: Process,
    /// The driver's admin endpoint (faults, link).
    pub admin: String,
    pub storage_class: String,
    /// This site's hostpath driver name (the provisioner of its classes).
    pub driver_name: String,
    /// This site's VolumeReplicationClass.
    pub class: String,
    /// This site's VolumeSnapshotClass.
    pub snapshot_class: String,
    /// The application namespace.
    pub app: String,
    /// The namespace where the data mover keeps its working objects.
    pub protected: String,
    /// The data mover and its admin address, once [`SiteEnv::start_datamover`] ran.
    pub datamover: Option<(Process, String)>,
    /// The S3 server of the data mover's repository, while the data mover runs.
    s3: Option<crate::s3::S3Server>,
    /// external-provisioner and csi-snapshotter on this site's driver.
    _sidecars: crate::storage_controllers::Sidecars,
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Creates `object` unless one of that name exists (set-up shared by runs on one cluster).
async fn create_or_keep<K>(api: &Api<K>, object: &K) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.create(&PostParams::default(), object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

impl SiteEnv {
    async fn start(
        name: &'static str,
        own_port: u16,
        peer_port: u16,
        cluster: TestCluster,
        app: Option<&str>,
        shared_cluster: bool,
        peer_tls_dir: &Path,
    ) -> anyhow::Result<Self> {
        // Two sites on two clusters use the same names, as real DR sites do (the same CSI
        // driver, classes and namespace at both); two sites sharing one cluster need names of
        // their own (each driver, class and actor serves only its own).
        let suffix = if shared_cluster {
            format!("-{name}")
        } else {
            String::new()
        };
        let driver_name = if suffix.is_empty() {
            "hostpath.lifeline.dev".to_owned()
        } else {
            format!("{name}.hostpath.lifeline.dev")
        };
        let class = format!("mirror{suffix}");
        let snapshot_class = format!("hostpath-snapshots{suffix}");
        let storage_class = format!("hostpath{suffix}");
        // The application's namespace: the peer's name when given (two clusters: the same
        // application in the same namespace at both sites, as in real DR), else a new one.
        let app = match app {
            Some(app) => {
                create_or_keep(
                    &Api::<k8s_openapi::api::core::v1::Namespace>::all(cluster.client()),
                    &obj(json!({"metadata": {"name": app}})),
                )
                .await?;
                app.to_owned()
            }
            None => cluster.namespace("app").await?,
        };
        let protected = cluster.namespace("lifeline-system").await?;
        let dir = cluster.dir().to_owned();
        let root = dir.join(format!("site-{name}"));
        let endpoint = format!("unix://{}", dir.join(format!("{name}.sock")).display());
        let mut driver = Process::spawn(
            &dir,
            &format!("driver-{name}"),
            &binary("lifeline-hostpath-driver", "lifeline-hostpath-driver")?,
            &[
                "--endpoint".into(),
                endpoint.clone(),
                "--root".into(),
                root.display().to_string(),
                "--peer-listen".into(),
                format!("127.0.0.1:{own_port}"),
                "--peer".into(),
                format!("tcp://127.0.0.1:{peer_port}"),
                // The peer link as installations run it: mutual TLS with the pair's own CA.
                "--peer-tls-dir".into(),
                peer_tls_dir.display().to_string(),
                "--admin-listen".into(),
                "127.0.0.1:0".into(),
                "--driver-name".into(),
                driver_name.clone(),
            ],
            &[],
        )?;
        let admin = driver.wait_for_line("admin-listen", T).await?;
        let controller_kubeconfig = cluster
            .controller_kubeconfig(crate::rbac::Controller::Replication, &app, None)
            .await?;
        let controller = Process::spawn(
            &dir,
            &format!("replication-controller-{name}"),
            &binary(
                "lifeline-replication-controller",
                "lifeline-replication-controller",
            )?,
            &[
                "--driver-name".into(),
                driver_name.clone(),
                "--csi-address".into(),
                endpoint,
                "--admin-address".into(),
                "127.0.0.1:0".into(),
                "--resync-poll-interval".into(),
                "1s".into(),
                // Sync facts at most 5 s old, so the data age the sites report is close to
                // the driver's (it syncs every second).
                "--info-refresh".into(),
                INFO_REFRESH_SECONDS.to_string() + "s",
                "--watch-namespace".into(),
                app.clone(),
            ],
            &[(
                "KUBECONFIG".into(),
                controller_kubeconfig.display().to_string(),
            )],
        )?;
        let mut controller = controller;
        // Its /metrics address is known from here on (tests and the demo read it).
        controller.wait_for_line("admin-listen", T).await?;
        let client = cluster.client();
        let socket = dir.join(format!("{name}.sock"));
        let sidecars = cluster.attach_driver(&driver_name, &socket, &root)?;
        let site = Site {
            driver: driver_name.clone(),
            root,
        };
        // The cluster's default class (VolSync's cache claims name none).
        create_or_keep(
            &Api::<StorageClass>::all(client.clone()),
            &obj(json!({"metadata": {"name": storage_class, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": driver_name})),
        )
        .await?;
        create_or_keep(&Api::<VolumeReplicationClass>::all(client.clone()), &obj(json!({
                "apiVersion": "replication.storage.openshift.io/v1alpha1", "kind": "VolumeReplicationClass",
                "metadata": {"name": class},
                "spec": {"provisioner": driver_name, "parameters": {"schedulingInterval": "1m", "lifeline.dev/sync-interval-seconds": "1"}},
            })))
            .await?;
        create_or_keep(&Api::<lifeline_api::foreign::snapshot::VolumeSnapshotClass>::all(client.clone()),
            &obj(json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
                "metadata": {"name": snapshot_class}, "driver": driver_name, "deletionPolicy": "Delete"})))
            .await?;
        let cli_kubeconfig = cluster.cli_kubeconfig().await?;
        Ok(Self {
            name,
            cluster,
            cli_kubeconfig,
            site,
            driver,
            controller,
            admin,
            storage_class,
            driver_name,
            class,
            snapshot_class,
            app,
            protected,
            datamover: None,
            s3: None,
            _sidecars: sidecars,
        })
    }

    /// Starts the data mover on this site (VolSync runs cluster-wide), with a restic
    /// repository on an S3 server over HTTPS whose certificate a private CA signed (the user's
    /// Secret `restic` in the protected namespace carries the CA as `RESTIC_CUSTOM_CA`).
    pub async fn start_datamover(&mut self) -> anyhow::Result<()> {
        let client = self.client();
        let s3 = crate::s3::S3Server::require(
            &self.cluster.dir().join(format!("s3-{}", self.name)),
            "backups",
        )
        .await?;
        Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), &self.protected)
            .create(&PostParams::default(), &obj(json!({"metadata": {"name": "restic"},
                "stringData": s3.restic_secret("backups", &format!("site-{}", self.name), "demo-password")})))
            .await?;
        self.s3 = Some(s3);
        let kubeconfig = self
            .cluster
            .controller_kubeconfig(
                crate::rbac::Controller::Datamover,
                &self.protected,
                Some(&self.protected),
            )
            .await?;
        let mut process = Process::spawn(
            self.cluster.dir(),
            &format!("datamover-{}", self.name),
            &binary(
                "lifeline-datamover-controller",
                "lifeline-datamover-controller",
            )?,
            &[
                "--admin-address".into(),
                "127.0.0.1:0".into(),
                "--protected-namespace".into(),
                self.protected.clone(),
            ],
            &[("KUBECONFIG".into(), kubeconfig.display().to_string())],
        )?;
        let admin = process.wait_for_line("admin-listen", T).await?;
        self.datamover = Some((process, admin));
        Ok(())
    }

    /// Binds a new claim to a snapshot handle (a static content, a snapshot of it, a claim from
    /// that), as a backup tool does after a restore; returns the claim's directory.
    pub async fn claim_from_handle(&self, claim: &str, handle: &str) -> anyhow::Result<PathBuf> {
        let client = self.client();
        let content = format!("{claim}-content");
        Api::<lifeline_api::foreign::snapshot::VolumeSnapshotContent>::all(client.clone())
            .create(&PostParams::default(), &obj(json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
                "metadata": {"name": content},
                "spec": {"deletionPolicy": "Retain", "driver": self.driver_name, "source": {"snapshotHandle": handle},
                         "volumeSnapshotRef": {"namespace": self.app, "name": claim}}})))
            .await?;
        Api::<lifeline_api::foreign::snapshot::VolumeSnapshot>::namespaced(client.clone(), &self.app)
            .create(&PostParams::default(), &obj(json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
                "metadata": {"name": claim}, "spec": {"source": {"volumeSnapshotContentName": content}}})))
            .await?;
        let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &self.app);
        claims
            .create(&PostParams::default(), &obj(json!({"metadata": {"name": claim},
                "spec": {"storageClassName": self.storage_class, "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                         "dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": claim}}})))
            .await?;
        let bound = wait::for_object(&claims, claim, T, "bound", |c| {
            c.spec
                .as_ref()
                .and_then(|s| s.volume_name.as_ref())
                .is_some()
        })
        .await?;
        let pv = Api::<PersistentVolume>::all(client)
            .get(&bound.spec.and_then(|s| s.volume_name).unwrap_or_default())
            .await?;
        let handle = pv
            .spec
            .and_then(|s| s.csi)
            .map(|c| c.volume_handle)
            .context("a CSI volume")?;
        Ok(self.volume(&handle))
    }

    pub fn client(&self) -> Client {
        self.cluster.client()
    }

    pub fn vrs(&self) -> Api<VolumeReplication> {
        Api::namespaced(self.client(), &self.app)
    }

    /// A claim provisioned on this site; returns its volume id.
    pub async fn provision(&self, claim: &str) -> anyhow::Result<String> {
        let claims = Api::<PersistentVolumeClaim>::namespaced(self.client(), &self.app);
        claims
            .create(&PostParams::default(), &obj(json!({"metadata": {"name": claim},
                "spec": {"storageClassName": self.storage_class, "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})))
            .await?;
        self.bound_volume(claim).await
    }

    /// The volume id (CSI handle) of this site's claim, once it is bound.
    pub async fn bound_volume(&self, claim: &str) -> anyhow::Result<String> {
        let claims = Api::<PersistentVolumeClaim>::namespaced(self.client(), &self.app);
        let bound = wait::for_object(&claims, claim, T, "bound", |c| {
            c.spec
                .as_ref()
                .and_then(|s| s.volume_name.as_ref())
                .is_some()
        })
        .await?;
        let pv = Api::<PersistentVolume>::all(self.client())
            .get(&bound.spec.and_then(|s| s.volume_name).unwrap_or_default())
            .await?;
        pv.spec
            .and_then(|s| s.csi)
            .map(|c| c.volume_handle)
            .context("a CSI volume")
    }

    /// The same volume, pre-provisioned on this (secondary) site: an empty directory, a CSI
    /// PersistentVolume with the same handle, and a claim bound to it — as an admin sets up the
    /// DR side.
    pub async fn adopt(&self, claim: &str, volume: &str) -> anyhow::Result<()> {
        std::fs::create_dir_all(self.site.volume_dir(volume))?;
        let pv_name = format!("dr-{volume}");
        Api::<PersistentVolume>::all(self.client())
            .create(&PostParams::default(), &obj(json!({"metadata": {"name": pv_name},
                "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain",
                         "csi": {"driver": self.driver_name, "volumeHandle": volume},
                         "claimRef": {"namespace": self.app, "name": claim}}})))
            .await?;
        let claims = Api::<PersistentVolumeClaim>::namespaced(self.client(), &self.app);
        claims
            .create(&PostParams::default(), &obj(json!({"metadata": {"name": claim},
                "spec": {"storageClassName": "", "volumeName": pv_name, "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})))
            .await?;
        claims
            .patch_status(
                claim,
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}}),
                ),
            )
            .await?;
        Ok(())
    }

    /// Creates (or changes) the VolumeReplication of `claim` to `state`.
    pub async fn replicate(&self, claim: &str, state: &str) -> anyhow::Result<()> {
        let vrs = self.vrs();
        let name = format!("{claim}-replication");
        if vrs.get_opt(&name).await?.is_some() {
            vrs.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicationState": state}})),
            )
            .await?;
        } else {
            vrs.create(&PostParams::default(), &obj(json!({
                "apiVersion": "replication.storage.openshift.io/v1alpha1", "kind": "VolumeReplication",
                "metadata": {"name": name},
                "spec": {"volumeReplicationClass": self.class, "replicationState": state,
                         "dataSource": {"kind": "PersistentVolumeClaim", "name": claim}},
            })))
            .await?;
        }
        Ok(())
    }

    /// Waits until the VolumeReplication of `claim` reports `state` for its current spec.
    pub async fn wait_state(
        &self,
        claim: &str,
        state: CurrentState,
        healthy: bool,
    ) -> anyhow::Result<VolumeReplication> {
        let name = format!("{claim}-replication");
        wait::for_object(
            &self.vrs(),
            &name,
            T,
            &format!("to be {state} on site {}", self.name),
            |vr| {
                let Some(status) = &vr.status else {
                    return false;
                };
                let degraded_ok = !healthy
                    || status
                        .conditions
                        .iter()
                        .any(|c| c.type_ == "Degraded" && c.status == "False");
                status.state() == Some(state)
                    && status.observed_generation == vr.metadata.generation
                    && degraded_ok
            },
        )
        .await
    }

    /// Waits until the site's VolumeReplication of `claim` reports a `lastSyncTime` (at a
    /// secondary: the last sync it received).
    pub async fn wait_reports_sync(&self, claim: &str) -> anyhow::Result<VolumeReplication> {
        let name = format!("{claim}-replication");
        wait::for_object(&self.vrs(), &name, T, "reports a sync", |vr| {
            vr.status
                .as_ref()
                .is_some_and(|s| s.last_sync_time.is_some())
        })
        .await
    }

    /// Every request this site's replication controller made is allowed by `rules` (its
    /// crate's declared rules, which the Helm chart grants).
    pub async fn check_controller_rbac(
        &self,
        rules: &[lifeline_runtime::rbac::Rule],
    ) -> anyhow::Result<()> {
        crate::rbac::check(
            &self.cluster,
            "lifeline-replication-controller/",
            rules,
            &crate::rbac::Namespaces {
                own: "default",
                protected: None,
            },
        )
        .await
    }

    /// The replication controller's admin endpoint (`/metrics`, `/healthz`, `/readyz`) as it
    /// printed it last (a restart listens on a new port).
    pub fn controller_admin(&self) -> Option<String> {
        self.controller
            .logs()
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("admin-listen "))
            .map(|a| a.trim().to_owned())
    }

    /// The controller's `/metrics`.
    pub async fn controller_metrics(&self) -> anyhow::Result<String> {
        let admin = self
            .controller_admin()
            .context("the controller has not printed its admin address")?;
        crate::metrics::scrape(&admin).await
    }

    /// A Deployment `name` whose Pods mount `claim`, at `replicas`; `remembered` sets the
    /// `lifeline.dev/replicas` annotation (a standby's count for a failover).
    pub async fn deploy(
        &self,
        name: &str,
        claim: &str,
        replicas: i32,
        remembered: Option<i32>,
    ) -> anyhow::Result<()> {
        self.workload("Deployment", name, claim, replicas, remembered)
            .await
    }

    /// A Deployment or StatefulSet (`kind`) as [`SiteEnv::deploy`] describes.
    pub async fn workload(
        &self,
        kind: &str,
        name: &str,
        claim: &str,
        replicas: i32,
        remembered: Option<i32>,
    ) -> anyhow::Result<()> {
        let annotations = match remembered {
            Some(n) => json!({"lifeline.dev/replicas": n.to_string()}),
            None => json!({}),
        };
        let mut object = json!({
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": {
                    "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}}}});
        let params = PostParams::default();
        match kind {
            "Deployment" => {
                Api::<Deployment>::namespaced(self.client(), &self.app)
                    .create(&params, &obj(object))
                    .await?;
            }
            "StatefulSet" => {
                object["spec"]["serviceName"] = json!(name);
                Api::<StatefulSet>::namespaced(self.client(), &self.app)
                    .create(&params, &obj(object))
                    .await?;
            }
            other => anyhow::bail!("no workload kind {other}"),
        }
        Ok(())
    }

    /// The Deployment's `spec.replicas` and its `lifeline.dev/replicas` annotation.
    pub async fn deployment(&self, name: &str) -> anyhow::Result<(i32, Option<String>)> {
        let d = Api::<Deployment>::namespaced(self.client(), &self.app)
            .get(name)
            .await?;
        Ok(replicas_of(d.spec.and_then(|s| s.replicas), d.metadata))
    }

    /// The StatefulSet's `spec.replicas` and its `lifeline.dev/replicas` annotation.
    pub async fn stateful_set(&self, name: &str) -> anyhow::Result<(i32, Option<String>)> {
        let s = Api::<StatefulSet>::namespaced(self.client(), &self.app)
            .get(name)
            .await?;
        Ok(replicas_of(
            s.spec.map(|s| s.replicas).unwrap_or(None),
            s.metadata,
        ))
    }

    /// The Pods in the application namespace that mount `claim`.
    pub async fn pods_mounting(&self, claim: &str) -> anyhow::Result<usize> {
        let pods = Api::<Pod>::namespaced(self.client(), &self.app)
            .list(&Default::default())
            .await?;
        Ok(pods
            .items
            .iter()
            .filter(|p| {
                p.spec
                    .as_ref()
                    .and_then(|s| s.volumes.as_ref())
                    .is_some_and(|v| {
                        v.iter().any(|v| {
                            v.persistent_volume_claim
                                .as_ref()
                                .is_some_and(|c| c.claim_name == claim)
                        })
                    })
            })
            .count())
    }

    /// Waits until `pods` Pods mount `claim` here.
    pub async fn wait_pods(&self, claim: &str, pods: usize) -> anyhow::Result<()> {
        let what = format!("{pods} Pod(s) mounting {claim} on site {}", self.name);
        wait::until(T, &what, || async {
            (self.pods_mounting(claim).await.ok() == Some(pods)).then_some(())
        })
        .await
    }

    pub fn volume(&self, volume: &str) -> PathBuf {
        self.site.volume_dir(volume)
    }
}

/// Every regular file under `dir`, by relative path, with its bytes.
pub fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let relative = path
                    .strip_prefix(base)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                out.insert(relative, bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Two sites whose drivers peer with each other.
pub struct TwoSites {
    pub a: SiteEnv,
    pub b: SiteEnv,
}

impl TwoSites {
    /// Two sites, each on a backend of its own as the environment chooses (local by default).
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on([None, None]).await
    }

    /// Two sites on the clusters these kubeconfigs name (`None`: a control plane started for
    /// the site, as [`TwoSites::start`]); both may name the same cluster. Two started control
    /// planes start at once.
    pub async fn start_on(kubeconfigs: [Option<&Path>; 2]) -> anyhow::Result<Self> {
        let (port_a, port_b) = (free_port()?, free_port()?);
        let cluster = |kubeconfig: Option<&Path>| {
            let kubeconfig = kubeconfig.map(Path::to_owned);
            async move {
                match kubeconfig {
                    Some(path) => TestCluster::connect(&path).await,
                    None => TestCluster::start().await,
                }
            }
        };
        // A control plane per site (measured against one shared by both, e2e/README.md).
        let (a_cluster, b_cluster) = tokio::join!(cluster(kubeconfigs[0]), cluster(kubeconfigs[1]));
        let (a_cluster, b_cluster) = (a_cluster?, b_cluster?);
        // One cluster for both sites: each needs a namespace and names of its own.
        let shared = kubeconfigs[0].is_some() && kubeconfigs[0] == kubeconfigs[1];
        let certs = a_cluster.dir().join("peer-certs");
        lifeline_hostpath_driver::peer_certs::write(&certs, &["a", "b"])
            .context("cannot make the peer link's certificates")?;
        let a = SiteEnv::start(
            "a",
            port_a,
            port_b,
            a_cluster,
            None,
            shared,
            &certs.join("a"),
        )
        .await?;
        let b_app = (!shared).then_some(a.app.as_str());
        let b = SiteEnv::start(
            "b",
            port_b,
            port_a,
            b_cluster,
            b_app,
            shared,
            &certs.join("b"),
        )
        .await?;
        Ok(Self { a, b })
    }

    /// A planned switch of `claim`: demote `from` (it ships its last changes), wait until it is
    /// Secondary, promote `to` and wait until it is a healthy Primary.
    pub async fn migrate(
        &self,
        from: &SiteEnv,
        to: &SiteEnv,
        claim: &str,
    ) -> anyhow::Result<VolumeReplication> {
        from.replicate(claim, "secondary").await?;
        from.wait_state(claim, CurrentState::Secondary, false)
            .await?;
        to.replicate(claim, "primary").await?;
        to.wait_state(claim, CurrentState::Primary, true).await
    }

    /// A claim on A replicated to B, the usual starting point: provisioned on A, pre-provisioned
    /// on B, primary on A and secondary on B, both settled and healthy. Returns the volume id.
    pub async fn replicated(&self, claim: &str) -> anyhow::Result<String> {
        let volume = self.a.provision(claim).await?;
        self.b.adopt(claim, &volume).await?;
        self.a.replicate(claim, "primary").await?;
        self.b.replicate(claim, "secondary").await?;
        self.a
            .wait_state(claim, CurrentState::Primary, true)
            .await?;
        self.b
            .wait_state(claim, CurrentState::Secondary, true)
            .await?;
        Ok(volume)
    }

    /// Waits until `to`'s copy of `volume` holds exactly `from`'s files.
    pub async fn wait_in_sync(
        &self,
        from: &SiteEnv,
        to: &SiteEnv,
        volume: &str,
    ) -> anyhow::Result<()> {
        let what = format!(
            "site {} to hold site {}'s data of {volume}",
            to.name, from.name
        );
        wait::until(T, &what, || async {
            (tree(&from.volume(volume)) == tree(&to.volume(volume))).then_some(())
        })
        .await
    }
}
