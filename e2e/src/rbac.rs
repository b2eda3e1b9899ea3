//! Checks a controller's requests against the RBAC rules its crate declares: what the API
//! server's audit log saw it do (by `User-Agent`) must be allowed by those rules, in the scope
//! the Helm chart grants them.

use lifeline_runtime::rbac::{Rule, Scope, allows};

use crate::audit::Access;

/// Where the chart grants namespaced rules.
pub struct Namespaces<'a> {
    /// The controller's own namespace (its Lease).
    pub own: &'a str,
    /// The data mover's protected namespace, if any.
    pub protected: Option<&'a str>,
}

/// The requests of the client whose `User-Agent` starts with `agent` that `rules` do not allow.
pub fn violations(
    log: &[Access],
    agent: &str,
    rules: &[Rule],
    namespaces: &Namespaces,
) -> Vec<String> {
    log.iter()
        .filter(|a| a.agent.starts_with(agent))
        .filter(|a| {
            // A request in a namespace is allowed by a rule of any scope granted there.
            let mut scopes = vec![Scope::Cluster];
            if let Some(ns) = a.namespace.as_deref() {
                if Some(ns) == namespaces.protected {
                    scopes.push(Scope::ProtectedNamespace);
                }
                if ns == namespaces.own {
                    scopes.push(Scope::OwnNamespace);
                }
            }
            !scopes.into_iter().any(|scope| {
                allows(
                    rules,
                    scope,
                    &a.group,
                    &a.resource,
                    &a.verb,
                    a.name.as_deref(),
                )
            })
        })
        .map(|a| {
            format!(
                "{} {}/{} in {} (name {:?})",
                a.verb,
                a.group,
                a.resource,
                a.namespace.as_deref().unwrap_or("the cluster"),
                a.name
            )
        })
        .collect()
}

/// How many requests came from clients whose `User-Agent` starts with `agent` (a check that
/// the log identifies the controller at all).
pub fn requests_of(log: &[Access], agent: &str) -> usize {
    log.iter().filter(|a| a.agent.starts_with(agent)).count()
}

/// Fails unless the controller whose `User-Agent` starts with `agent` made requests and all of
/// them are allowed by `rules`. Fails on a backend that keeps no audit log.
pub async fn check(
    cluster: &crate::cluster::TestCluster,
    agent: &str,
    rules: &[Rule],
    namespaces: &Namespaces<'_>,
) -> anyhow::Result<()> {
    let log = cluster.audit_log().await?;
    anyhow::ensure!(
        requests_of(&log, agent) > 0,
        "no request from {agent} in the audit log"
    );
    let denied = violations(&log, agent, rules, namespaces);
    anyhow::ensure!(
        denied.is_empty(),
        "{agent} made requests its declared RBAC rules do not allow:\n  {}",
        denied.join("\n  ")
    );
    Ok(())
}

/// A Lifeline controller, as the chart names its component and the control plane its user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Controller {
    Replication,
    Datamover,
}

impl Controller {
    pub const ALL: [Controller; 2] = [Controller::Replication, Controller::Datamover];

    /// The chart's `app.kubernetes.io/component`.
    pub fn component(self) -> &'static str {
        match self {
            Controller::Replication => "replication-controller",
            Controller::Datamover => "datamover-controller",
        }
    }

    /// The user the controller authenticates as where the harness mints identities (the real
    /// control plane).
    pub fn user(self) -> String {
        format!("lifeline-{}", self.component())
    }
}

/// Every user the control plane mints a token for besides the admin: each controller's, and
/// the CLI's ([`CLI_USER`]).
pub fn users() -> Vec<String> {
    let mut users: Vec<String> = Controller::ALL.iter().map(|c| c.user()).collect();
    users.push(CLI_USER.to_owned());
    users
}

/// The user `kubectl lifeline` authenticates as in the tests, bound to what its README documents.
pub const CLI_USER: &str = "lifeline-cli";

