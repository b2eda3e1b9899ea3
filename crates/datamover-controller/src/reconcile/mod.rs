//! Reconciles: fetch → decide (pure) → apply. One module per request kind.

pub mod backup;
mod progress;
pub mod restore;
mod shared;

pub use shared::error_policy;
