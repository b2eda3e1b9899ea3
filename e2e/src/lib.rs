//! `lifeline-e2e`: the end-to-end harness. Test infrastructure only — never shipped, and no
//! product crate depends on it.
//!
//! [`cluster::TestCluster`] is the entry point: an API backend chosen by the environment
//! (a real control plane started for the test, or an existing cluster). [`process`] runs the real
//! binaries; [`wait`] waits for conditions.

pub mod actors;
pub mod audit;
pub mod bench;
pub mod cli;
pub mod cluster;
pub mod control_plane;
pub mod fixtures;
pub mod kubeconfig;
pub mod metrics;
pub mod peers;
pub mod process;
pub mod rbac;
pub mod s3;
pub mod service_accounts;
pub mod sites;
pub mod storage_controllers;
pub mod upstream;
pub mod velero;
pub mod verdict;
pub mod wait;

pub use cluster::{Backend, TestCluster};
