//! The Helm chart grants this controller exactly the rules `src/rbac.rs` declares — no missing
//! permission, no extra one — on the committed renders (`cargo xtask charts --check` keeps
//! them current). The e2e scenarios check the code's requests stay within those rules.

use lifeline_datamover_controller::rbac::RULES;
use lifeline_runtime::rbac::grants;
use lifeline_testkit::chart::assert_chart_grants;

const COMPONENT: &str = "datamover-controller";

/// Leader election is always on, so every scenario grants the Lease: one replica or two.
#[test]
fn every_scenario_grants_exactly_the_declared_rules_lease_included() {
    for scenario in ["default", "replicas-2"] {
        assert_chart_grants(scenario, COMPONENT, &grants(RULES));
    }
}
