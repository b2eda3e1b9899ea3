//! Typed answers of GetVolumeReplicationInfo and GetReplicationDestinationInfo.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::proto::replication::{
    self as pb, get_volume_replication_info_response::Status,
    replication_destination::Type as DestinationType,
};

/// The driver's view of replication health (`GetVolumeReplicationInfoResponse.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReplicationHealth {
    Unknown,
    Healthy,
    Degraded,
    Error,
}

/// When the driver last synced a primary to its peer, and how that went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationInfo {
    pub last_sync_time: Option<SystemTime>,
    pub last_sync_duration: Option<Duration>,
    /// `None` when the driver reports nothing (zero).
    pub last_sync_bytes: Option<u64>,
    pub health: ReplicationHealth,
    /// The driver's explanation, empty when it gives none.
    pub status_message: String,
}

impl From<pb::GetVolumeReplicationInfoResponse> for ReplicationInfo {
    fn from(r: pb::GetVolumeReplicationInfoResponse) -> Self {
        let health = match r.status() {
            Status::Unknown => ReplicationHealth::Unknown,
            Status::Healthy => ReplicationHealth::Healthy,
            Status::Degraded => ReplicationHealth::Degraded,
            Status::Error => ReplicationHealth::Error,
        };
        Self {
            last_sync_time: r.last_sync_time.and_then(timestamp),
            last_sync_duration: r.last_sync_duration.and_then(|d| d.try_into().ok()),
            // The contract says never negative; a negative value is treated as unreported.
            last_sync_bytes: u64::try_from(r.last_sync_bytes).ok().filter(|b| *b > 0),
            health,
            status_message: r.status_message,
        }
    }
}

fn timestamp(t: prost_types::Timestamp) -> Option<SystemTime> {
    let secs = u64::try_from(t.seconds).ok()?;
    let nanos = u32::try_from(t.nanos).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// Where the peer holds the replicated data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    Volume(String),
    VolumeGroup {
        id: String,
        /// Source volume id → destination volume id.
        volume_ids: BTreeMap<String, String>,
    },
    /// The driver answered without a destination.
    Unknown,
}

impl From<pb::GetReplicationDestinationInfoResponse> for Destination {
    fn from(r: pb::GetReplicationDestinationInfoResponse) -> Self {
        match r.replication_destination.and_then(|d| d.r#type) {
            Some(DestinationType::Volume(v)) => Destination::Volume(v.volume_id),
            Some(DestinationType::Volumegroup(g)) => Destination::VolumeGroup {
                id: g.volume_group_id,
                volume_ids: g.volume_ids,
            },
            None => Destination::Unknown,
        }
    }
}
