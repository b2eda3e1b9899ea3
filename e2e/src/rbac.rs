//! Checks a controller's requests against the RBAC rules its crate declares: what the local
//! API server saw it do (by `User-Agent`) must be allowed by those rules, in the scope the
//! Helm chart grants them.

use lifeline_runtime::rbac::{Rule, Scope, allows};

use crate::apiserver::Access;

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
/// them are allowed by `rules`. Passes without checking on backends that keep no access log.
pub async fn check(
    cluster: &crate::cluster::TestCluster,
    agent: &str,
    rules: &[Rule],
    namespaces: &Namespaces<'_>,
) -> anyhow::Result<()> {
    let Some(log) = cluster.access_log().await? else {
        return Ok(());
    };
    anyhow::ensure!(
        requests_of(&log, agent) > 0,
        "no request from {agent} in the access log"
    );
    let denied = violations(&log, agent, rules, namespaces);
    anyhow::ensure!(
        denied.is_empty(),
        "{agent} made requests its declared RBAC rules do not allow:\n  {}",
        denied.join("\n  ")
    );
    Ok(())
}
