//! `status.progress`: what the restic mover reports while it runs, and its totals at the end.
//!
//! Lifeline's addition, not upstream's: OADP's data mover shows nothing between `InProgress`
//! and `Completed`. Under upstream's CRD (no such field) the API server prunes it, and every
//! upstream field is unchanged either way.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::open::Open;
use crate::wire_enum::wire_enum;

wire_enum! {
    /// `status.progress.phase`: the step the mover is at, from the markers VolSync's restic
    /// mover prints (`=== Starting backup ===`, …). `Preparing`: the working copy and the mover
    /// are being set up and the mover has not reported yet; `Initializing`: checking (or
    /// creating) the repository; `Unlocking`: removing a stale lock; `BackingUp`: reading the
    /// volume and uploading what is new; `Forgetting`: the retention policy; `Pruning`: removing
    /// data no snapshot needs; `Restoring`: writing a snapshot's files into the volume; `Done`.
    pub enum MoverPhase {
        Preparing = "Preparing",
        Initializing = "Initializing",
        Unlocking = "Unlocking",
        BackingUp = "BackingUp",
        Forgetting = "Forgetting",
        Pruning = "Pruning",
        Restoring = "Restoring",
        Done = "Done",
    }
}

/// A count (bytes, files, seconds) as Kubernetes types integers: `int64`, never negative.
/// schemars would say `uint64`, a format kube-apiserver does not know (it warns on every apply).
fn count(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": ["integer", "null"], "format": "int64", "minimum": 0})
}

/// What the mover reported last, and when Lifeline read it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MoverProgress {
    /// The mover's step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Open<MoverPhase>>,
    /// Bytes restic has read so far (its progress line), or in all at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "count")]
    pub bytes_done: Option<u64>,
    /// Bytes restic found to read in all, once it has counted them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "count")]
    pub bytes_total: Option<u64>,
    /// Files read so far, or in all at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "count")]
    pub files_done: Option<u64>,
    /// Files to read in all, once restic has counted them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "count")]
    pub files_total: Option<u64>,
    /// At the end: what restic added to the repository (new data after deduplication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "count")]
    pub bytes_added: Option<u64>,
    /// Seconds since the request started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "count")]
    pub elapsed_seconds: Option<u64>,
    /// When this report was read from the mover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<Time>,
    /// The report in one line, for `kubectl get`'s Progress column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}
