//! Regional DR for storage that cannot replicate: VolSync rsync-TLS pairs (a ReplicationSource
//! at the primary pushing to a ReplicationDestination at the secondary, one per claim, sharing
//! a pre-shared key), under the same runbook as VolumeReplication.
//!
//! Which site is primary lives on the claim itself, at each site ([`ROLE`]), as a
//! VolumeReplication's `spec.replicationState` does; the VolSync objects are what the role has
//! brought about so far (its "status"). Every step of a switch changes one of them, so every
//! state an interrupted command leaves is one a rerun recognises, and none has two primaries.
//!
//! - [`observe`]: what a site's claim, source and destination say, as an [`Observed`];
//! - [`build`]: the objects of a pair (pure, tested on fixtures);
//! - [`protect`]: `protect --method volsync`; [`switch`]: the steps of migrate, failover and
//!   failback for these pairs.
//!
//! [`Observed`]: crate::verdict::Observed

pub mod build;
pub mod observe;
pub mod protect;
pub mod read;
pub mod settings;
pub mod switch;

pub use lifeline_api::volsync_pair::{INTERVAL, ROLE, ROLE_SINCE, SERVICE_TYPE};

/// The pre-shared key Secret of every pair in the namespace, the same at both sites.
pub const PSK_SECRET: &str = "lifeline-volsync-psk";
/// Its key, as VolSync's movers read it (`/keys/psk.txt`, `IDENTITY:HEXKEY`).
pub const PSK_KEY: &str = "psk.txt";
/// Marks the objects `kubectl lifeline` made.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "kubectl-lifeline");
/// VolSync's own claims (a source's point-in-time copy), never protected themselves.
pub const VOLSYNC_CREATED: (&str, &str) = ("app.kubernetes.io/created-by", "volsync");

/// A claim's role at a site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Primary,
    Secondary,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Secondary => "secondary",
        }
    }
}

#[cfg(test)]
mod tests;
