//! Splitting a VolumeReplicationClass's parameters into what the controller consumes (keys
//! under the reserved prefix) and what it passes to the driver.

use std::collections::BTreeMap;

use super::{IntervalError, SchedulingInterval};
use crate::wire_enum::wire_enum;

/// Keys under this prefix are read by the controller and never sent to the driver.
pub const RESERVED_PREFIX: &str = "replication.storage.openshift.io/";
/// Driver parameter: how often the driver syncs; the controller also reads it.
pub const SCHEDULING_INTERVAL: &str = "schedulingInterval";
/// Driver parameter: when the sync schedule starts (only with `schedulingInterval`).
pub const SCHEDULING_START_TIME: &str = "schedulingStartTime";

wire_enum! {
    /// The reserved keys a class may set (without the prefix).
    pub enum ReservedKey {
        SecretName = "replication-secret-name",
        SecretNamespace = "replication-secret-namespace",
        GroupSecretName = "group-replication-secret-name",
        GroupSecretNamespace = "group-replication-secret-namespace",
    }
}

impl ReservedKey {
    /// The full parameter key, with the reserved prefix.
    pub fn key(self) -> String {
        format!("{RESERVED_PREFIX}{}", self.as_str())
    }
}

/// A Secret named by a class, whose data is sent as `secrets` in replication calls.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SecretRef {
    pub name: String,
    pub namespace: String,
}

/// Why a class's parameters cannot be used. Every variant names the offending key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParameterError {
    #[error(
        "parameter {key:?} is not a known key under the reserved prefix {RESERVED_PREFIX:?}; known keys: {known}"
    )]
    UnknownReservedKey { key: String, known: String },
    #[error("parameter {key:?}: secret {what} cannot be empty")]
    Empty { key: String, what: &'static str },
    #[error("parameter {present:?} is set but {missing:?} is not; set both or neither")]
    Incomplete { present: String, missing: String },
    #[error("parameter {key:?}: {source}")]
    Interval {
        key: &'static str,
        source: IntervalError,
    },
}

/// A class's parameters, split.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassParameters {
    /// The Secret sent with replication calls for single volumes.
    pub secret: Option<SecretRef>,
    /// The Secret sent with replication calls for volume groups.
    pub group_secret: Option<SecretRef>,
    /// Everything else, passed to the driver unchanged.
    pub driver: BTreeMap<String, String>,
}

impl ClassParameters {
    /// Splits `parameters`; an unknown reserved key, an empty secret name or namespace, or a
    /// name without a namespace (or the other way round) is an error naming the key.
    pub fn parse(parameters: &BTreeMap<String, String>) -> Result<Self, ParameterError> {
        let mut reserved = BTreeMap::new();
        let mut driver = BTreeMap::new();
        for (key, value) in parameters {
            match key.strip_prefix(RESERVED_PREFIX) {
                Some(rest) => {
                    let known: ReservedKey =
                        rest.parse()
                            .map_err(|_| ParameterError::UnknownReservedKey {
                                key: key.clone(),
                                known: ReservedKey::ALL
                                    .iter()
                                    .map(|k| k.key())
                                    .collect::<Vec<_>>()
                                    .join(", "),
                            })?;
                    reserved.insert(known, value.as_str());
                }
                None => {
                    driver.insert(key.clone(), value.clone());
                }
            }
        }
        Ok(Self {
            secret: secret_ref(
                &reserved,
                ReservedKey::SecretName,
                ReservedKey::SecretNamespace,
            )?,
            group_secret: secret_ref(
                &reserved,
                ReservedKey::GroupSecretName,
                ReservedKey::GroupSecretNamespace,
            )?,
            driver,
        })
    }

    /// The driver's `schedulingInterval`, if the class sets one.
    pub fn scheduling_interval(&self) -> Result<Option<SchedulingInterval>, ParameterError> {
        self.driver
            .get(SCHEDULING_INTERVAL)
            .map(|value| {
                value.parse().map_err(|source| ParameterError::Interval {
                    key: SCHEDULING_INTERVAL,
                    source,
                })
            })
            .transpose()
    }
}

