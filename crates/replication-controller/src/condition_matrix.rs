//! The condition matrix of `shared/spec/replication-api.md` as data: for each event, what
//! `Completed`, `Degraded`, `Resyncing` and `Validated` become. A test reads the spec's table and
//! checks every row of it against this one, cell by cell; the rows the spec does not have are
//! Lifeline's (a demotion whose resync is already done, our own refusals) and say so.

use lifeline_api::condition::ConditionStatus::{self, False, True};
use lifeline_api::replication::{Reason, Text};

/// What happened, as the matrix's rows name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    PromoteOk,
    EnableOrPromoteFailed,
    PrerequisiteNotMet,
    DemoteOk,
    DemoteFailed,
    ResyncStarted,
    ResyncReady,
    ResyncFailed,
    /// Demoted, and the resync it needs is already complete.
    DemotedAndResynced,
    /// Our own refusal (bad input) while asked for primary, secondary or resync.
    RejectedAsPrimary,
    RejectedAsSecondary,
    RejectedAsResync,
}

/// A condition's message: one of the spec's texts, or the refusal's own (what to fix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    Says(Text),
    Own,
}

/// One cell: the condition's status, reason and message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    pub status: ConditionStatus,
    pub reason: Reason,
    pub message: Message,
}

/// How an event treats `Validated`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValidatedRule {
    /// Left as it is (the spec's "–").
    Keep,
    Set(Cell),
    /// Set only if present: a stale "prerequisite not met" must not outlive the promotion it
    /// blocked, and a promotion that never needed it does not add it.
    RefreshIfPresent(Cell),
}

pub struct Row {
    pub event: Event,
    /// The spec table's name for this row; `None` for Lifeline's own rows.
    pub spec: Option<&'static str>,
    pub completed: Option<Cell>,
    pub degraded: Option<Cell>,
    pub resyncing: Option<Cell>,
    pub validated: ValidatedRule,
}

const fn cell(status: ConditionStatus, reason: Reason, text: Text) -> Option<Cell> {
    Some(Cell {
        status,
        reason,
        message: Message::Says(text),
    })
}

const fn own(status: ConditionStatus, reason: Reason) -> Option<Cell> {
    Some(Cell {
        status,
        reason,
        message: Message::Own,
    })
}

const fn must(cell: Option<Cell>) -> Cell {
    match cell {
        Some(c) => c,
        None => panic!("a cell"),
    }
}

const HEALTHY: Option<Cell> = cell(False, Reason::Healthy, Text::Healthy);
const NOT_RESYNCING: Option<Cell> = cell(False, Reason::NotResyncing, Text::NotResyncing);
const ERROR: Option<Cell> = cell(True, Reason::Error, Text::Degraded);
const VOLUME_DEGRADED: Option<Cell> = cell(True, Reason::VolumeDegraded, Text::Degraded);
const DEMOTED: Option<Cell> = cell(True, Reason::Demoted, Text::Demoted);
const MET: Cell = must(cell(True, Reason::PrerequisiteMet, Text::Validated));

