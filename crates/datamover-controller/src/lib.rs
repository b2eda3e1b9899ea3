//! `lifeline-datamover-controller`: VolumeSnapshotBackup/Restore → VolSync restic movers.

pub mod backup;
pub mod concurrency;
pub mod context;
pub mod error;
pub mod names;
pub mod problem;
pub mod reconcile;
pub mod repository;
pub mod restore;
pub mod settings;
pub mod sizes;
