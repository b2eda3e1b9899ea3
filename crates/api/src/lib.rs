//! Lifeline's Kubernetes API types.
//!
//! Wire-compatible with the Go operators Lifeline replaces, so YAML written for them applies
//! unchanged and tools that read status see the same shape:
//!
//! - [`replication`]: `VolumeReplication` / `VolumeReplicationClass`
//!   (`replication.storage.openshift.io/v1alpha1`), as served by the csi-addons operators.
//! - [`datamover`]: `VolumeSnapshotBackup` / `VolumeSnapshotRestore`
//!   (`datamover.oadp.openshift.io/v1alpha1`), as served by OADP's data mover.
//! - [`foreign`]: typed views of kinds other projects own that Lifeline reads or creates
//!   (VolSync, CSI snapshots). Their CRDs are installed by their owners, not by Lifeline.
//!
//! - [`volsync_pair`]: the annotations `kubectl lifeline` records a VolSync DR pair with.
//!
//! [`condition`] holds the one helper every controller uses to set `metav1.Condition`s;
//! [`scope`] the one that reads a kind in a flag's namespace or in all of them.

pub mod condition;
mod wire_enum;
pub use wire_enum::{UnknownValue, Wire};
pub mod crds;
pub mod datamover;
pub mod foreign;
mod go_duration;
pub mod open;
pub mod replication;
pub mod scope;
pub mod volsync_pair;

/// Re-exported so that dependants name exactly the Kubernetes API version we were built against.
pub use k8s_openapi;

pub use go_duration::{go_duration, parse_go_duration};
