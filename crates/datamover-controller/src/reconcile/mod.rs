//! Reconciles: fetch → decide (pure) → apply. One module per request kind.

pub mod backup;
pub mod download;
pub(crate) mod progress;
pub mod restore;
pub(crate) mod shared;
pub mod upload;
pub mod velero_request;

pub use shared::error_policy;
