//! Reaching drivers: one connection per driver, reused by every reconcile, with the driver's
//! capabilities checked once it first answers.

use std::collections::BTreeMap;
use std::sync::Arc;

use lifeline_csi_client::{CallObserver, Capabilities, CsiClient, CsiError, EndpointError};
use tokio::sync::Mutex;

use crate::args::DriverArgs;
use crate::error::DriverError;

/// Which VolumeReplications this controller serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Only those whose class provisioner is this driver.
    Sidecar(String),
    /// All; those whose provisioner has no endpoint get a condition saying so.
    Central,
}

/// A connected driver and what it can do.
#[derive(Debug)]
pub struct Driver {
    pub name: String,
    pub client: CsiClient,
    capabilities: Mutex<Option<Capabilities>>,
}

impl Driver {
    /// The driver's capabilities, asked once and remembered (asked again after a failure).
    pub async fn capabilities(&self) -> Result<Capabilities, CsiError> {
        let mut cached = self.capabilities.lock().await;
        if let Some(capabilities) = cached.as_ref() {
            return Ok(capabilities.clone());
        }
        let capabilities = self.client.capabilities().await?;
        *cached = Some(capabilities.clone());
        Ok(capabilities)
    }
}

/// The drivers this controller may call, by provisioner name.
#[derive(Debug)]
pub struct Drivers {
    mode: Mode,
    drivers: BTreeMap<String, Arc<Driver>>,
}

#[derive(Debug, thiserror::Error)]
pub enum DriverConfigError {
    #[error(
        "no driver configured: pass --driver-name and --csi-address (sidecar mode) or --driver-endpoint NAME=URI (central mode)"
    )]
    None,
    #[error("driver {name:?}: {source}")]
    Endpoint {
        name: String,
        #[source]
        source: EndpointError,
    },
    #[error("driver {0:?} is listed twice")]
    Duplicate(String),
    #[error(
        "driver {name:?} is at an https:// endpoint: pass --driver-ca-file with the CA that signed its certificate"
    )]
    NoCa { name: String },
    #[error("--driver-ca-file {path}: {problem}")]
    Ca { path: String, problem: String },
}

impl Drivers {
    /// One client per configured driver, each call bounded by `budget` (the leadership
    /// fence: no driver call outlives this controller's Lease).
    pub fn from_args(
        args: &DriverArgs,
        observer: Arc<dyn CallObserver>,
        budget: Option<lifeline_csi_client::Budget>,
    ) -> Result<Self, DriverConfigError> {
        let (mode, endpoints) = match (&args.driver_name, &args.csi_address) {
            (Some(name), Some(address)) => (
                Mode::Sidecar(name.clone()),
                vec![(name.clone(), address.clone())],
            ),
            _ if !args.driver_endpoints.is_empty() => {
                (Mode::Central, args.driver_endpoints.clone())
            }
            _ => return Err(DriverConfigError::None),
        };
        let tls = match &args.driver_ca_file {
            None => None,
            Some(path) => {
                let problem = |problem: String| DriverConfigError::Ca {
                    path: path.display().to_string(),
                    problem,
                };
                let pem = std::fs::read(path).map_err(|e| problem(e.to_string()))?;
                Some(lifeline_csi_client::tls::client_config(&pem).map_err(problem)?)
            }
        };
        let mut drivers = BTreeMap::new();
        for (name, uri) in endpoints {
            let endpoint: lifeline_csi_client::Endpoint =
                uri.parse().map_err(|source| DriverConfigError::Endpoint {
                    name: name.clone(),
                    source,
                })?;
            if matches!(endpoint, lifeline_csi_client::Endpoint::Tls(_)) && tls.is_none() {
                return Err(DriverConfigError::NoCa { name: name.clone() });
            }
            let mut client = CsiClient::with_tls(endpoint, tls.clone())
                .with_timeout(args.rpc_timeout)
                .with_observer(Arc::clone(&observer));
            if let Some(budget) = &budget {
                client = client.with_budget(Arc::clone(budget));
            }
            let driver = Arc::new(Driver {
                name: name.clone(),
                client,
                capabilities: Mutex::new(None),
            });
            if drivers.insert(name.clone(), driver).is_some() {
                return Err(DriverConfigError::Duplicate(name));
            }
        }
        Ok(Self { mode, drivers })
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// Whether VolumeReplications of classes with this provisioner are ours to reconcile.
    pub fn serves(&self, provisioner: &str) -> bool {
        match &self.mode {
            Mode::Sidecar(name) => name == provisioner,
            Mode::Central => true,
        }
    }

    /// The driver for `provisioner`, checked to answer and to support volume replication.
    pub async fn get(&self, provisioner: &str) -> Result<Arc<Driver>, DriverError> {
        let driver = self
            .drivers
            .get(provisioner)
            .ok_or_else(|| DriverError::NotConfigured {
                provisioner: provisioner.to_owned(),
                configured: self.drivers.keys().cloned().collect::<Vec<_>>().join(", "),
            })?;
        let capabilities =
            driver
                .capabilities()
                .await
                .map_err(|source| DriverError::Unreachable {
                    provisioner: provisioner.to_owned(),
                    source,
                })?;
        if !capabilities.volume_replication {
            return Err(DriverError::NoReplication {
                provisioner: provisioner.to_owned(),
            });
        }
        Ok(Arc::clone(driver))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::ControllerArgs;

    struct Quiet;
    impl CallObserver for Quiet {
        fn observe(&self, _: lifeline_csi_client::Method, _: &'static str, _: std::time::Duration) {
        }
    }

    fn drivers(flags: &[&str]) -> Result<Drivers, DriverConfigError> {
        let args =
            ControllerArgs::try_parse_from(std::iter::once("x").chain(flags.iter().copied()))
                .unwrap();
        Drivers::from_args(&args.drivers, Arc::new(Quiet), None)
    }

    #[test]
    fn an_https_driver_needs_a_ca_and_the_ca_must_be_certificates() {
        let e = drivers(&["--driver-endpoint", "d=https://driver.storage.svc:9070"]).unwrap_err();
        assert!(matches!(e, DriverConfigError::NoCa { .. }), "{e}");
        assert!(e.to_string().contains("--driver-ca-file"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("ca.crt");
        std::fs::write(&junk, "not a certificate").unwrap();
        let path = junk.display().to_string();
        let e = drivers(&[
            "--driver-endpoint",
            "d=https://h:1",
            "--driver-ca-file",
            &path,
        ])
        .unwrap_err();
        assert!(e.to_string().contains("no certificate"), "{e}");
        let missing = drivers(&[
            "--driver-endpoint",
            "d=https://h:1",
            "--driver-ca-file",
            "/nope",
        ])
        .unwrap_err();
        assert!(missing.to_string().contains("/nope"), "{missing}");
    }
}
