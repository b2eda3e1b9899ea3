//! Reading the committed Helm chart renders (`docs/examples/helm/`, kept current by
//! `cargo xtask charts --check`) so a controller's tests can compare the RBAC the chart grants
//! with the rules its crate declares.

use std::collections::BTreeSet;
use std::path::PathBuf;

use lifeline_runtime::rbac::{Grant, Scope, expand};
use serde_json::Value;

/// The release namespace the renders were made for.
pub const RELEASE_NAMESPACE: &str = "lifeline-system";

/// The objects of one committed render, e.g. `default` or `replicas-2`.
pub fn render(scenario: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/examples/helm")
        .join(format!("{scenario}.yaml"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run `cargo xtask charts`)", path.display()));
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .filter(|v| v.is_object())
        .collect()
}

fn component_of(object: &Value) -> Option<&str> {
    object["metadata"]["labels"]["app.kubernetes.io/component"].as_str()
}

/// Everything the chart grants `component`'s ServiceAccount: each rule of each ClusterRole and
/// Role bound to it, with its scope: the `…-leader-election` Role is [`Scope::OwnNamespace`],
/// any other Role [`Scope::ProtectedNamespace`] (which may be the release namespace too).
pub fn granted(objects: &[Value], component: &str) -> BTreeSet<Grant> {
    let account = format!("lifeline-{component}");
    let bound: BTreeSet<(String, String)> = objects
        .iter()
        .filter(|o| {
            matches!(
                o["kind"].as_str(),
                Some("ClusterRoleBinding" | "RoleBinding")
            )
        })
        .filter(|b| {
            b["subjects"].as_array().is_some_and(|subjects| {
                subjects.iter().any(|s| {
                    s["kind"] == "ServiceAccount"
                        && s["name"] == account.as_str()
                        && s["namespace"] == RELEASE_NAMESPACE
                })
            })
        })
        .map(|b| {
            let namespace = b["metadata"]["namespace"].as_str().unwrap_or_default();
            (
                format!(
                    "{}/{namespace}",
                    b["roleRef"]["kind"].as_str().unwrap_or_default()
                ),
                b["roleRef"]["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let mut out = BTreeSet::new();
    for role in objects
        .iter()
        .filter(|o| matches!(o["kind"].as_str(), Some("ClusterRole" | "Role")))
        .filter(|o| component_of(o) == Some(component))
        // Not the component's own: the chart grants it to whoever scrapes the metrics.
        .filter(|o| {
            !o["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("-metrics-reader"))
        })
    {
        let kind = role["kind"].as_str().unwrap_or_default();
        let namespace = role["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = role["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            bound.contains(&(format!("{kind}/{namespace}"), name.clone())),
            "{kind} {name} is not bound to ServiceAccount {account}"
        );
        let scope = match kind {
            "ClusterRole" => Scope::Cluster,
            _ if name.ends_with("-leader-election") => {
                assert_eq!(
                    namespace, RELEASE_NAMESPACE,
                    "{name}: the Lease is in the release namespace"
                );
                Scope::OwnNamespace
            }
            _ => Scope::ProtectedNamespace,
        };
        for rule in role["rules"].as_array().into_iter().flatten() {
            let strings = |key: &str| -> Vec<String> {
                rule[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            };
            out.extend(expand(
                scope,
                &strings("apiGroups"),
                &strings("resources"),
                &strings("verbs"),
                &strings("resourceNames"),
            ));
        }
    }
    out
}

/// Fails with the differences unless the chart rendered for `scenario` grants `component`
/// exactly `declared` (as [`lifeline_runtime::rbac::grants`] expands a crate's rules).
pub fn assert_chart_grants(scenario: &str, component: &str, declared: &BTreeSet<Grant>) {
    let chart = granted(&render(scenario), component);
    let differences = differences(&chart, declared);
    assert!(
        differences.is_empty(),
        "{scenario}: {component}: {differences:#?}"
    );
}

/// The differences between what the chart grants and what the rules declare, readable.
pub fn differences(granted: &BTreeSet<Grant>, declared: &BTreeSet<Grant>) -> Vec<String> {
    let show = |g: &Grant| format!("{:?} {}/{} {} {:?}", g.0, g.1, g.2, g.3, g.4);
    granted
        .difference(declared)
        .map(|g| format!("granted by the chart but not declared: {}", show(g)))
        .chain(
            declared
                .difference(granted)
                .map(|g| format!("declared but not granted by the chart: {}", show(g))),
        )
        .collect()
}
