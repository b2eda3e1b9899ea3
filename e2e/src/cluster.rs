//! One `TestCluster` type over the API backends, chosen by the environment:
//!
//! - `LIFELINE_E2E_BACKEND=control-plane` (the default): a real etcd, kube-apiserver and
//!   kube-controller-manager started for the test ([`crate::control_plane`]);
//! - `LIFELINE_E2E_BACKEND=kubeconfig`: the existing cluster `KUBECONFIG` points at.
//!
//! Tests never ask which backend they have. Each test works in namespaces it creates with a
//! unique name, so the suite can share a real cluster.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::{Api, Client};

use crate::control_plane::{self, ControlPlane};
use crate::kubeconfig;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    ControlPlane,
    Kubeconfig,
}

impl Backend {
    pub fn from_env() -> anyhow::Result<Self> {
        match std::env::var("LIFELINE_E2E_BACKEND").ok().as_deref() {
            // `envtest`: this backend's earlier name.
            None | Some("control-plane" | "envtest") => match control_plane::assets() {
                Some(_) => Ok(Self::ControlPlane),
                None => bail!("{}", control_plane::WAYS),
            },
            Some("kubeconfig") => Ok(Self::Kubeconfig),
            Some(other) => {
                bail!(
                    "LIFELINE_E2E_BACKEND={other:?}: use control-plane (the default) or kubeconfig"
                )
            }
        }
    }
}

/// Held only so the backend lives (and is torn down) with the cluster.
#[allow(dead_code)]
enum Running {
    ControlPlane(Box<ControlPlane>),
    External,
}

pub struct TestCluster {
    backend: Backend,
    client: Client,
    kubeconfig: PathBuf,
    /// The Deployment and StatefulSet controllers' stand-in (the real control plane).
    _workloads: Option<crate::actors::Actors>,
    /// The kubelet stand-in running the Pods bound to its Node (the real control plane).
    kubelet: Option<crate::actors::kubelet::Kubelet>,
    /// kube-scheduler, the snapshot-controller and VolSync (the real control plane).
    _controllers: Option<crate::storage_controllers::ClusterControllers>,
    _running: Running,
    /// `LIFELINE_E2E_AUDIT_LOG`, on an existing cluster.
    external_audit_log: Option<PathBuf>,
    dir: tempfile::TempDir,
}

/// Ours, and the upstream CRDs of the foreign kinds (installed where the cluster lacks them):
/// on the control plane the harness starts, VolSync's are those of the VolSync that runs.
fn every_crd(backend: Backend) -> anyhow::Result<Vec<CustomResourceDefinition>> {
    let mut crds = lifeline_api::crds::lifeline();
    let foreign = crate::upstream::foreign()?;
    if backend == Backend::ControlPlane {
        crds.extend(
            foreign
                .into_iter()
                .filter(|c| c.spec.group != "volsync.backube"),
        );
        crds.extend(crate::storage_controllers::volsync_crds()?);
    } else {
        crds.extend(foreign);
    }
    Ok(crds)
}

static NAMESPACES: AtomicU32 = AtomicU32::new(0);

/// The kubelet stand-in's node log directory, under the cluster's directory.
const POD_LOGS: &str = "pod-logs";

impl TestCluster {
    /// Starts (or connects to) the backend the environment asks for, with Lifeline's CRDs and
    /// the upstream CRDs of the foreign kinds ([`crate::upstream`]) installed where missing.
    pub async fn start() -> anyhow::Result<Self> {
        let backend = Backend::from_env()?;
        Self::start_on(backend, None, &every_crd(backend)?).await
    }

    /// Starts the backend the environment asks for with only `crds` installed (for comparing
    /// what upstream's CRDs and Lifeline's say of the same objects). Needs a backend the
    /// harness starts: an existing cluster has its own CRDs of those names.
    pub async fn start_with_crds(crds: &[CustomResourceDefinition]) -> anyhow::Result<Self> {
        let backend = Backend::from_env()?;
        anyhow::ensure!(
            backend != Backend::Kubeconfig,
            "a cluster with other CRDs of the same names needs a control plane of its own"
        );
        Self::start_on(backend, None, crds).await
    }

