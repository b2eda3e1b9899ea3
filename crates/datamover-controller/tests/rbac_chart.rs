//! The Helm chart grants this controller exactly the rules `src/rbac.rs` declares — no missing
//! permission, no extra one — on the committed renders (`cargo xtask charts --check` keeps
//! them current). The e2e scenarios check the code's requests stay within those rules.

use lifeline_datamover_controller::rbac::RULES;
use lifeline_runtime::rbac::{Scope, grants};
use lifeline_testkit::chart::{differences, granted, render};

const COMPONENT: &str = "datamover-controller";

#[test]
fn with_leader_election_the_chart_grants_exactly_the_declared_rules() {
    let chart = granted(&render("replicas-2"), COMPONENT);
    let declared = grants(RULES);
    let differences = differences(&chart, &declared);
    assert!(differences.is_empty(), "{differences:#?}");
}

#[test]
fn with_one_replica_the_lease_is_not_granted_and_nothing_else_changes() {
    let chart = granted(&render("default"), COMPONENT);
    let declared = grants(RULES);
    let without_lease: std::collections::BTreeSet<_> = declared
        .into_iter()
        .filter(|g| g.0 != Scope::OwnNamespace)
        .collect();
    let differences = differences(&chart, &without_lease);
    assert!(differences.is_empty(), "{differences:#?}");
}
