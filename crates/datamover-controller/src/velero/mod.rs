//! Velero's pluggable data mover: DataUpload and DataDownload requests whose
//! `spec.datamover` is this controller's name (contract: `shared/spec/velero-datamover.md`).

pub mod download;
pub mod location;
pub mod request;
pub mod upload;
