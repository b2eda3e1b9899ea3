//! A VolumeReplication's world for reconcile tests: the in-memory API ([`api::MockApi`]), the
//! scriptable fake driver on a Unix socket, and objects written as YAML.

#![allow(dead_code)] // each test binary uses a different part

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Secret};
use kube::runtime::controller::Action;
use lifeline_api::replication::{VolumeReplication, VolumeReplicationClass};
use lifeline_csi_client::fake::{FakeDriver, Received, Served, serve};
use lifeline_replication_controller::args::DriverArgs;
use lifeline_replication_controller::reconcile::{error_policy, reconcile, retry_after};
use lifeline_replication_controller::{Context, Drivers, Error, Metrics, Settings};

pub use lifeline_testkit::MockApi;

pub const DRIVER: &str = "hostpath.lifeline.dev";
pub const NS: &str = "shop";
pub const VR: &str = "db-replication";
pub const PVC: &str = "db-data";
pub const SECRET_VALUE: &str = "s3cr3t-value-do-not-log";
pub const RESYNC_POLL: Duration = Duration::from_secs(7);

pub fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
    serde_saphyr::from_str(text).expect("fixture parses")
}

pub struct Harness {
    pub api: MockApi,
    pub driver: FakeDriver,
    pub ctx: Arc<Context>,
    served: Option<Served>,
    _dir: tempfile::TempDir,
}

pub enum Mode {
    Sidecar,
    /// Central mode with endpoints for these provisioners (all pointing at the fake driver).
    Central(&'static [&'static str]),
    /// Sidecar mode whose socket nobody serves.
    Unreachable,
}

impl Harness {
    pub async fn new() -> Self {
        Self::with_mode(Mode::Sidecar).await
    }

    pub async fn with_mode(mode: Mode) -> Self {
        Self::with_settings(
            mode,
            Settings {
                resync_poll_interval: RESYNC_POLL,
                ..Settings::default()
            },
        )
        .await
    }

    /// Sidecar mode with this `--info-refresh` ceiling.
    pub async fn with_info_refresh(info_refresh: Duration) -> Self {
        Self::with_settings(
            Mode::Sidecar,
            Settings {
                resync_poll_interval: RESYNC_POLL,
                info_refresh,
            },
        )
        .await
    }

    pub async fn with_settings(mode: Mode, settings: Settings) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("csi.sock");
        let driver = FakeDriver::new(DRIVER);
        let served = match mode {
            Mode::Unreachable => None,
            _ => Some(serve(driver.clone(), &socket)),
        };
        let endpoint = format!("unix://{}", socket.display());
        let args = match mode {
            Mode::Sidecar | Mode::Unreachable => DriverArgs {
                driver_name: Some(DRIVER.into()),
                csi_address: Some(endpoint),
                driver_endpoints: vec![],
                rpc_timeout: Duration::from_secs(5),
                driver_ca_file: None,
            },
            Mode::Central(names) => DriverArgs {
                driver_name: None,
                csi_address: None,
                driver_endpoints: names
                    .iter()
                    .map(|n| (n.to_string(), endpoint.clone()))
                    .collect(),
                rpc_timeout: Duration::from_secs(5),
                driver_ca_file: None,
            },
        };
        let api = MockApi::default();
        let metrics = Metrics::new();
        let drivers = Drivers::from_args(&args, metrics.rpc_observer(), None).unwrap();
        let ctx = Arc::new(Context::new(api.client(), drivers, metrics, settings));
        Self {
            api,
            driver,
            ctx,
            served,
            _dir: dir,
        }
    }

    /// A class (with a Secret and a scheduling interval), the Secret, a bound PVC and its CSI PV.
    pub fn seed(&self, interval: &str) {
        self.api.put(&class(&format!(
            "schedulingInterval: \"{interval}\"\n    mirroringMode: snapshot\n    replication.storage.openshift.io/replication-secret-name: mirror\n    replication.storage.openshift.io/replication-secret-namespace: storage"
        )));
        self.api.put::<Secret>(&yaml(&format!(
            "metadata: {{name: mirror, namespace: storage}}\nstringData: {{token: {SECRET_VALUE}}}"
        )));
        self.api.put::<PersistentVolumeClaim>(&yaml(&format!(
            "metadata: {{name: {PVC}, namespace: {NS}}}\nspec: {{volumeName: pv-1}}\nstatus: {{phase: Bound}}"
        )));
        self.api.put::<PersistentVolume>(&yaml(&format!(
            "metadata: {{name: pv-1}}\nspec: {{csi: {{driver: {DRIVER}, volumeHandle: vol-1}}}}"
        )));
    }

    pub fn put_vr(&self, state: &str, extra: &str) {
        self.api.put::<VolumeReplication>(&yaml(&format!(
            "metadata: {{name: {VR}, namespace: {NS}}}\nspec:\n  volumeReplicationClass: gold\n  replicationState: {state}\n  dataSource: {{kind: PersistentVolumeClaim, name: {PVC}}}\n{extra}"
        )));
    }

    pub fn vr(&self) -> Option<VolumeReplication> {
        self.api.get(Some(NS), VR)
    }

    pub fn pvc(&self) -> Option<PersistentVolumeClaim> {
        self.api.get(Some(NS), PVC)
    }

    /// Reconciles the stored VolumeReplication once, the way the controller would.
    pub async fn reconcile(&self) -> Result<Action, Error> {
        let vr = self.vr().expect("VolumeReplication stored");
        reconcile(Arc::new(vr), Arc::clone(&self.ctx)).await
    }

    /// What the controller would do after `error`.
    pub fn error_policy(&self, error: &Error) -> Action {
        error_policy(Arc::new(self.vr().unwrap()), error, Arc::clone(&self.ctx))
    }

    /// The delay the controller would retry `error` after (counts the failure).
    pub fn retry_after(&self, error: &Error) -> Duration {
        retry_after(&self.vr().unwrap(), error, &self.ctx)
    }

    /// The driver calls so far, compactly ("Enable", "Promote(force)"), and forgets them.
    pub fn calls(&self) -> Vec<String> {
        let calls = self.driver.received().into_iter().map(|r| match r {
            Received::Enable(_) => "Enable".to_owned(),
            Received::Disable(_) => "Disable".to_owned(),
            Received::Promote(r) => format!("Promote({})", if r.force { "force" } else { "" }),
            Received::Demote(r) => format!("Demote({})", if r.force { "force" } else { "" }),
            Received::Resync(r) => format!("Resync({})", if r.force { "force" } else { "" }),
            Received::Info(_) => "Info".to_owned(),
            Received::DestInfo(_) => "DestInfo".to_owned(),
            other => other.method().to_string(),
        });
        let calls = calls.collect();
        self.driver.clear_received();
        calls
    }

    pub fn condition(&self, type_: &str) -> Option<(String, String, String)> {
        let vr = self.vr()?;
        let status = vr.status?;
        status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    }

    pub async fn stop_driver(&mut self) {
        if let Some(served) = self.served.take() {
            served.stop().await;
        }
    }
}

pub fn class(parameters: &str) -> VolumeReplicationClass {
    yaml(&format!(
        "apiVersion: replication.storage.openshift.io/v1alpha1\nkind: VolumeReplicationClass\nmetadata: {{name: gold}}\nspec:\n  provisioner: {DRIVER}\n  parameters:\n    {parameters}"
    ))
}
