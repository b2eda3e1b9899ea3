//! VolumeGroupReplication: the claims a label selector picks, replicated as one
//! crash-consistent unit. The same pipeline as a VolumeReplication's: fetch → validate
//! ([`select`], pure) → plan ([`plan`], pure) → call the driver's volume group service → apply
//! (the member claims' protection, the VolumeGroupReplicationContent, the group's
//! VolumeReplication) → status (mirrored from that VolumeReplication, [`plan::status`]).
//! The VolumeReplication then replicates the group like any other (`crate::reconcile`).
//! Deletion ([`reconcile`]): the VolumeReplication (replication disabled), the driver's group,
//! the content, the claims' protection, then the group's own finalizer.

pub mod controller;
pub mod ownership;
pub mod plan;
pub mod reconcile;
pub mod select;

/// A VolumeGroupReplication's inputs are wrong; each message says what to fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GroupInvalid {
    #[error(
        "VolumeGroupReplicationClass {0:?} not found; create it (the class is immutable: to use another, recreate this VolumeGroupReplication)"
    )]
    ClassMissing(String),
    #[error("VolumeGroupReplicationClass {class:?}: {problem}")]
    Parameters { class: String, problem: String },
    #[error(
        "spec.volumeReplicationClassName is not set: the group's VolumeReplication needs a VolumeReplicationClass (recreate this VolumeGroupReplication with one)"
    )]
    NoReplicationClass,
    #[error("spec.source.selector: {0}")]
    Selector(String),
    #[error(
        "spec.source.selector selects no PersistentVolumeClaim in this namespace; label the claims of the group"
    )]
    NoMembers,
    #[error("PersistentVolumeClaim {claim}: {problem}")]
    Member { claim: String, problem: String },
    #[error(
        "the Secret {namespace}/{name} that VolumeGroupReplicationClass {class:?} names does not exist or is not text"
    )]
    Secret {
        class: String,
        namespace: String,
        name: String,
    },
    #[error("driver {0:?} does not advertise the VOLUME_GROUP capability; it cannot group volumes")]
    NoGroupCapability(String),
    #[error(
        "driver {0:?} does not advertise MODIFY_VOLUME_GROUP; the group's claims cannot change: restore the selection it was made with"
    )]
    NoModifyCapability(String),
    #[error(
        "{field} names {what}, which is not this group's ({group}); the controller acts only on objects that point back at their group: clear the field or name one of this group's"
    )]
    NotOurs {
        what: String,
        field: &'static str,
        group: String,
    },
}

impl GroupInvalid {
    /// A stable label for metrics and Events.
    pub fn category(&self) -> &'static str {
        match self {
            GroupInvalid::ClassMissing(_) => "group_class_missing",
            GroupInvalid::Parameters { .. } => "invalid_parameters",
            GroupInvalid::NoReplicationClass => "no_replication_class",
            GroupInvalid::Selector(_) => "invalid_selector",
            GroupInvalid::NoMembers => "no_members",
            GroupInvalid::Member { .. } => "invalid_member",
            GroupInvalid::Secret { .. } => "secret_invalid",
            GroupInvalid::NoGroupCapability(_) | GroupInvalid::NoModifyCapability(_) => {
                "driver_not_capable"
            }
            GroupInvalid::NotOurs { .. } => "not_ours",
        }
    }
}