/// The committed render that has every Role the chart can grant (leader election included).
pub const CHART_RENDER: &str = "replicas-2";

/// The chart's RBAC objects for `controller` (its ClusterRole and Roles, and their bindings),
/// made ready for a test cluster: bindings name `user` instead of the ServiceAccount, the
/// leader-election Role and binding go to `own`, the other Roles to `protected` (left out
/// without one).
pub fn chart_grants(
    controller: Controller,
    user: &str,
    own: &str,
    protected: Option<&str>,
) -> anyhow::Result<Vec<serde_json::Value>> {
    use anyhow::Context;
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/examples/helm")
        .join(format!("{CHART_RENDER}.yaml"));
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{} (run `cargo xtask charts`)", path.display()))?;
    let objects: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text)
        .with_context(|| format!("{} is not YAML", path.display()))?;
    let mut grants = Vec::new();
    for mut object in objects {
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        let component = object["metadata"]["labels"]["app.kubernetes.io/component"].as_str();
        if component != Some(controller.component())
            || !matches!(
                kind.as_str(),
                "ClusterRole" | "ClusterRoleBinding" | "Role" | "RoleBinding"
            )
        {
            continue;
        }
        if kind.starts_with("Role") {
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            let namespace = if name.ends_with("-leader-election") {
                own
            } else if let Some(protected) = protected {
                protected
            } else {
                continue;
            };
            object["metadata"]["namespace"] = serde_json::json!(namespace);
        }
        if kind.ends_with("Binding") {
            object["subjects"] = serde_json::json!([
                {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user}
            ]);
        }
        grants.push(object);
    }
    anyhow::ensure!(
        grants.iter().any(|g| g["kind"] == "ClusterRoleBinding"),
        "{CHART_RENDER} renders no ClusterRoleBinding for {}",
        controller.component()
    );
    Ok(grants)
}

/// Applies [`chart_grants`] (server-side apply, so tests sharing a cluster agree).
pub async fn grant(
    client: &kube::Client,
    controller: Controller,
    user: &str,
    own: &str,
    protected: Option<&str>,
) -> anyhow::Result<()> {
    use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
    for object in chart_grants(controller, user, own, protected)? {
        let kind = object["kind"].as_str().unwrap_or_default();
        let resource = ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
            "rbac.authorization.k8s.io",
            "v1",
            kind,
        ));
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let api: kube::Api<DynamicObject> = match object["metadata"]["namespace"].as_str() {
            Some(namespace) => kube::Api::namespaced_with(client.clone(), namespace, &resource),
            None => kube::Api::all_with(client.clone(), &resource),
        };
        api.patch(
            name,
            &PatchParams::apply("lifeline-e2e").force(),
            &Patch::Apply(&object),
        )
        .await?;
    }
    Ok(())
}

/// Binds [`CLI_USER`] to a ClusterRole of exactly the rules `kubectl lifeline` documents
/// (`lifeline_cli::rbac::RULES`, shown in docs/runbook.md), so the CLI's tests prove them
/// enough on a real authorizer.
pub async fn grant_cli(client: &kube::Client) -> anyhow::Result<()> {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    use kube::api::{Patch, PatchParams};
    let rules: Vec<serde_json::Value> = lifeline_cli::rbac::RULES
        .iter()
        .map(|(group, resources, verbs, _why)| {
            serde_json::json!({"apiGroups": [group], "resources": resources, "verbs": verbs})
        })
        .collect();
    let name = "lifeline-e2e-cli";
    let role = serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name}, "rules": rules,
    });
    let binding = serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": CLI_USER}],
    });
    let apply = PatchParams::apply("lifeline-e2e").force();
    kube::Api::<ClusterRole>::all(client.clone())
        .patch(name, &apply, &Patch::Apply(&role))
        .await?;
    kube::Api::<ClusterRoleBinding>::all(client.clone())
        .patch(name, &apply, &Patch::Apply(&binding))
        .await?;
    Ok(())
}
