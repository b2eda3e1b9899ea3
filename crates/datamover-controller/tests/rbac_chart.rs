//! The Helm chart grants this controller exactly the rules `src/rbac.rs` declares — no missing
//! permission, no extra one — on the committed renders (`cargo xtask charts --check` keeps
//! them current). The e2e scenarios check the code's requests stay within those rules.

use lifeline_datamover_controller::rbac::RULES;
use lifeline_runtime::rbac::{Scope, grants};
use lifeline_testkit::chart::assert_chart_grants;

const COMPONENT: &str = "datamover-controller";

#[test]
fn with_leader_election_the_chart_grants_exactly_the_declared_rules() {
    assert_chart_grants("replicas-2", COMPONENT, &grants(RULES));
}

#[test]
fn with_one_replica_the_lease_is_not_granted_and_nothing_else_changes() {
    let mut declared = grants(RULES);
    declared.retain(|g| g.0 != Scope::OwnNamespace);
    assert_chart_grants("default", COMPONENT, &declared);
}
