//! Everything that can stop a reconcile, each with a stable category (for metrics, Events and
//! logs) and a retry policy: retryable errors back off with jitter; errors that only a change
//! of spec, class, Secret or PVC can fix are retried slowly, never hot-looped.

use lifeline_api::replication::ParameterError;
use lifeline_csi_client::{CsiError, ErrorClass};

/// How the controller retries after an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Exponential backoff with jitter: the same call may succeed later.
    Backoff,
    /// Waits for an input to change (watch events trigger sooner); checks again rarely.
    AfterChange,
}

/// A VolumeReplication's inputs are wrong. Every message says what is wrong and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error(
        "spec.dataSource kind {kind:?} (apiGroup {group:?}) is not supported; dataSource is immutable, so delete and recreate this VolumeReplication with kind PersistentVolumeClaim and an empty apiGroup"
    )]
    UnsupportedDataSource { kind: String, group: String },
    #[error(
        "VolumeGroupReplication {namespace}/{name} not found; a VolumeReplication of a group is made by its VolumeGroupReplication (create that instead)"
    )]
    GroupMissing { namespace: String, name: String },
    #[error(
        "VolumeGroupReplication {namespace}/{name} has no volume group yet ({why}); replication starts once its VolumeGroupReplicationContent records the driver's group"
    )]
    GroupNotReady {
        namespace: String,
        name: String,
        why: String,
    },
    #[error(
        "VolumeReplicationClass {name:?} not found; create it (spec.volumeReplicationClass is immutable: to use another class, delete and recreate this VolumeReplication)"
    )]
    ClassMissing { name: String },
    #[error(
        "VolumeReplicationClass {class:?}: {source}; a class's parameters are immutable, so delete and recreate the class with corrected parameters"
    )]
    Parameters {
        class: String,
        #[source]
        source: ParameterError,
    },
    #[error(
        "Secret {namespace}/{name} named by VolumeReplicationClass {class:?} not found; create it (the class's parameters are immutable: to name another Secret, delete and recreate the class)"
    )]
    SecretMissing {
        class: String,
        namespace: String,
        name: String,
    },
    #[error(
        "Secret {namespace}/{name}: key {key:?} is not valid UTF-8; drivers expect text values"
    )]
    SecretNotText {
        namespace: String,
        name: String,
        key: String,
    },
    #[error(
        "PersistentVolumeClaim {namespace}/{name} not found; create it (spec.dataSource is immutable: to replicate another claim, delete and recreate this VolumeReplication)"
    )]
    PvcMissing { namespace: String, name: String },
    #[error(
        "PersistentVolumeClaim {namespace}/{name} is {phase}, not Bound; replication starts once it is bound to a volume"
    )]
    PvcNotBound {
        namespace: String,
        name: String,
        phase: String,
    },
    #[error(
        "PersistentVolumeClaim {namespace}/{name} is being deleted; delete this VolumeReplication, or recreate the claim"
    )]
    PvcDeleting { namespace: String, name: String },
    #[error(
        "PersistentVolumeClaim {namespace}/{name} is already replicated by VolumeReplication {owner:?}; a claim belongs to one VolumeReplication — delete that one, or delete this one (its dataSource is immutable)"
    )]
    PvcClaimed {
        namespace: String,
        name: String,
        owner: String,
    },
    #[error(
        "PersistentVolume {name:?} bound to the claim not found; check the claim's spec.volumeName"
    )]
    PvMissing { name: String },
    #[error("PersistentVolume {name:?} is not a CSI volume; only CSI volumes can be replicated")]
    PvNotCsi { name: String },
    #[error(
        "PersistentVolume {name:?} belongs to CSI driver {driver:?} but VolumeReplicationClass {class:?} names provisioner {provisioner:?}; spec.volumeReplicationClass is immutable, so delete and recreate this VolumeReplication with a class for {driver:?}"
    )]
    DriverMismatch {
        name: String,
        driver: String,
        class: String,
        provisioner: String,
    },
}

impl Invalid {
    pub fn category(&self) -> &'static str {
        match self {
            Invalid::UnsupportedDataSource { .. } => "unsupported_data_source",
            Invalid::GroupMissing { .. } => "group_missing",
            Invalid::GroupNotReady { .. } => "group_not_ready",
            Invalid::ClassMissing { .. } => "class_missing",
            Invalid::Parameters { .. } => "invalid_parameters",
            Invalid::SecretMissing { .. } | Invalid::SecretNotText { .. } => "secret_invalid",
            Invalid::PvcMissing { .. } => "pvc_missing",
            Invalid::PvcNotBound { .. } => "pvc_not_bound",
            Invalid::PvcDeleting { .. } => "pvc_deleting",
            Invalid::PvcClaimed { .. } => "pvc_claimed",
            Invalid::PvMissing { .. } | Invalid::PvNotCsi { .. } => "pv_invalid",
            Invalid::DriverMismatch { .. } => "driver_mismatch",
        }
    }

    /// The Event reason (PascalCase) for this problem.
    pub fn event_reason(&self) -> &'static str {
        match self {
            Invalid::UnsupportedDataSource { .. } => "UnsupportedDataSource",
            Invalid::GroupMissing { .. } => "GroupNotFound",
            Invalid::GroupNotReady { .. } => "GroupNotReady",
            Invalid::ClassMissing { .. } => "ClassNotFound",
            Invalid::Parameters { .. } => "InvalidClassParameters",
            Invalid::SecretMissing { .. } | Invalid::SecretNotText { .. } => "InvalidSecret",
            Invalid::PvcMissing { .. } => "ClaimNotFound",
            Invalid::PvcNotBound { .. } => "ClaimNotBound",
            Invalid::PvcDeleting { .. } => "ClaimDeleting",
            Invalid::PvcClaimed { .. } => "ClaimAlreadyReplicated",
            Invalid::PvMissing { .. } | Invalid::PvNotCsi { .. } => "InvalidVolume",
            Invalid::DriverMismatch { .. } => "DriverMismatch",
        }
    }
}