    /// Starts the backend the environment asks for with the usual CRDs, except that each of
    /// `crds` replaces the one of its name (or is added): another controller's release of the
    /// same kinds, for the benchmark's peers. Needs a control plane of its own.
    pub async fn start_with_crds_of(crds: &[CustomResourceDefinition]) -> anyhow::Result<Self> {
        let backend = Backend::from_env()?;
        let mut all = every_crd(backend)?;
        all.retain(|c| !crds.iter().any(|r| r.metadata.name == c.metadata.name));
        all.extend(crds.iter().cloned());
        Self::start_with_crds(&all).await
    }

    /// Connects to the cluster of an explicit kubeconfig file (the `kubeconfig` backend without
    /// the environment), with the CRDs installed where missing.
    pub async fn connect(kubeconfig: &Path) -> anyhow::Result<Self> {
        Self::start_on(
            Backend::Kubeconfig,
            Some(kubeconfig.to_owned()),
            &every_crd(Backend::Kubeconfig)?,
        )
        .await
    }

    async fn start_on(
        backend: Backend,
        kubeconfig: Option<PathBuf>,
        crds: &[CustomResourceDefinition],
    ) -> anyhow::Result<Self> {
        // `LIFELINE_E2E_KEEP=1` keeps the folder (every program's log, the Pods' logs, the
        // audit log) for a look after a failure.
        let dir = tempfile::Builder::new()
            .prefix("lifeline-e2e-")
            .disable_cleanup(std::env::var_os("LIFELINE_E2E_KEEP").is_some())
            .tempdir()?;
        let (running, kubeconfig) = match backend {
            Backend::ControlPlane => {
                let plane = ControlPlane::start(dir.path()).await?;
                let path = plane.kubeconfig.clone();
                (Running::ControlPlane(Box::new(plane)), path)
            }
            Backend::Kubeconfig => {
                let path = match kubeconfig {
                    Some(path) => path,
                    None => std::env::var_os("KUBECONFIG")
                        .map(PathBuf::from)
                        .context("LIFELINE_E2E_BACKEND=kubeconfig needs KUBECONFIG")?,
                };
                (Running::External, path)
            }
        };
        let client = kubeconfig::client(&kubeconfig).await?;
        // kube-controller-manager runs; its Deployment and StatefulSet controllers, with a
        // kubelet's visible effect, are stood in for (`actors/workloads.rs`), and so is a
        // cloud's load balancer (`actors/load_balancer.rs`).
        let workloads = (backend == Backend::ControlPlane).then(|| {
            let mut actors = crate::actors::workloads::start(client.clone());
            actors.merge(crate::actors::load_balancer::start(client.clone()));
            actors
        });
        let (kubelet, controllers) = match &running {
            Running::ControlPlane(plane) => {
                let assets = std::env::var_os("KUBEBUILDER_ASSETS").map(PathBuf::from);
                let kubelet = crate::actors::kubelet::start(
                    &client,
                    dir.path(),
                    dir.path().join(POD_LOGS),
                    crate::actors::kubelet::Images::from_assets(assets.as_deref()),
                )
                .await?;
                let scheduler = plane.user_kubeconfig(control_plane::SCHEDULER_USER)?;
                (Some(kubelet), Some(scheduler))
            }
            Running::External => (None, None),
        };
        let mut cluster = Self {
            backend,
            client,
            kubeconfig,
            _workloads: workloads,
            kubelet,
            _controllers: None,
            _running: running,
            external_audit_log: std::env::var_os("LIFELINE_E2E_AUDIT_LOG").map(PathBuf::from),
            dir,
        };
        cluster.install_crds(crds).await?;
        // After the CRDs: VolSync and the snapshot-controller watch their kinds from the start.
        if let Some(scheduler) = controllers {
            cluster._controllers = Some(crate::storage_controllers::ClusterControllers::start(
                cluster.dir(),
                &cluster.kubeconfig,
                &scheduler,
            )?);
        }
        Ok(cluster)
    }

