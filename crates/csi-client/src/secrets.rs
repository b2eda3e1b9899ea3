//! Credentials sent with replication calls, which must never reach a log.

use std::collections::BTreeMap;
use std::fmt;

/// The `secrets` of a replication call: key → value.
///
/// `Debug` and `Display` print the key names only. The values leave this type only through
/// [`Secrets::expose`], which request building uses.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets(BTreeMap<String, String>);

impl Secrets {
    pub fn new() -> Self {
        Self::default()
    }

    /// The key names, for messages that must say which keys were sent.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// The values, for putting on the wire. Named so that a reviewer sees every use.
    pub fn expose(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Secrets {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl From<BTreeMap<String, String>> for Secrets {
    fn from(map: BTreeMap<String, String>) -> Self {
        Self(map)
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        KeysOnly(&self.0).fmt(f)
    }
}

impl fmt::Display for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, key) in self.0.keys().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{key}")?;
        }
        write!(f, "]")
    }
}

/// Formats a secret map as its keys with redacted values.
pub(crate) struct KeysOnly<'a>(pub &'a BTreeMap<String, String>);

impl fmt::Debug for KeysOnly<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "<redacted>")))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_print_keys_only() {
        let secrets = Secrets::from_iter([("userID", "admin"), ("userKey", "s3cr3t-value")]);
        let debug = format!("{secrets:?}");
        let display = secrets.to_string();
        assert_eq!(display, "[userID, userKey]");
        assert_eq!(
            debug,
            r#"{"userID": "<redacted>", "userKey": "<redacted>"}"#
        );
        for shown in [debug, display, format!("{secrets:#?}")] {
            assert!(
                !shown.contains("s3cr3t-value") && !shown.contains("admin"),
                "{shown}"
            );
        }
    }
}
