//! `lifeline-datamover-controller`: VolumeSnapshotBackup/Restore → VolSync restic movers.

pub mod backup;
pub mod names;
pub mod problem;
pub mod repository;
pub mod settings;
pub mod sizes;