fn secret_ref(
    reserved: &BTreeMap<ReservedKey, &str>,
    name_key: ReservedKey,
    namespace_key: ReservedKey,
) -> Result<Option<SecretRef>, ParameterError> {
    for (key, what) in [(name_key, "name"), (namespace_key, "namespace")] {
        if reserved.get(&key).is_some_and(|v| v.is_empty()) {
            return Err(ParameterError::Empty {
                key: key.key(),
                what,
            });
        }
    }
    match (reserved.get(&name_key), reserved.get(&namespace_key)) {
        (Some(name), Some(namespace)) => Ok(Some(SecretRef {
            name: (*name).to_owned(),
            namespace: (*namespace).to_owned(),
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ParameterError::Incomplete {
            present: name_key.key(),
            missing: namespace_key.key(),
        }),
        (None, Some(_)) => Err(ParameterError::Incomplete {
            present: namespace_key.key(),
            missing: name_key.key(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn splits_reserved_keys_from_driver_parameters() {
        let parsed = ClassParameters::parse(&params(&[
            ("mirroringMode", "snapshot"),
            ("schedulingInterval", "1d"),
            (
                "replication.storage.openshift.io/replication-secret-name",
                "creds",
            ),
            (
                "replication.storage.openshift.io/replication-secret-namespace",
                "storage",
            ),
            (
                "replication.storage.openshift.io/group-replication-secret-name",
                "gcreds",
            ),
            (
                "replication.storage.openshift.io/group-replication-secret-namespace",
                "gstorage",
            ),
        ]))
        .unwrap();
        assert_eq!(
            parsed.secret,
            Some(SecretRef {
                name: "creds".into(),
                namespace: "storage".into()
            })
        );
        assert_eq!(
            parsed.group_secret,
            Some(SecretRef {
                name: "gcreds".into(),
                namespace: "gstorage".into()
            })
        );
        assert_eq!(
            parsed.driver,
            params(&[("mirroringMode", "snapshot"), ("schedulingInterval", "1d")])
        );
        assert_eq!(
            parsed
                .scheduling_interval()
                .unwrap()
                .unwrap()
                .as_duration()
                .as_secs(),
            86_400
        );
    }

    #[test]
    fn no_parameters_means_no_secret() {
        let parsed = ClassParameters::parse(&BTreeMap::new()).unwrap();
        assert_eq!(parsed, ClassParameters::default());
        assert_eq!(parsed.scheduling_interval(), Ok(None));
    }

    #[test]
    fn unknown_reserved_key_is_named() {
        let err = ClassParameters::parse(&params(&[(
            "replication.storage.openshift.io/replication-secret",
            "x",
        )]))
        .unwrap_err();
        assert!(
            matches!(&err, ParameterError::UnknownReservedKey { key, .. }
            if key == "replication.storage.openshift.io/replication-secret")
        );
        assert!(err.to_string().contains("replication-secret-name"), "{err}");
    }

    #[test]
    fn empty_secret_name_or_namespace_is_named() {
        let err = ClassParameters::parse(&params(&[
            (
                "replication.storage.openshift.io/replication-secret-name",
                "",
            ),
            (
                "replication.storage.openshift.io/replication-secret-namespace",
                "ns",
            ),
        ]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "parameter \"replication.storage.openshift.io/replication-secret-name\": secret name cannot be empty"
        );
        let err = ClassParameters::parse(&params(&[
            (
                "replication.storage.openshift.io/group-replication-secret-name",
                "n",
            ),
            (
                "replication.storage.openshift.io/group-replication-secret-namespace",
                "",
            ),
        ]))
        .unwrap_err();
        assert!(
            matches!(err, ParameterError::Empty { ref key, what: "namespace" }
            if key == "replication.storage.openshift.io/group-replication-secret-namespace")
        );
    }

    #[test]
    fn name_without_namespace_is_named() {
        let err = ClassParameters::parse(&params(&[(
            "replication.storage.openshift.io/replication-secret-name",
            "creds",
        )]))
        .unwrap_err();
        assert_eq!(
            err,
            ParameterError::Incomplete {
                present: "replication.storage.openshift.io/replication-secret-name".into(),
                missing: "replication.storage.openshift.io/replication-secret-namespace".into(),
            }
        );
    }

    #[test]
    fn bad_interval_is_named() {
        let parsed = ClassParameters::parse(&params(&[("schedulingInterval", "5s")])).unwrap();
        let err = parsed.scheduling_interval().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("parameter \"schedulingInterval\""),
            "{err}"
        );
    }
}
