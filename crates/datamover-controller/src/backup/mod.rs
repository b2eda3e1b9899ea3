//! The backup pipeline: a VolumeSnapshotBackup's data into the source volume's restic
//! repository through a VolSync ReplicationSource.

pub mod build;
pub mod decide;
