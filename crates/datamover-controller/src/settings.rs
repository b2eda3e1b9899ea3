//! Controller-wide choices for the working objects: overrides of the source claim's storage
//! class and access mode, the mover's service account and user, and restic retention.

use lifeline_api::foreign::volsync::ResticRetainPolicy;

use crate::problem::Problem;

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
    /// The only protected namespace this controller works in (its RBAC covers that one);
    /// `None` serves whichever namespace a request names.
    pub protected_namespace: Option<String>,
    /// How often a running mover's log is read for `status.progress`; zero: never.
    pub progress_interval: std::time::Duration,
    /// The name Velero's requests give this mover (`spec.datamover`).
    pub datamover_name: String,
}

impl Settings {
    /// Whether a request's `spec.protectedNamespace` is one this controller may work in.
    pub fn serves(&self, requested: &str) -> Result<(), Problem> {
        if requested.trim().is_empty() {
            return Err(Problem::FieldMissing {
                field: "spec.protectedNamespace",
                fix: "set it to the namespace where the data mover works (its restic Secret is there)",
            });
        }
        match &self.protected_namespace {
            Some(served) if served != requested => Err(Problem::ProtectedNamespaceNotServed {
                requested: requested.to_owned(),
                served: served.clone(),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restricted_controller_serves_only_its_protected_namespace() {
        assert_eq!(Settings::default().serves("anything"), Ok(()));
        let empty = Settings::default().serves(" ").unwrap_err();
        assert_eq!(empty.reason(), "FieldMissing");
        assert!(
            empty
                .to_string()
                .starts_with("spec.protectedNamespace is not set"),
            "{empty}"
        );
        let settings = Settings {
            protected_namespace: Some("lifeline-system".into()),
            ..Settings::default()
        };
        assert_eq!(settings.serves("lifeline-system"), Ok(()));
        let problem = settings.serves("openshift-adp").unwrap_err();
        assert_eq!(problem.reason(), "ProtectedNamespaceNotServed");
        assert!(
            problem.to_string().contains("\"openshift-adp\"")
                && problem.to_string().contains("\"lifeline-system\""),
            "{problem}"
        );
    }
}