    /// Where the actors write container logs so that `pods/log` serves them: the node log
    /// directory of the kubelet stand-in ([`crate::actors::kubelet`]). `None` on a cluster
    /// whose kubelets keep their own logs: a log read there fails and the controllers report no
    /// progress.
    pub fn pod_logs(&self) -> Option<PathBuf> {
        (self.backend == Backend::ControlPlane).then(|| self.dir.path().join(POD_LOGS))
    }

    /// Runs a CSI driver's sidecars (external-provisioner, csi-snapshotter) on its socket — the
    /// driver runs on this machine, so its sidecars do too, whatever the cluster — and tells
    /// this cluster's kubelet stand-in, if it has one, where the driver keeps its volumes
    /// (`<root>/volumes/<handle>`, for volumes whose PersistentVolume does not say).
    pub fn attach_driver(
        &self,
        driver: &str,
        socket: &Path,
        root: &Path,
    ) -> anyhow::Result<crate::storage_controllers::Sidecars> {
        if let Some(kubelet) = &self.kubelet {
            kubelet.storage.add_driver(driver, root);
        }
        let name = driver.split('.').next().unwrap_or(driver);
        crate::storage_controllers::Sidecars::start(self.dir(), &self.kubeconfig, socket, name)
    }

    /// A hostpath driver with no peer, named `driver`, keeping its volumes in `site/` of the
    /// cluster's folder, with its CSI sidecars ([`TestCluster::attach_driver`]): one site's
    /// storage for scenarios without replication. Dropping the pair stops them.
    pub async fn lone_driver(
        &self,
        driver: &str,
    ) -> anyhow::Result<(
        crate::actors::Site,
        (
            crate::process::Process,
            crate::storage_controllers::Sidecars,
        ),
    )> {
        let site = crate::actors::Site {
            driver: driver.to_owned(),
            root: self.dir().join("site"),
        };
        let (process, _) = crate::process::lone_hostpath_driver(
            self.dir(),
            "driver",
            &site.root,
            Duration::from_secs(60),
        )
        .await?;
        let sidecars = self.attach_driver(driver, &self.dir().join("driver.sock"), &site.root)?;
        Ok((site, (process, sidecars)))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// A kubeconfig file for child processes and kubectl.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The kubeconfig a controller runs with. On the control plane it authenticates as the
    /// controller's own user, bound to exactly the ClusterRole and Roles the chart renders for
    /// it (Roles in `own` — its Lease — and `protected`), so a real authorizer proves least
    /// privilege. An existing cluster's identities are its own: the admin kubeconfig is used
    /// and nothing is granted there (its own Lifeline install may have roles and bindings of
    /// these names).
    pub async fn controller_kubeconfig(
        &self,
        controller: crate::rbac::Controller,
        own: &str,
        protected: Option<&str>,
    ) -> anyhow::Result<PathBuf> {
        if self.backend == Backend::Kubeconfig {
            return Ok(self.kubeconfig.clone());
        }
        let user = controller.user();
        crate::rbac::grant(&self.client, controller, &user, own, protected).await?;
        match &self._running {
            Running::ControlPlane(plane) => plane.user_kubeconfig(&user),
            _ => Ok(self.kubeconfig.clone()),
        }
    }

    /// Every request the API server served, from its audit log ([`crate::audit`]), up to now:
    /// a marker request is made and waited for in the log first, so every request that ended
    /// before this call is in what it returns. An error on a backend that keeps no log the
    /// harness can read (an existing cluster without `LIFELINE_E2E_AUDIT_LOG`): a check that
    /// needs it fails there.
    pub async fn audit_log(&self) -> anyhow::Result<Vec<crate::audit::Access>> {
        let path = self.audit_log_path().map(Path::to_owned).context(
            "this backend (an existing cluster) keeps no audit log the harness can read: set LIFELINE_E2E_AUDIT_LOG to its API server's audit log (JSON lines), as crate::audit::POLICY writes it",
        )?;
        static MARKERS: AtomicU32 = AtomicU32::new(0);
        let marker = format!(
            "lifeline-audit-marker-{}-{}",
            std::process::id(),
            MARKERS.fetch_add(1, Ordering::Relaxed)
        );
        // A 404 is audited like any answer.
        let _ = Api::<Namespace>::all(self.client())
            .get_opt(&marker)
            .await?;
        crate::wait::until(
            Duration::from_secs(10),
            "the audit log has the marker",
            || {
                let (path, marker) = (path.clone(), marker.clone());
                async move {
                    let log = crate::audit::read(&path).ok()?;
                    log.iter()
                        .any(|a| a.name.as_deref() == Some(&marker))
                        .then_some(log)
                }
            },
        )
        .await
    }

    /// The kubeconfig `kubectl lifeline` runs with: on the real control plane its own user,
    /// bound to exactly the rules its README documents; elsewhere the admin's.
    pub async fn cli_kubeconfig(&self) -> anyhow::Result<PathBuf> {
        match &self._running {
            Running::ControlPlane(plane) => {
                crate::rbac::grant_cli(&self.client).await?;
                plane.user_kubeconfig(crate::rbac::CLI_USER)
            }
            _ => Ok(self.kubeconfig.clone()),
        }
    }

    /// The control plane the harness started, if it did.
    pub fn control_plane(&self) -> Option<&ControlPlane> {
        match &self._running {
            Running::ControlPlane(plane) => Some(plane),
            Running::External => None,
        }
    }

    /// The control plane's processes by program, when the harness started them.
    pub fn control_plane_pids(&self) -> Vec<(&'static str, u32)> {
        match &self._running {
            Running::ControlPlane(plane) => plane.pids(),
            _ => Vec::new(),
        }
    }

    /// The audit log's file: the control plane's, or on an existing cluster the one
    /// `LIFELINE_E2E_AUDIT_LOG` names (a kind cluster can write one to a mounted folder).
    pub fn audit_log_path(&self) -> Option<&Path> {
        match &self._running {
            Running::ControlPlane(plane) => Some(&plane.audit_log),
            Running::External => self.external_audit_log.as_deref(),
        }
    }

    /// A scratch directory living as long as the cluster (logs, driver roots).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Creates a namespace with a unique name starting with `prefix`.
    pub async fn namespace(&self, prefix: &str) -> anyhow::Result<String> {
        let n = NAMESPACES.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id() % 100_000);
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(self.client())
            .create(&PostParams::default(), &namespace)
            .await?;
        Ok(name)
    }

    /// Deletes a namespace (and so everything in it).
    pub async fn delete_namespace(&self, name: &str) -> anyhow::Result<()> {
        Api::<Namespace>::all(self.client())
            .delete(name, &DeleteParams::default())
            .await?;
        Ok(())
    }

    /// Creates each CRD that is not there yet and waits until it is established.
    pub async fn install_crds(&self, crds: &[CustomResourceDefinition]) -> anyhow::Result<()> {
        let api = Api::<CustomResourceDefinition>::all(self.client());
        for crd in crds {
            let name = crd.metadata.name.clone().unwrap_or_default();
            if api.get_opt(&name).await?.is_none() {
                api.create(&PostParams::default(), crd)
                    .await
                    .with_context(|| format!("cannot install CRD {name}"))?;
            }
        }
        for crd in crds {
            let name = crd.metadata.name.clone().unwrap_or_default();
            crate::wait::for_object(&api, &name, Duration::from_secs(30), "established", |c| {
                c.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c.type_ == "Established" && c.status == "True")
                    })
            })
            .await?;
        }
        Ok(())
    }
}
