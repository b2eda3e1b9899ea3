//! Pure decision of what to ask the driver for in this reconcile, from the desired state and
//! what the status says was already done. Steady states call nothing, so a healthy primary
//! costs one info refresh per interval and nothing else.

use lifeline_api::condition::find_condition;
use lifeline_api::replication::{
    ConditionType, CurrentState, Reason, ReplicationState, VolumeReplication,
};

/// What to call on the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Enable, then Promote (forced once if the driver reports FAILED_PRECONDITION), then
    /// refresh replication info.
    Promote,
    /// Enable and Demote (unless this generation is already demoted), then Resync(force)
    /// until ready. Enable first because a volume that was never replicated cannot be demoted
    /// (the Go operator enables on every reconcile; we only when something changed).
    Demote {
        force_resync: bool,
        already_demoted: bool,
        /// Enable first: nothing was done to this volume yet (a former primary is enabled).
        enable: bool,
    },
    /// Resync(force=true) until ready, after Enable the first time.
    Resync { enable: bool },
    /// Already in the desired state (a healthy primary, or a secondary whose resync is ready):
    /// only refresh replication info.
    RefreshInfo,
    /// Nothing is due.
    Nothing,
}

/// Decides the plan. `info_due` says whether the scheduled info refresh is due (and the driver
/// has not said it lacks GetVolumeReplicationInfo).
pub fn plan(vr: &VolumeReplication, info_due: bool) -> Plan {
    let status = vr.status.clone().unwrap_or_default();
    let current = status.observed_generation == vr.metadata.generation;
    let has = |type_: ConditionType, value: &str, reason: Reason| {
        find_condition(&status.conditions, type_.as_str())
            .is_some_and(|c| c.status == value && c.reason == reason.as_str())
    };
    match vr.spec.replication_state {
        ReplicationState::Primary => {
            let done = current
                && status.state() == Some(CurrentState::Primary)
                && has(ConditionType::Completed, "True", Reason::Promoted);
            match (done, info_due) {
                (false, _) => Plan::Promote,
                (true, true) => Plan::RefreshInfo,
                (true, false) => Plan::Nothing,
            }
        }
        ReplicationState::Secondary => {
            let done = current
                && status.state() == Some(CurrentState::Secondary)
                && has(ConditionType::Completed, "True", Reason::Demoted)
                && has(ConditionType::Degraded, "False", Reason::Healthy);
            // Demoted, or demoted with the resync after it failed (state Secondary is only
            // recorded once the demote succeeded): demoting again would change nothing.
            let already_demoted = current
                && status.state() == Some(CurrentState::Secondary)
                && (has(ConditionType::Completed, "True", Reason::Demoted)
                    || has(ConditionType::Completed, "False", Reason::FailedToResync));
            if done {
                settled(info_due)
            } else {
                Plan::Demote {
                    force_resync: vr.spec.auto_resync(),
                    already_demoted,
                    enable: matches!(status.state(), None | Some(CurrentState::Unknown)),
                }
            }
        }
        ReplicationState::Resync => {
            let done = current
                && status.state() == Some(CurrentState::Secondary)
                && has(ConditionType::Degraded, "False", Reason::Healthy)
                && has(ConditionType::Resyncing, "False", Reason::NotResyncing);
            let operated = current && status.state() == Some(CurrentState::Secondary);
            if done {
                settled(info_due)
            } else {
                Plan::Resync { enable: !operated }
            }
        }
    }
}

