//! `kubectl lifeline`: the DR runbook as checked commands across two clusters (sites). Library
//! so the demo and tests can call the same code the binary runs.
//!
//! - [`sites`]: named kubeconfigs and clients;
//! - [`status`]: what every site says of every replicated claim, and [`verdict`] on each.

pub mod args;
pub mod error;
pub mod protect;
pub mod rbac;
pub mod sites;
pub mod status;
pub mod verdict;

pub use error::Error;
