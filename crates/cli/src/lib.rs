//! `kubectl lifeline`: the DR runbook as checked commands across two clusters (sites). Library
//! so the demo and tests can call the same code the binary runs.
//!
//! - [`sites`]: named kubeconfigs and clients; [`reach`]: a site gone, or a local error;
//! - [`status`]: what every site says of every replicated claim, and [`verdict`] on each;
//! - [`protect`]: the standby's objects, made from the primary's;
//! - [`volsync`]: the same runbook for storage that cannot replicate (VolSync rsync-TLS pairs);
//! - [`migrate`], [`failover`], [`failback`]: the runbook's switches, deciding each step in
//!   [`runbook`] (pure) and carrying it out with [`volumes`] and [`workloads`].

pub mod args;
pub mod error;
pub mod failback;
pub mod failover;
pub mod migrate;
pub mod progress;
pub mod protect;
pub mod rbac;
pub mod reach;
pub mod runbook;
pub mod sites;
pub mod status;
pub mod verdict;
pub mod volsync;
pub mod volumes;
pub mod workloads;

pub use error::Error;
