//! Discovery documents: enough for kube-rs discovery, `kubectl get` and `kubectl create -f`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::types::{Registry, ResourceType};

pub fn api_versions(address: &str) -> Value {
    json!({
        "kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    })
}

fn groups(registry: &Registry) -> BTreeMap<String, Vec<String>> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in registry.all().filter(|t| !t.group.is_empty()) {
        let versions = groups.entry(t.group.clone()).or_default();
        if !versions.contains(&t.version) {
            versions.push(t.version.clone());
        }
    }
    groups
}

fn group_doc(name: &str, versions: &[String]) -> Value {
    let list: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": list, "preferredVersion": list[0]})
}

pub fn group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = groups(registry)
        .iter()
        .map(|(name, versions)| group_doc(name, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn group(registry: &Registry, name: &str) -> Option<Value> {
    groups(registry)
        .get(name)
        .map(|versions| group_doc(name, versions))
}

fn resource(t: &ResourceType) -> Vec<Value> {
    let mut resources = vec![json!({
        "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced, "kind": t.kind,
        "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
        "shortNames": t.short_names,
    })];
    if t.status_subresource {
        resources.push(json!({
            "name": format!("{}/status", t.plural), "singularName": "", "namespaced": t.namespaced,
            "kind": t.kind, "verbs": ["get", "patch", "update"],
        }));
    }
    resources
}

pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let resources: Vec<Value> = registry
        .all()
        .filter(|t| t.group == group && t.version == version)
        .flat_map(resource)
        .collect();
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

pub fn version() -> Value {
    json!({
        "major": "1", "minor": "36", "gitVersion": "v1.36.0-lifeline-local",
        "platform": "linux/amd64", "goVersion": "none", "compiler": "rust",
    })
}
