//! Names and labels of the working objects a request creates in the protected namespace.
//! Deterministic, so every step is idempotent and a restarted controller finds its objects.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Labels naming the request a working object belongs to (for cleanup and watches).
pub const REQUEST_KIND: &str = "datamover.oadp.openshift.io/request-kind";
pub const REQUEST_NAMESPACE: &str = "datamover.oadp.openshift.io/request-namespace";
pub const REQUEST_NAME: &str = "datamover.oadp.openshift.io/request-name";

/// Which kind of request: `vsb` or `vsr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    Backup,
    Restore,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Backup => "vsb",
            RequestKind::Restore => "vsr",
        }
    }
}

/// The working-object names of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    prefix: String,
    kind: RequestKind,
    namespace: String,
    name: String,
}

fn short_hash(text: &str) -> String {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    format!("{:08x}", hasher.finish() as u32)
}

impl Names {
    pub fn new(kind: RequestKind, namespace: &str, name: &str) -> Self {
        // Requests in different namespaces may share a name; the hash keeps them apart and
        // keeps names within the 63 characters a label value (and a PVC name) allows.
        let readable: String = name.chars().take(30).collect();
        let prefix = format!(
            "{}-{}-{}",
            kind.as_str(),
            readable.trim_end_matches('-'),
            short_hash(&format!("{namespace}/{name}"))
        );
        Self {
            prefix,
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    pub fn content(&self) -> String {
        format!("{}-content", self.prefix)
    }
    pub fn snapshot(&self) -> String {
        format!("{}-snapshot", self.prefix)
    }
    pub fn pvc(&self) -> String {
        format!("{}-pvc", self.prefix)
    }
    pub fn secret(&self) -> String {
        format!("{}-secret", self.prefix)
    }
    pub fn replication_source(&self) -> String {
        format!("{}-rs", self.prefix)
    }
    pub fn replication_destination(&self) -> String {
        format!("{}-rd", self.prefix)
    }

    /// The labels every working object of this request carries.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let value = |v: &str| -> String { v.chars().take(63).collect() };
        [
            (REQUEST_KIND.to_owned(), self.kind.as_str().to_owned()),
            (REQUEST_NAMESPACE.to_owned(), value(&self.namespace)),
            (REQUEST_NAME.to_owned(), value(&self.name)),
        ]
        .into()
    }

    /// The label selector for this request's working objects.
    pub fn selector(&self) -> String {
        self.labels()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_distinct_per_namespace_and_short() {
        let a = Names::new(RequestKind::Backup, "shop", "vsb-orders-db-x7k2p");
        assert_eq!(
            a,
            Names::new(RequestKind::Backup, "shop", "vsb-orders-db-x7k2p")
        );
        assert_ne!(
            a.pvc(),
            Names::new(RequestKind::Backup, "other", "vsb-orders-db-x7k2p").pvc()
        );
        let long = Names::new(RequestKind::Restore, "ns", &"x".repeat(250));
        assert!(
            long.replication_destination().len() <= 63,
            "{}",
            long.replication_destination()
        );
        assert!(
            a.selector()
                .contains("datamover.oadp.openshift.io/request-name=vsb-orders-db-x7k2p")
        );
    }
}
