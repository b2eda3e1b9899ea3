//! Setting `metav1.Condition`s the way Kubernetes API conventions ask for.
//!
//! `lastTransitionTime` records when `status` last *changed*: re-asserting the same status with
//! a new reason or message must keep the old time, or every reconcile would look like a
//! transition to tools that alert on flapping conditions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The three values `metav1.Condition.status` may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

impl From<bool> for ConditionStatus {
    fn from(value: bool) -> Self {
        if value {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    }
}

impl std::fmt::Display for ConditionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A condition to set, before it is stamped with a generation and a transition time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCondition {
    pub type_: String,
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
}

impl NewCondition {
    pub fn new(
        type_: impl Into<String>,
        status: ConditionStatus,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_: type_.into(),
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Sets `new` in `conditions`, replacing any condition of the same type.
///
/// `lastTransitionTime` is kept when the status is unchanged and set to `now` otherwise;
/// `observedGeneration` is always stamped with `generation`. Returns whether anything changed,
/// so callers can skip a status write when nothing did.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    new: NewCondition,
    generation: Option<i64>,
    now: Timestamp,
) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(existing) => {
            let status_changed = existing.status != new.status.as_str();
            let before = existing.clone();
            if status_changed {
                existing.last_transition_time = Time(now);
            }
            existing.status = new.status.as_str().to_owned();
            existing.reason = new.reason;
            existing.message = new.message;
            existing.observed_generation = generation;
            *existing != before
        }
        None => {
            conditions.push(Condition {
                type_: new.type_,
                status: new.status.as_str().to_owned(),
                reason: new.reason,
                message: new.message,
                observed_generation: generation,
                last_transition_time: Time(now),
            });
            true
        }
    }
}

/// Removes the condition of type `type_`; returns whether one was there.
pub fn remove_condition(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_);
    conditions.len() != before
}

/// The condition of type `type_`, if set.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn cond(status: ConditionStatus, reason: &str) -> NewCondition {
        NewCondition::new("Completed", status, reason, "volume is promoted")
    }

    #[test]
    fn new_condition_is_added_with_time_and_generation() {
        let mut conditions = Vec::new();
        assert!(set_condition(
            &mut conditions,
            cond(ConditionStatus::True, "Promoted"),
            Some(3),
            ts("2026-01-01T00:00:00Z")
        ));
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].status, "True");
        assert_eq!(conditions[0].observed_generation, Some(3));
        assert_eq!(
            conditions[0].last_transition_time,
            Time(ts("2026-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn same_status_keeps_transition_time_but_updates_reason_and_generation() {
        let mut conditions = Vec::new();
        set_condition(
            &mut conditions,
            cond(ConditionStatus::False, "FailedToPromote"),
            Some(1),
            ts("2026-01-01T00:00:00Z"),
        );
        let changed = set_condition(
            &mut conditions,
            NewCondition::new("Completed", ConditionStatus::False, "Other", "other text"),
            Some(2),
            ts("2026-01-02T00:00:00Z"),
        );
        assert!(changed);
        assert_eq!(
            conditions[0].last_transition_time,
            Time(ts("2026-01-01T00:00:00Z"))
        );
        assert_eq!(conditions[0].reason, "Other");
        assert_eq!(conditions[0].message, "other text");
        assert_eq!(conditions[0].observed_generation, Some(2));
    }

    #[test]
    fn status_change_moves_transition_time() {
        let mut conditions = Vec::new();
        set_condition(
            &mut conditions,
            cond(ConditionStatus::False, "FailedToPromote"),
            Some(1),
            ts("2026-01-01T00:00:00Z"),
        );
        set_condition(
            &mut conditions,
            cond(ConditionStatus::True, "Promoted"),
            Some(1),
            ts("2026-01-02T00:00:00Z"),
        );
        assert_eq!(conditions.len(), 1);
        assert_eq!(
            conditions[0].last_transition_time,
            Time(ts("2026-01-02T00:00:00Z"))
        );
    }

    #[test]
    fn identical_condition_reports_no_change() {
        let mut conditions = Vec::new();
        let t = ts("2026-01-01T00:00:00Z");
        set_condition(
            &mut conditions,
            cond(ConditionStatus::True, "Promoted"),
            Some(1),
            t,
        );
        let later = ts("2026-01-05T00:00:00Z");
        assert!(!set_condition(
            &mut conditions,
            cond(ConditionStatus::True, "Promoted"),
            Some(1),
            later
        ));
        assert_eq!(conditions[0].last_transition_time, Time(t));
    }

    #[test]
    fn remove_and_find() {
        let mut conditions = Vec::new();
        let t = ts("2026-01-01T00:00:00Z");
        set_condition(
            &mut conditions,
            cond(ConditionStatus::True, "Promoted"),
            None,
            t,
        );
        assert!(find_condition(&conditions, "Completed").is_some());
        assert!(remove_condition(&mut conditions, "Completed"));
        assert!(!remove_condition(&mut conditions, "Completed"));
        assert!(find_condition(&conditions, "Completed").is_none());
    }
}