pub const MATRIX: &[Row] = &[
    Row {
        event: Event::PromoteOk,
        spec: Some("promote ok"),
        completed: cell(True, Reason::Promoted, Text::PromotedAndReplicating),
        degraded: HEALTHY,
        resyncing: NOT_RESYNCING,
        validated: ValidatedRule::RefreshIfPresent(MET),
    },
    Row {
        event: Event::EnableOrPromoteFailed,
        spec: Some("enable/promote failed"),
        completed: cell(False, Reason::FailedToPromote, Text::FailedToPromote),
        degraded: ERROR,
        resyncing: NOT_RESYNCING,
        validated: ValidatedRule::Set(MET),
    },
    Row {
        event: Event::PrerequisiteNotMet,
        spec: Some("enable: prerequisite not met (FAILED_PRECONDITION)"),
        completed: cell(False, Reason::FailedToPromote, Text::FailedToPromote),
        degraded: ERROR,
        resyncing: NOT_RESYNCING,
        validated: ValidatedRule::Set(must(cell(
            False,
            Reason::PrerequisiteNotMet,
            Text::FailedToMeetPrerequisite,
        ))),
    },
    Row {
        event: Event::DemoteOk,
        spec: Some("demote ok"),
        completed: DEMOTED,
        degraded: VOLUME_DEGRADED,
        resyncing: NOT_RESYNCING,
        validated: ValidatedRule::Keep,
    },
    Row {
        event: Event::DemoteFailed,
        spec: Some("demote failed"),
        completed: cell(False, Reason::FailedToDemote, Text::FailedToDemote),
        degraded: ERROR,
        resyncing: NOT_RESYNCING,
        validated: ValidatedRule::Keep,
    },
    Row {
        event: Event::ResyncStarted,
        spec: Some("resync started"),
        completed: DEMOTED,
        degraded: VOLUME_DEGRADED,
        resyncing: cell(True, Reason::ResyncTriggered, Text::Resyncing),
        validated: ValidatedRule::Keep,
    },
    Row {
        event: Event::ResyncReady,
        spec: Some("resync ready"),
        completed: None,
        degraded: HEALTHY,
        resyncing: NOT_RESYNCING,
        validated: ValidatedRule::Keep,
    },
    Row {
        event: Event::ResyncFailed,
        spec: Some("resync failed"),
        completed: cell(False, Reason::FailedToResync, Text::FailedToResync),
        degraded: ERROR,
        resyncing: cell(False, Reason::FailedToResync, Text::FailedToResync),
        validated: ValidatedRule::Keep,
    },
    Row {
        event: Event::DemotedAndResynced,
        spec: None,
        completed: DEMOTED,
        degraded: HEALTHY,
        resyncing: NOT_RESYNCING,
        validated: ValidatedRule::Keep,
    },
    Row {
        event: Event::RejectedAsPrimary,
        spec: None,
        completed: own(False, Reason::FailedToPromote),
        degraded: own(True, Reason::Error),
        resyncing: NOT_RESYNCING,
        validated: ValidatedRule::Set(must(own(False, Reason::PrerequisiteNotMet))),
    },
    Row {
        event: Event::RejectedAsSecondary,
        spec: None,
        completed: own(False, Reason::FailedToDemote),
        degraded: own(True, Reason::Error),
        resyncing: NOT_RESYNCING,
        validated: ValidatedRule::Set(must(own(False, Reason::PrerequisiteNotMet))),
    },
    Row {
        event: Event::RejectedAsResync,
        spec: None,
        completed: own(False, Reason::FailedToResync),
        degraded: own(True, Reason::Error),
        resyncing: cell(False, Reason::FailedToResync, Text::NotResyncing),
        validated: ValidatedRule::Set(must(own(False, Reason::PrerequisiteNotMet))),
    },
];

/// The row of `event`.
pub fn row(event: Event) -> &'static Row {
    MATRIX
        .iter()
        .find(|r| r.event == event)
        .expect("every event has a row")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's table: (event, [Completed, Degraded, Resyncing, Validated]) as written.
    fn spec_rows() -> Vec<(String, Vec<String>)> {
        let spec = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/spec/replication-api.md"
        ))
        .expect("the spec beside the repository");
        let table = spec
            .split("| event | Completed | Degraded | Resyncing | Validated |")
            .nth(1)
            .expect("the condition table");
        table
            .lines()
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| {
                let cells: Vec<String> = l
                    .trim_matches('|')
                    .split('|')
                    .map(|c| c.trim().to_owned())
                    .collect();
                (cells[0].clone(), cells[1..].to_vec())
            })
            .collect()
    }

    /// A cell as the spec writes it: "True `Promoted`", or "–".
    fn written(cell: Option<Cell>) -> String {
        match cell {
            None => "–".into(),
            Some(c) => format!("{} `{}`", c.status.as_str(), c.reason.as_str()),
        }
    }

    #[test]
    fn every_row_of_the_specs_matrix_is_ours_cell_for_cell() {
        let rows = spec_rows();
        assert_eq!(rows.len(), 8, "the spec's table has eight rows");
        for (event, cells) in rows {
            let ours = MATRIX
                .iter()
                .find(|r| r.spec == Some(event.as_str()))
                .unwrap_or_else(|| panic!("no row for the spec's {event:?}"));
            let validated = match ours.validated {
                ValidatedRule::Keep | ValidatedRule::RefreshIfPresent(_) => None,
                ValidatedRule::Set(c) => Some(c),
            };
            let mine = [ours.completed, ours.degraded, ours.resyncing, validated].map(written);
            assert_eq!(mine.to_vec(), cells, "row {event:?}");
        }
    }

    #[test]
    fn every_event_has_exactly_one_row_and_our_own_rows_say_so() {
        for (i, a) in MATRIX.iter().enumerate() {
            assert!(
                MATRIX[i + 1..].iter().all(|b| b.event != a.event),
                "{:?} twice",
                a.event
            );
        }
        let own: Vec<Event> = MATRIX
            .iter()
            .filter(|r| r.spec.is_none())
            .map(|r| r.event)
            .collect();
        assert_eq!(
            own,
            [
                Event::DemotedAndResynced,
                Event::RejectedAsPrimary,
                Event::RejectedAsSecondary,
                Event::RejectedAsResync
            ]
        );
    }
}
