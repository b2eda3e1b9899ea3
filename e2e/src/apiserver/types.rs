//! The kinds the local API server serves: a short table of built-in kinds plus whatever
//! CustomResourceDefinitions register. One generic store serves them all.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::schema::Schema;
use super::table::{Column, builtin_columns, crd_columns};

/// One served resource (a group/version/plural).
#[derive(Clone, Debug)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub status_subresource: bool,
    pub short_names: Vec<String>,
    /// For custom resources: the version's schema (validation, defaults, pruning, rules).
    pub schema: Option<Arc<Schema>>,
    /// The columns of `kubectl get` (the Table format), after Name.
    pub columns: Vec<Column>,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The storage key of the resource, shared by all versions of a group's plural.
    pub fn key(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }

    /// Objects of these kinds have a spec whose changes bump `metadata.generation`.
    pub fn tracks_generation(&self) -> bool {
        self.schema.is_some() || self.status_subresource
    }
}

fn builtin(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    status: bool,
    short: &[&str],
) -> ResourceType {
    ResourceType {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        namespaced,
        status_subresource: status,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        schema: None,
        columns: builtin_columns(group, kind),
    }
}

/// The built-in kinds Lifeline, its actors and its tests use.
pub fn builtins() -> Vec<ResourceType> {
    vec![
        builtin("", "v1", "Namespace", "namespaces", false, true, &["ns"]),
        builtin("", "v1", "Secret", "secrets", true, false, &[]),
        builtin("", "v1", "ConfigMap", "configmaps", true, false, &["cm"]),
        builtin(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            true,
            false,
            &["sa"],
        ),
        builtin(
            "",
            "v1",
            "PersistentVolume",
            "persistentvolumes",
            false,
            true,
            &["pv"],
        ),
        builtin(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
            true,
            &["pvc"],
        ),
        builtin("", "v1", "Event", "events", true, false, &["ev"]),
        // Pods are only stored: kube-controller-manager's stand-in asks which use a claim.
        builtin("", "v1", "Pod", "pods", true, true, &["po"]),
        builtin(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            true,
            false,
            &["ev"],
        ),
        builtin(
            "storage.k8s.io",
            "v1",
            "StorageClass",
            "storageclasses",
            false,
            false,
            &["sc"],
        ),
        // Workloads are only stored: kube-controller-manager's stand-in keeps their Pods.
        builtin(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            true,
            true,
            &["deploy"],
        ),
        builtin(
            "apps",
            "v1",
            "StatefulSet",
            "statefulsets",
            true,
            true,
            &["sts"],
        ),
        builtin(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            true,
            false,
            &[],
        ),
        // RBAC objects are stored, not enforced (the envtest backend enforces them).
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
            false,
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            false,
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            "roles",
            true,
            false,
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            true,
            false,
            &[],
        ),
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            true,
            &["crd", "crds"],
        ),
    ]
}

/// Resource types by (group, version, plural).
#[derive(Clone, Debug, Default)]
pub struct Registry {
    types: BTreeMap<(String, String, String), ResourceType>,
}

impl Registry {
    pub fn with_builtins() -> Self {
        let mut registry = Self::default();
        for t in builtins() {
            registry.insert(t);
        }
        registry
    }

    pub fn insert(&mut self, t: ResourceType) {
        self.types
            .insert((t.group.clone(), t.version.clone(), t.plural.clone()), t);
    }

    /// Drops every version of `group`/`plural` (a CRD went away).
    pub fn remove(&mut self, group: &str, plural: &str) {
        self.types
            .retain(|(g, _, p), _| !(g == group && p == plural));
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .get(&(group.to_owned(), version.to_owned(), plural.to_owned()))
    }

    pub fn all(&self) -> impl Iterator<Item = &ResourceType> {
        self.types.values()
    }
}

/// Registers (or replaces) the types a CustomResourceDefinition declares.
pub fn from_crd(crd: &Value) -> Result<Vec<ResourceType>, String> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().ok_or("spec.group is required")?;
    let names = &spec["names"];
    let plural = names["plural"]
        .as_str()
        .ok_or("spec.names.plural is required")?;
    let kind = names["kind"]
        .as_str()
        .ok_or("spec.names.kind is required")?;
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let mut types = Vec::new();
    for version in spec["versions"]
        .as_array()
        .ok_or("spec.versions is required")?
    {
        if version["served"].as_bool() == Some(false) {
            continue;
        }
        let name = version["name"]
            .as_str()
            .ok_or("spec.versions[].name is required")?;
        let schema = &version["schema"]["openAPIV3Schema"];
        let schema = if schema.is_null() {
            None
        } else {
            Some(Arc::new(
                Schema::compile(schema).map_err(|e| format!("version {name}: {e}"))?,
            ))
        };
        types.push(ResourceType {
            group: group.into(),
            version: name.into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: names["singular"]
                .as_str()
                .unwrap_or(&kind.to_lowercase())
                .to_owned(),
            namespaced,
            status_subresource: !version["subresources"]["status"].is_null(),
            short_names: names["shortNames"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            schema,
            columns: crd_columns(version),
        });
    }
    Ok(types)
}
