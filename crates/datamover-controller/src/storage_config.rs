//! OADP's per-StorageClass ConfigMap (`<storageclass>-config` in the protected namespace): the
//! working claim's and cache's storage class, access mode and capacity, and whether the mover
//! runs with the workload's Pod security context — for the source side (backups) and the
//! destination side (restores). Pure: parsed from the ConfigMap's data, every bad value an
//! error naming the key and the ConfigMap.

use std::collections::BTreeMap;

use crate::sizes;

/// One side's settings; `None` where the ConfigMap says nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Side {
    pub storage_class: Option<String>,
    pub access_mode: Option<String>,
    pub cache_storage_class: Option<String>,
    pub cache_capacity: Option<String>,
    pub cache_access_mode: Option<String>,
    /// `*MoverSecurityContext: "true"`: the mover runs with the workload's Pod security context.
    pub mover_security_context: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageConfig {
    /// The ConfigMap's name, for messages.
    pub name: String,
    pub source: Side,
    pub destination: Side,
}

/// A value of the ConfigMap that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ConfigMap {configmap}: {key} {problem}")]
pub struct ConfigError {
    pub configmap: String,
    pub key: String,
    pub problem: String,
}

/// The name of the ConfigMap for a storage class.
pub fn configmap_name(storage_class: &str) -> String {
    format!("{storage_class}-config")
}

const ACCESS_MODES: [&str; 4] = [
    "ReadWriteOnce",
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOncePod",
];

pub fn parse(name: &str, data: &BTreeMap<String, String>) -> Result<StorageConfig, ConfigError> {
    let bad = |key: &str, problem: String| ConfigError {
        configmap: name.to_owned(),
        key: key.to_owned(),
        problem,
    };
    let side = |prefix: &str| -> Result<Side, ConfigError> {
        let get = |suffix: &str| {
            let key = format!("{prefix}{suffix}");
            let value = data
                .get(&key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty());
            (key, value)
        };
        let mode = |suffix: &str| -> Result<Option<String>, ConfigError> {
            match get(suffix) {
                (key, Some(m)) if !ACCESS_MODES.contains(&m.as_str()) => Err(bad(
                    &key,
                    format!("is {m:?}; use one of {}", ACCESS_MODES.join(", ")),
                )),
                (_, value) => Ok(value),
            }
        };
        let (capacity_key, capacity) = get("CacheCapacity");
        if let Some(c) = &capacity
            && sizes::bytes(c).is_none_or(|b| b == 0)
        {
            return Err(bad(
                &capacity_key,
                format!("is {c:?}, not a storage quantity such as 1Gi or 500Mi"),
            ));
        }
        let (context_key, context) = get("MoverSecurityContext");
        let mover_security_context = match context.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(bad(
                    &context_key,
                    format!("is {other:?}; use \"true\" or \"false\""),
                ));
            }
        };
        Ok(Side {
            storage_class: get("StorageClassName").1,
            access_mode: mode("AccessMode")?,
            cache_storage_class: get("CacheStorageClassName").1,
            cache_capacity: capacity,
            cache_access_mode: mode("CacheAccessMode")?,
            mover_security_context,
        })
    };
    Ok(StorageConfig {
        name: name.to_owned(),
        source: side("Source")?,
        destination: side("Destination")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_key_of_both_sides_is_read() {
        let c = parse(
            "gp3-config",
            &data(&[
                ("SourceStorageClassName", "gp3-csi"),
                ("SourceAccessMode", "ReadOnlyMany"),
                ("SourceCacheStorageClassName", "gp3-fast"),
                ("SourceCacheCapacity", "2Gi"),
                ("SourceCacheAccessMode", "ReadWriteOnce"),
                ("SourceMoverSecurityContext", "true"),
                ("DestinationStorageClassName", "gp3-restore"),
                ("DestinationAccessMode", "ReadWriteOnce"),
                ("DestinationCacheCapacity", "500Mi"),
            ]),
        )
        .unwrap();
        assert_eq!(c.source.storage_class.as_deref(), Some("gp3-csi"));
        assert_eq!(c.source.access_mode.as_deref(), Some("ReadOnlyMany"));
        assert_eq!(c.source.cache_capacity.as_deref(), Some("2Gi"));
        assert!(c.source.mover_security_context);
        assert_eq!(c.destination.storage_class.as_deref(), Some("gp3-restore"));
        assert!(!c.destination.mover_security_context);
        assert_eq!(parse("x", &data(&[])).unwrap().source, Side::default());
    }

    #[test]
    fn a_bad_value_names_the_key_and_the_configmap() {
        for (key, value, says) in [
            ("SourceAccessMode", "RWO", "use one of ReadWriteOnce"),
            ("DestinationCacheAccessMode", "Shared", "use one of"),
            ("SourceCacheCapacity", "lots", "not a storage quantity"),
            ("DestinationCacheCapacity", "0", "not a storage quantity"),
            (
                "SourceMoverSecurityContext",
                "yes",
                "use \"true\" or \"false\"",
            ),
        ] {
            let e = parse("gp3-config", &data(&[(key, value)]))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!("ConfigMap gp3-config: {key} ")),
                "{e}"
            );
            assert!(e.contains(says), "{e}");
        }
    }
}
