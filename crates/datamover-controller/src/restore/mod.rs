//! The restore pipeline: a backup's repository into a new VolumeSnapshot through a VolSync
//! ReplicationDestination, published as a snapshot handle for the backup tool to bind.

pub mod build;
pub mod decide;
