//! The real API server's audit log, read as the requests each client made: who (user and
//! `User-Agent`), what (RBAC verb, group, resource and subresource), where (namespace, name)
//! and the answer's code. The RBAC checks, the CLI's request counts, the watch-cache test and
//! the benchmark's per-VR request counts read it.
//!
//! The policy logs every request at `Metadata` level — never a request or response body, so no
//! Secret's data reaches the file — and leaves out the API server's own loopback client and
//! health probes.

use std::path::Path;

use serde::Deserialize;

/// The audit policy kube-apiserver runs with (`--audit-policy-file`).
pub const POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    users: ["system:apiserver"]
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/version"]
  - level: Metadata
"#;

/// One request, as the audit log records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub user: String,
    pub agent: String,
    /// RBAC's verb: get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: String,
    pub group: String,
    /// The plural, with `/status` (or another subresource) appended for a subresource.
    pub resource: String,
    /// `None` for cluster-scoped resources and requests across all namespaces.
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// The HTTP status of the answer (0 while a watch is still open).
    pub code: u16,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    #[serde(rename = "auditID")]
    audit_id: String,
    verb: String,
    #[serde(default)]
    user: User,
    #[serde(default)]
    user_agent: String,
    object_ref: Option<ObjectRef>,
    response_status: Option<ResponseStatus>,
}

#[derive(Default, Deserialize)]
struct User {
    #[serde(default)]
    username: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectRef {
    #[serde(default)]
    resource: String,
    subresource: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    #[serde(default)]
    api_group: String,
}

#[derive(Deserialize)]
struct ResponseStatus {
    #[serde(default)]
    code: u16,
}

/// The resource requests in an audit log's text, one per request (a watch is logged when it
/// starts and again when it ends: it counts once), in the order they were logged. Lines that
/// are not audit events (a line cut short by a concurrent write) are passed over.
pub fn parse(text: &str) -> Vec<Access> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<Event>(line) else {
            continue;
        };
        let Some(object) = event.object_ref else {
            continue;
        };
        if !seen.insert(event.audit_id) {
            continue;
        }
        let resource = match object.subresource {
            Some(sub) => format!("{}/{sub}", object.resource),
            None => object.resource,
        };
        out.push(Access {
            user: event.user.username,
            agent: event.user_agent,
            verb: event.verb,
            group: object.api_group,
            resource,
            namespace: object.namespace,
            name: object.name,
            code: event.response_status.map_or(0, |s| s.code),
        });
    }
    out
}

/// Reads and parses the audit log at `path` (empty when the API server wrote none yet).
pub fn read(path: &Path) -> std::io::Result<Vec<Access>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/apis/replication.storage.openshift.io/v1alpha1/namespaces/app/volumereplications/db/status","verb":"patch","user":{"username":"lifeline-replication-controller","groups":["system:authenticated"]},"userAgent":"lifeline-replication-controller/0.1.0","objectRef":{"resource":"volumereplications","namespace":"app","name":"db","apiGroup":"replication.storage.openshift.io","apiVersion":"v1alpha1","subresource":"status"},"responseStatus":{"metadata":{},"code":200}}
{"kind":"Event","auditID":"w1","stage":"ResponseStarted","verb":"watch","user":{"username":"admin"},"userAgent":"kubectl/v1.36.3","objectRef":{"resource":"persistentvolumes","apiVersion":"v1"},"responseStatus":{"code":200}}
{"kind":"Event","auditID":"w1","stage":"ResponseComplete","verb":"watch","user":{"username":"admin"},"userAgent":"kubectl/v1.36.3","objectRef":{"resource":"persistentvolumes","apiVersion":"v1"},"responseStatus":{"code":200}}
{"kind":"Event","auditID":"n1","stage":"ResponseComplete","verb":"get","user":{"username":"admin"},"requestURI":"/metrics","responseStatus":{"code":200}}
{"kind":"Event","auditID":"x1","stage":"Resp"#;

    #[test]
    fn each_request_is_read_once_with_its_subresource() {
        let log = parse(LOG);
        assert_eq!(
            log,
            vec![
                Access {
                    user: "lifeline-replication-controller".into(),
                    agent: "lifeline-replication-controller/0.1.0".into(),
                    verb: "patch".into(),
                    group: "replication.storage.openshift.io".into(),
                    resource: "volumereplications/status".into(),
                    namespace: Some("app".into()),
                    name: Some("db".into()),
                    code: 200,
                },
                Access {
                    user: "admin".into(),
                    agent: "kubectl/v1.36.3".into(),
                    verb: "watch".into(),
                    group: String::new(),
                    resource: "persistentvolumes".into(),
                    namespace: None,
                    name: None,
                    code: 200,
                },
            ]
        );
    }

    #[test]
    fn a_missing_log_is_empty_and_garbage_is_passed_over() {
        assert!(
            read(Path::new("/nonexistent/audit.log"))
                .unwrap()
                .is_empty()
        );
        assert!(parse("not json\n{}\n").is_empty());
    }
}
