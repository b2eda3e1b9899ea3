//! Condition types, reasons and message texts of VolumeReplication, exactly as the Go
//! operators write them, so Ramen, dashboards and runbooks keep reading them.

use crate::wire_enum::wire_enum;

wire_enum! {
    /// `status.conditions[].type` of a VolumeReplication. `SyncReceived` is Lifeline's
    /// extension, on secondaries only: whether the sync facts in the status (`lastSyncTime`,
    /// `lastSyncDuration`, `lastSyncBytes`) are those of the last sync this site received, i.e.
    /// how old the data a failover here would serve is.
    pub enum ConditionType {
        Completed = "Completed",
        Degraded = "Degraded",
        Resyncing = "Resyncing",
        Validated = "Validated",
        Replicating = "Replicating",
        DestinationInfoAvailable = "DestinationInfoAvailable",
        SyncReceived = "SyncReceived",
    }
}

wire_enum! {
    /// `status.conditions[].reason` of a VolumeReplication.
    pub enum Reason {
        Promoted = "Promoted",
        Demoted = "Demoted",
        FailedToPromote = "FailedToPromote",
        FailedToDemote = "FailedToDemote",
        Error = "Error",
        VolumeDegraded = "VolumeDegraded",
        Healthy = "Healthy",
        ResyncTriggered = "ResyncTriggered",
        FailedToResync = "FailedToResync",
        NotResyncing = "NotResyncing",
        PrerequisiteMet = "PrerequisiteMet",
        PrerequisiteNotMet = "PrerequisiteNotMet",
        Replicating = "Replicating",
        NotReplicating = "NotReplicating",
        DestinationInfoUpdated = "DestinationInfoUpdated",
        DestinationInfoPending = "DestinationInfoPending",
        FailedToGetDestinationInfo = "FailedToGetDestinationInfo",
        SyncReceived = "SyncReceived",
        NoSyncReceived = "NoSyncReceived",
        SyncInfoNotOffered = "SyncInfoNotOffered",
    }
}

wire_enum! {
    /// What a VolumeReplication replicates; condition and status messages start with it.
    pub enum Subject {
        Volume = "volume",
        VolumeGroup = "volume group",
    }
}

wire_enum! {
    /// The text after the subject in a condition message ("volume is healthy").
    pub enum Text {
        PromotedAndReplicating = "is promoted to primary and replicating to secondary",
        Healthy = "is healthy",
        NotResyncing = "is not resyncing",
        Validated = "is validated and met all prerequisites",
        FailedToPromote = "failed to promote",
        FailedToDemote = "failed to demote",
        FailedToMeetPrerequisite = "failed to meet prerequisite",
        Demoted = "is demoted to secondary",
        Degraded = "is degraded",
        Resyncing = "is resyncing changes from primary to secondary",
        FailedToResync = "failed to resync",
        Replicating = "is replicating",
        NotReplicating = "is not replicating",
        ReplicationStatusUnknown = "replication status is unknown",
        DestinationInfoAvailable = "destination info is available",
        DestinationInfoPending = "destination info is pending update",
        FailedToGetDestinationInfo = "failed to get destination info",
        SyncReceived = "received the sync the status reports: lastSyncTime is when the primary captured the data this site now holds",
        NoSyncReceived = "has not received a sync from the primary yet",
        SyncInfoNotOffered = "has no received-sync facts from its driver (FAILED_PRECONDITION on a secondary); the age of the data here is unknown",
    }
}

wire_enum! {
    /// The text after the subject in `status.message` ("volume is marked primary").
    pub enum StatusMessage {
        MarkedPrimary = "is marked primary",
        MarkedSecondary = "is marked secondary",
        MarkedForResync = "is marked for resyncing",
        Degraded = "is degraded",
    }
}

impl Subject {
    /// A condition message: "<subject> <text>".
    pub fn says(self, text: Text) -> String {
        format!("{} {}", self.as_str(), text.as_str())
    }

    /// A `status.message`: "<subject> <text>".
    pub fn status(self, message: StatusMessage) -> String {
        format!("{} {}", self.as_str(), message.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_like_upstream() {
        assert_eq!(
            Subject::Volume.says(Text::PromotedAndReplicating),
            "volume is promoted to primary and replicating to secondary"
        );
        assert_eq!(
            Subject::VolumeGroup.says(Text::ReplicationStatusUnknown),
            "volume group replication status is unknown"
        );
        assert_eq!(
            Subject::Volume.status(StatusMessage::MarkedForResync),
            "volume is marked for resyncing"
        );
    }

    #[test]
    fn every_type_and_reason_round_trips_through_its_wire_string() {
        for t in ConditionType::ALL {
            assert_eq!(t.as_str().parse::<ConditionType>().unwrap(), *t);
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        for r in Reason::ALL {
            assert_eq!(r.as_str().parse::<Reason>().unwrap(), *r);
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        let err = "promoted".parse::<Reason>().unwrap_err();
        assert!(err.to_string().contains("Promoted"), "{err}");
    }
}