/// A volume in its desired state: a secondary reports the sync it last received, as a primary
/// reports the one it last shipped.
fn settled(info_due: bool) -> Plan {
    if info_due {
        Plan::RefreshInfo
    } else {
        Plan::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::vr_yaml;

    fn with_status(state: &str, status: &str) -> VolumeReplication {
        vr_yaml(&format!(
            "spec: {{replicationState: {state}}}\nstatus:\n{status}"
        ))
    }

    #[test]
    fn fresh_vr_is_promoted_or_demoted_or_resynced() {
        let fresh = |state| vr_yaml(&format!("spec: {{replicationState: {state}}}"));
        assert_eq!(plan(&fresh("primary"), true), Plan::Promote);
        assert_eq!(
            plan(&fresh("secondary"), true),
            Plan::Demote {
                force_resync: false,
                already_demoted: false,
                enable: true
            }
        );
        assert_eq!(plan(&fresh("resync"), true), Plan::Resync { enable: true });
        let auto = vr_yaml("spec: {replicationState: secondary, autoResync: true}");
        assert_eq!(
            plan(&auto, true),
            Plan::Demote {
                force_resync: true,
                already_demoted: false,
                enable: true
            }
        );
    }

    const PROMOTED: &str = "  state: Primary\n  observedGeneration: 1\n  conditions:\n  - {type: Completed, status: \"True\", reason: Promoted, message: m, lastTransitionTime: \"2026-01-01T00:00:00Z\"}\n";

    #[test]
    fn healthy_primary_only_refreshes_info_when_due() {
        let vr = with_status("primary", PROMOTED);
        assert_eq!(plan(&vr, true), Plan::RefreshInfo);
        assert_eq!(plan(&vr, false), Plan::Nothing);
    }

    #[test]
    fn a_new_generation_or_a_failed_promotion_promotes_again() {
        let mut vr = with_status("primary", PROMOTED);
        vr.metadata.generation = Some(2);
        assert_eq!(plan(&vr, false), Plan::Promote);
        let failed = with_status(
            "primary",
            &PROMOTED.replace(
                "\"True\", reason: Promoted",
                "\"False\", reason: FailedToPromote",
            ),
        );
        assert_eq!(plan(&failed, false), Plan::Promote);
    }

    #[test]
    fn primary_status_does_not_satisfy_secondary() {
        let vr = with_status("secondary", PROMOTED);
        assert_eq!(
            plan(&vr, false),
            Plan::Demote {
                force_resync: false,
                already_demoted: false,
                enable: false
            }
        );
    }

    #[test]
    fn secondary_keeps_resyncing_until_healthy() {
        let degraded = "  state: Secondary\n  observedGeneration: 1\n  conditions:\n  - {type: Completed, status: \"True\", reason: Demoted, message: m, lastTransitionTime: \"2026-01-01T00:00:00Z\"}\n  - {type: Degraded, status: \"True\", reason: VolumeDegraded, message: m, lastTransitionTime: \"2026-01-01T00:00:00Z\"}\n";
        let vr = with_status("secondary", degraded);
        assert_eq!(
            plan(&vr, false),
            Plan::Demote {
                force_resync: false,
                already_demoted: true,
                enable: false
            },
            "demoted already: only resync again"
        );
        let healthy = with_status(
            "secondary",
            &degraded.replace(
                "\"True\", reason: VolumeDegraded",
                "\"False\", reason: Healthy",
            ),
        );
        assert_eq!(plan(&healthy, false), Plan::Nothing);
        assert_eq!(
            plan(&healthy, true),
            Plan::RefreshInfo,
            "a ready secondary reports the sync it received"
        );
    }

    #[test]
    fn resync_is_done_when_healthy_and_not_resyncing() {
        let resyncing = "  state: Secondary\n  observedGeneration: 1\n  conditions:\n  - {type: Degraded, status: \"True\", reason: VolumeDegraded, message: m, lastTransitionTime: \"2026-01-01T00:00:00Z\"}\n  - {type: Resyncing, status: \"True\", reason: ResyncTriggered, message: m, lastTransitionTime: \"2026-01-01T00:00:00Z\"}\n";
        assert_eq!(
            plan(&with_status("resync", resyncing), false),
            Plan::Resync { enable: false },
            "already operated on: no second Enable"
        );
        let ready = resyncing
            .replace(
                "\"True\", reason: VolumeDegraded",
                "\"False\", reason: Healthy",
            )
            .replace(
                "\"True\", reason: ResyncTriggered",
                "\"False\", reason: NotResyncing",
            );
        assert_eq!(plan(&with_status("resync", &ready), false), Plan::Nothing);
        assert_eq!(
            plan(&with_status("resync", &ready), true),
            Plan::RefreshInfo
        );
    }
}
