//! `lifeline-datamover-controller`: VolumeSnapshotBackup/Restore → VolSync restic movers.

pub mod args;
pub mod backup;
pub mod concurrency;
pub mod context;
pub mod controller;
pub mod error;
pub mod metrics;
pub mod mover_failure;
pub mod names;
pub mod orphan_content;
pub mod problem;
pub mod progress;
pub mod rbac;
pub mod reconcile;
pub mod repository;
pub mod repository_scope;
pub mod restore;
pub mod secret_data;
pub mod settings;
pub mod sizes;
pub mod storage_config;
pub mod stuck_snapshot;
pub mod velero;
pub mod velero_controllers;
