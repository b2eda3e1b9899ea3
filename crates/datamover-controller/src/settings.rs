//! Controller-wide choices for the working objects: overrides of the source claim's storage
//! class and access mode, the mover's service account and user, and restic retention.

use lifeline_api::foreign::volsync::ResticRetainPolicy;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Storage class of the backup/restore claims instead of the source claim's.
    pub storage_class: Option<String>,
    /// Access mode of the backup/restore claims instead of the source claim's.
    pub access_mode: Option<String>,
    /// The mover's service account (VolSync's `moverServiceAccount`).
    pub mover_service_account: Option<String>,
    /// The mover's user id (`moverSecurityContext.runAsUser`).
    pub mover_run_as_user: Option<i64>,
    /// restic retention; `None` keeps every snapshot (never prunes the one just taken, nor an
    /// older one a restore may still ask for).
    pub retain: Option<ResticRetainPolicy>,
}
