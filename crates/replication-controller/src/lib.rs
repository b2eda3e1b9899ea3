//! `lifeline-replication-controller`: drives csi-addons replication drivers through
//! VolumeReplication objects, with the status the Go operators write.
//!
//! Where things live: [`args`] (flags), [`controller`] (watches and wiring), [`caches`] (what
//! the reconcile reads, from those watches), [`reconcile`]
//! (the pipeline), [`validate`] / [`plan`] / [`status`] / [`events`] (pure decisions),
//! [`act`] (driver calls), [`protection`] (finalizers and the PVC claim), [`drivers`]
//! (connections), [`error`] / [`requeue`] (failures and retries), [`metrics`] (with
//! [`volsync_pairs`]: the same RPO gauges for VolSync rsync-TLS pairs).

pub mod act;
pub mod args;
pub mod caches;
pub mod condition_matrix;
pub mod context;
pub mod controller;
pub mod deletion;
pub mod drivers;
pub mod error;
pub mod events;
pub mod group;
pub mod metrics;
pub mod outcome;
pub mod plan;
pub mod protection;
pub mod rbac;
pub mod reconcile;
pub mod requeue;
pub mod secret_cache;
pub mod status;
pub mod validate;
pub mod volsync_pairs;

#[cfg(test)]
mod test_fixtures;

pub use args::ControllerArgs;
pub use context::{Context, Settings};
pub use drivers::Drivers;
pub use error::Error;
pub use metrics::Metrics;

/// The one field manager (and Event reporter) of this controller's writes.
pub const FIELD_MANAGER: &str = "lifeline-replication-controller";
