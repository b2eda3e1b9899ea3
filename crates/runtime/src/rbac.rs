//! The Kubernetes permissions a controller needs, declared once in its crate as [`Rule`]s. The
//! Helm chart's ClusterRole/Role must grant exactly these (a test compares the rendered chart
//! with them) and the e2e suite checks that every request a controller makes is covered by them.

use std::collections::BTreeSet;

/// Where a rule applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Every namespace and cluster-scoped resources: a ClusterRole.
    Cluster,
    /// The controller's own namespace (its Lease): a Role there.
    OwnNamespace,
    /// The namespace the data mover keeps its working objects in: a Role there.
    ProtectedNamespace,
}

/// One RBAC rule, with the reason it is needed (rendered as a comment in the chart).
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub scope: Scope,
    /// API group; `""` is the core group.
    pub group: &'static str,
    /// Resources, with `/status` for status subresources.
    pub resources: &'static [&'static str],
    pub verbs: &'static [&'static str],
    /// When set, only these objects (cluster-scoped lookups of known names).
    pub resource_names: &'static [&'static str],
    pub why: &'static str,
}

/// One permission: scope, group, resource, verb, and the object name when restricted.
pub type Grant = (Scope, String, String, String, Option<String>);

/// Every single permission the rules grant.
pub fn grants(rules: &[Rule]) -> BTreeSet<Grant> {
    rules
        .iter()
        .flat_map(|rule| {
            expand(
                rule.scope,
                &[rule.group],
                rule.resources,
                rule.verbs,
                rule.resource_names,
            )
        })
        .collect()
}

/// The single permissions of one RBAC rule as Kubernetes writes it (several groups possible;
/// no resource names = any object).
pub fn expand<S: AsRef<str>>(
    scope: Scope,
    groups: &[S],
    resources: &[S],
    verbs: &[S],
    resource_names: &[S],
) -> Vec<Grant> {
    let names: Vec<Option<String>> = if resource_names.is_empty() {
        vec![None]
    } else {
        resource_names
            .iter()
            .map(|n| Some(n.as_ref().to_owned()))
            .collect()
    };
    let mut out = Vec::new();
    for group in groups {
        for resource in resources {
            for verb in verbs {
                for name in &names {
                    out.push((
                        scope,
                        group.as_ref().to_owned(),
                        resource.as_ref().to_owned(),
                        verb.as_ref().to_owned(),
                        name.clone(),
                    ));
                }
            }
        }
    }
    out
}

/// Whether a request is allowed: `scope` is where it went (cluster-wide or all namespaces is
/// [`Scope::Cluster`]); a ClusterRole rule covers every scope.
pub fn allows(
    rules: &[Rule],
    scope: Scope,
    group: &str,
    resource: &str,
    verb: &str,
    name: Option<&str>,
) -> bool {
    rules.iter().any(|rule| {
        (rule.scope == Scope::Cluster || rule.scope == scope)
            && rule.group == group
            && rule.resources.contains(&resource)
            && rule.verbs.contains(&verb)
            && (rule.resource_names.is_empty()
                || name.is_some_and(|n| rule.resource_names.contains(&n)))
    })
}

/// Leader election: the Lease in the controller's namespace (only rendered with leader election).
pub const LEASE: Rule = Rule {
    scope: Scope::OwnNamespace,
    group: "coordination.k8s.io",
    resources: &["leases"],
    verbs: &["get", "create", "update"],
    resource_names: &[],
    why: "leader election: read, create and renew the controller's Lease",
};

/// Secured `/metrics` (`--metrics-auth`): who is this token ([`crate::admin_security`]).
pub const TOKEN_REVIEWS: Rule = Rule {
    scope: Scope::Cluster,
    group: "authentication.k8s.io",
    resources: &["tokenreviews"],
    verbs: &["create"],
    resource_names: &[],
    why: "secured /metrics: asks the API server whose a scraper's bearer token is",
};

/// Secured `/metrics`: may that user read it.
pub const ACCESS_REVIEWS: Rule = Rule {
    scope: Scope::Cluster,
    group: "authorization.k8s.io",
    resources: &["subjectaccessreviews"],
    verbs: &["create"],
    resource_names: &[],
    why: "secured /metrics: asks the API server whether that user may get /metrics",
};

/// Events about the objects a controller reconciles, which live in users' namespaces.
pub const EVENTS: Rule = Rule {
    scope: Scope::Cluster,
    group: "events.k8s.io",
    resources: &["events"],
    verbs: &["create", "patch"],
    resource_names: &[],
    why: "Events on the objects it reconciles (in their namespaces); patch counts repeats",
};

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &[Rule] = &[
        LEASE,
        Rule {
            scope: Scope::Cluster,
            group: "apiextensions.k8s.io",
            resources: &["customresourcedefinitions"],
            verbs: &["get"],
            resource_names: &["a.example"],
            why: "test",
        },
    ];

    #[test]
    fn cluster_rules_cover_namespaces_and_named_rules_only_their_names() {
        assert!(allows(
            RULES,
            Scope::OwnNamespace,
            "coordination.k8s.io",
            "leases",
            "get",
            Some("x")
        ));
        assert!(!allows(
            RULES,
            Scope::Cluster,
            "coordination.k8s.io",
            "leases",
            "get",
            Some("x")
        ));
        assert!(!allows(
            RULES,
            Scope::OwnNamespace,
            "coordination.k8s.io",
            "leases",
            "delete",
            None
        ));
        let crd = |name| {
            allows(
                RULES,
                Scope::Cluster,
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                "get",
                name,
            )
        };
        assert!(crd(Some("a.example")));
        assert!(!crd(Some("b.example")));
        assert!(!crd(None));
        assert_eq!(grants(RULES).len(), 4);
    }
}
