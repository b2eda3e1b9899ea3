//! The replication benchmark's parts (`cargo xtask bench replication`, the binary
//! `lifeline-bench`): what it measures of a phase and reports, and the ceiling run.

pub mod ceiling;
pub mod measure;
pub mod profile;
