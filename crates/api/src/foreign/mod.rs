//! Typed views of kinds that other projects own and Lifeline reads or creates.
//!
//! Their CRDs are installed by their owners (VolSync, the CSI external-snapshotter), never by
//! Lifeline's chart nor generated from these views; test clusters get the upstream CRD files.
//! Only the fields Lifeline reads or writes are modelled, and unknown fields are ignored when
//! reading.

pub mod snapshot;
pub mod velero;
pub mod volsync;