/// The driver for a VolumeReplication cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    #[error(
        "no csi-addons endpoint is configured for provisioner {provisioner:?} (configured: {configured}); start the controller with --driver-endpoint {provisioner}=URI"
    )]
    NotConfigured {
        provisioner: String,
        configured: String,
    },
    #[error(
        "driver {provisioner:?} is unreachable ({source}); check that its csi-addons sidecar is running"
    )]
    Unreachable {
        provisioner: String,
        #[source]
        source: CsiError,
    },
    #[error(
        "driver {provisioner:?} does not advertise the VOLUME_REPLICATION capability; it cannot replicate volumes"
    )]
    NoReplication { provisioner: String },
}

impl DriverError {
    pub fn category(&self) -> &'static str {
        match self {
            DriverError::NotConfigured { .. } => "driver_not_configured",
            DriverError::Unreachable { .. } => "driver_unreachable",
            DriverError::NoReplication { .. } => "driver_not_capable",
        }
    }

    pub fn event_reason(&self) -> &'static str {
        match self {
            DriverError::NotConfigured { .. } => "DriverNotConfigured",
            DriverError::Unreachable { .. } => "DriverUnreachable",
            DriverError::NoReplication { .. } => "DriverNotCapable",
        }
    }

    pub fn retry(&self) -> Retry {
        match self {
            DriverError::Unreachable { source, .. } if source.class() != ErrorClass::Permanent => {
                Retry::Backoff
            }
            _ => Retry::AfterChange,
        }
    }
}

/// Why a reconcile did not finish.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// A VolumeGroupReplication's inputs are wrong; its status says what to fix.
    #[error(transparent)]
    Group(#[from] crate::group::GroupInvalid),
    /// A replication call failed; the VolumeReplication's conditions already say so.
    #[error(transparent)]
    Csi(#[from] CsiError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

impl Error {
    /// A stable label for metrics, Events and logs.
    pub fn category(&self) -> String {
        match self {
            Error::Invalid(e) => e.category().to_owned(),
            Error::Driver(e) => e.category().to_owned(),
            Error::Group(e) => e.category().to_owned(),
            Error::Csi(e) => format!("rpc_{}", e.class().category()),
            Error::Kube(kube::Error::Api(status)) if status.code == 409 => {
                "api_conflict".to_owned()
            }
            Error::Kube(_) => "api".to_owned(),
        }
    }

    pub fn retry(&self) -> Retry {
        match self {
            Error::Invalid(_) | Error::Group(_) => Retry::AfterChange,
            Error::Driver(e) => e.retry(),
            Error::Csi(e) => match e.class() {
                ErrorClass::Retry => Retry::Backoff,
                // A failed precondition resolves when the peer changes state (e.g. a
                // secondary waiting for its primary); keep trying, but with backoff.
                ErrorClass::FailedPrecondition | ErrorClass::NotFound => Retry::Backoff,
                ErrorClass::Permanent | ErrorClass::NotImplemented => Retry::AfterChange,
            },
            Error::Kube(_) => Retry::Backoff,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant, with placeholder values.
    fn all() -> Vec<Invalid> {
        let s = || "x".to_owned();
        vec![
            Invalid::UnsupportedDataSource {
                kind: s(),
                group: s(),
            },
            Invalid::GroupMissing {
                namespace: s(),
                name: s(),
            },
            Invalid::GroupNotReady {
                namespace: s(),
                name: s(),
                why: s(),
            },
            Invalid::ClassMissing { name: s() },
            Invalid::Parameters {
                class: s(),
                source: ParameterError::Incomplete {
                    present: s(),
                    missing: s(),
                },
            },
            Invalid::SecretMissing {
                class: s(),
                namespace: s(),
                name: s(),
            },
            Invalid::SecretNotText {
                namespace: s(),
                name: s(),
                key: s(),
            },
            Invalid::PvcMissing {
                namespace: s(),
                name: s(),
            },
            Invalid::PvcNotBound {
                namespace: s(),
                name: s(),
                phase: s(),
            },
            Invalid::PvcDeleting {
                namespace: s(),
                name: s(),
            },
            Invalid::PvcClaimed {
                namespace: s(),
                name: s(),
                owner: s(),
            },
            Invalid::PvMissing { name: s() },
            Invalid::PvNotCsi { name: s() },
            Invalid::DriverMismatch {
                name: s(),
                driver: s(),
                class: s(),
                provisioner: s(),
            },
        ]
    }

    /// A fix a message suggests must be possible: `spec.volumeReplicationClass`,
    /// `spec.dataSource` and a class's parameters are immutable, so no message asks to change
    /// them, and every message that names one says how to get there instead.
    #[test]
    fn every_suggested_fix_can_be_followed() {
        for invalid in all() {
            let message = invalid.to_string();
            for impossible in [
                "set spec.volumeReplicationClass",
                "fix spec.volumeReplicationClass",
                "fix spec.dataSource",
                "change spec.dataSource",
                "fix the class's parameters",
                "point this one",
                "use a class for",
            ] {
                assert!(!message.contains(impossible), "{message}");
            }
            let names_immutable = message.contains("spec.volumeReplicationClass")
                || message.contains("spec.dataSource")
                || message.contains("parameters");
            if names_immutable {
                assert!(
                    message.contains("immutable") || message.contains("delete"),
                    "{message}"
                );
            }
        }
    }
}
