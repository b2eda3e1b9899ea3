//! The restore state machine. Pure; the reconcile fetches, calls [`decide`], applies.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use lifeline_api::datamover::{BatchingStatus, RestorePhase, VolumeSnapshotRestore};
use lifeline_api::foreign::snapshot::{VolumeSnapshot, VolumeSnapshotContent};
use lifeline_api::foreign::volsync::ReplicationDestination;
use lifeline_api::open::Open;

use crate::problem::{Problem, restic_secret_named};
use crate::repository::{self, Form, ResticSecret};
use crate::restore::build::RESTORE_AS_OF;

#[derive(Clone, Debug, Default)]
pub struct Working {
    pub secret: bool,
    pub destination: Option<ReplicationDestination>,
    /// The restored snapshot (`latestImage`) and its bound content, once there.
    pub restored: Option<VolumeSnapshot>,
    pub restored_content: Option<VolumeSnapshotContent>,
}

impl Working {
    pub fn any(&self) -> bool {
        self.secret || self.destination.is_some() || self.restored.is_some()
    }
}

#[derive(Clone, Debug)]
pub struct Observed {
    pub vsr: VolumeSnapshotRestore,
    pub protected_namespace_exists: bool,
    pub volsync_installed: bool,
    pub snapshot_class_exists: Option<bool>,
    pub user_secret: Option<crate::secret_data::SecretData>,
    /// OADP's ConfigMap for the backed-up claim's storage class: (name, data), if it exists.
    pub storage_config: Option<(String, BTreeMap<String, String>)>,
    pub working: Working,
    pub admitted: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    Secret,
    ReplicationDestination,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Settled,
    Reject(Problem),
    Queue,
    Start,
    Create(Vec<Object>),
    Wait(&'static str),
    /// The mover is restoring: report its progress.
    Running,
    /// Restored: publish the snapshot handle and content name.
    Done {
        snapshot_handle: String,
        content: String,
    },
    Fail(String),
    CleanUp,
    Complete,
    Release,
}

pub fn decide(observed: &Observed) -> Decision {
    let vsr = &observed.vsr;
    let status = vsr.status.clone().unwrap_or_default();
    let working = &observed.working;
    if vsr.metadata.deletion_timestamp.is_some() {
        return if working.any() {
            Decision::CleanUp
        } else {
            Decision::Release
        };
    }
    if matches!(status.phase, Some(Open::Unknown(_))) {
        // A phase Lifeline never writes: another controller owns this request.
        return Decision::Settled;
    }
    match status.phase() {
        Some(RestorePhase::Completed) | Some(RestorePhase::PartiallyFailed) => {
            return Decision::Settled;
        }
        Some(RestorePhase::Failed) => {
            return if working.any() {
                Decision::CleanUp
            } else {
                Decision::Settled
            };
        }
        Some(RestorePhase::SnapshotRestoreDone) | Some(RestorePhase::Cleanup) => {
            return if working.any() {
                Decision::CleanUp
            } else {
                Decision::Complete
            };
        }
        Some(RestorePhase::InProgress) | None => {}
    }
    if let Err(problem) = check_inputs(observed) {
        return Decision::Reject(problem);
    }
    if status.batching() != Some(BatchingStatus::Processing) {
        return if observed.admitted {
            Decision::Start
        } else {
            Decision::Queue
        };
    }
    let missing: Vec<Object> = [
        (working.secret, Object::Secret),
        (
            working.destination.is_some(),
            Object::ReplicationDestination,
        ),
    ]
    .into_iter()
    .filter(|(exists, _)| !exists)
    .map(|(_, o)| o)
    .collect();
    if !missing.is_empty() {
        return Decision::Create(missing);
    }
    let destination = working.destination.as_ref().expect("present");
    let sync = destination
        .status
        .as_ref()
        .map(|s| s.sync.clone())
        .unwrap_or_default();
    if sync.last_manual_sync.as_deref() == Some(vsr.name_any().as_str()) {
        if let Some(message) = nothing_restored(&sync) {
            return Decision::Fail(message);
        }
        let handle = working
            .restored_content
            .as_ref()
            .and_then(|c| c.status.as_ref())
            .and_then(|s| s.snapshot_handle.clone());
        return match (handle, &working.restored_content) {
            (Some(snapshot_handle), Some(content)) => Decision::Done {
                snapshot_handle,
                content: content.name_any(),
            },
            _ => Decision::Wait("the restored snapshot is not bound yet"),
        };
    }
    match crate::mover_failure::final_failure(&sync) {
        // Scrubbed here: decisions are logged, and the mover's text may quote the Secret.
        Some(message) => Decision::Fail(crate::secret_data::scrubbed(
            message,
            observed.user_secret.as_ref(),
        )),
        None => Decision::Running,
    }
}

/// VolSync's restic mover ends a restore that found no backup to restore with success and an
/// empty volume ("No eligible snapshots found", "No data will be restored", lines its log
/// filter keeps in `latestMoverStatus`): for a restore that is a failure, never a success.
pub fn nothing_restored(sync: &lifeline_api::foreign::volsync::SyncStatus) -> Option<String> {
    let logs = sync.latest_mover_status.as_ref()?.logs.as_deref()?;
    logs.contains("No eligible snapshots found").then(|| {
        "the repository has no backup to restore at that point in time (VolSync's mover: \"No eligible snapshots found\"; nothing was restored)".to_owned()
    })
}

/// Fields the schema does not require (as upstream's) but a restore cannot do without, checked
/// before anything is fetched; and Lifeline's `restore-as-of` annotation, which must parse.
pub fn required_fields(vsr: &VolumeSnapshotRestore) -> Result<(), Problem> {
    restic_secret_named(vsr.spec.restic_secret_ref.as_ref())?;
    restore_as_of(vsr)?;
    Ok(())
}

/// The point in time to restore (annotation [`RESTORE_AS_OF`]); `None` for the latest backup.
pub fn restore_as_of(vsr: &VolumeSnapshotRestore) -> Result<Option<Timestamp>, Problem> {
    let Some(value) = vsr.annotations().get(RESTORE_AS_OF) else {
        return Ok(None);
    };
    value
        .trim()
        .parse::<Timestamp>()
        .map(Some)
        .map_err(|_| Problem::RestoreAsOfInvalid {
            annotation: RESTORE_AS_OF,
            value: value.chars().take(64).collect(),
        })
}

fn check_inputs(observed: &Observed) -> Result<(), Problem> {
    let spec = &observed.vsr.spec;
    if !observed.volsync_installed {
        return Err(Problem::VolSyncMissing);
    }
    if !observed.protected_namespace_exists {
        return Err(Problem::ProtectedNamespaceMissing(
            spec.protected_namespace.clone(),
        ));
    }
    let repository = spec
        .volume_snapshot_mover_backup_ref
        .restic_repository
        .as_deref()
        .unwrap_or_default();
    if repository.trim().is_empty() {
        return Err(Problem::NoRepositoryToRestore);
    }
    if repository::form(repository) == Ok(Form::Local) {
        return Err(Problem::LocalRepository {
            what: "spec.volumeSnapshotMoverBackupRef.resticrepository",
        });
    }
    let name = spec
        .restic_secret_ref
        .as_ref()
        .map(|r| r.name.clone())
        .unwrap_or_default();
    let Some(data) = &observed.user_secret else {
        return Err(Problem::SecretMissing {
            namespace: spec.protected_namespace.clone(),
            name,
        });
    };
    let secret =
        ResticSecret::parse(data).map_err(|source| Problem::SecretInvalid { name, source })?;
    crate::repository_scope::restorable(
        &secret,
        &observed.vsr.namespace().unwrap_or_default(),
        repository,
    )?;
    if observed.snapshot_class_exists == Some(false) {
        let class = spec
            .volume_snapshot_mover_backup_ref
            .volume_snapshot_class_name
            .clone()
            .unwrap_or_default();
        return Err(Problem::SnapshotClassMissing(class));
    }
    if let Some((name, data)) = &observed.storage_config {
        crate::storage_config::parse(name, data).map_err(Problem::StorageConfigInvalid)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed() -> Observed {
        let vsr: VolumeSnapshotRestore = serde_saphyr::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/examples/volumesnapshotrestore.yaml"
            ))
            .unwrap(),
        )
        .unwrap();
        let secret = [
            ("RESTIC_PASSWORD", "pw"),
            (
                "RESTIC_REPOSITORY",
                "s3:http://s3.storage-system.svc:9000/backups/lifeline",
            ),
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "k"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
        .collect();
        Observed {
            vsr,
            protected_namespace_exists: true,
            volsync_installed: true,
            snapshot_class_exists: Some(true),
            user_secret: Some(crate::secret_data::SecretData(secret)),
            storage_config: None,
            working: Working::default(),
            admitted: true,
        }
    }

    #[test]
    fn a_bad_value_in_oadps_configmap_refuses_the_restore_naming_it() {
        let mut o = observed();
        assert!(
            !matches!(decide(&o), Decision::Reject(_)),
            "{:?}",
            decide(&o)
        );
        o.storage_config = Some((
            "block-fast-config".into(),
            [("DestinationAccessMode".to_owned(), "RWX".to_owned())].into(),
        ));
        let Decision::Reject(problem) = decide(&o) else {
            panic!("refused")
        };
        assert_eq!(problem.reason(), "StorageConfigInvalid");
        assert!(
            problem
                .to_string()
                .contains("ConfigMap block-fast-config: DestinationAccessMode"),
            "{problem}"
        );
    }

    #[test]
    fn a_restore_naming_another_namespaces_backup_is_refused() {
        let mut o = observed();
        o.vsr
            .spec
            .volume_snapshot_mover_backup_ref
            .restic_repository =
            Some("s3:http://s3.storage-system.svc:9000/backups/lifeline/bank/ledger".into());
        let Decision::Reject(problem) = decide(&o) else {
            panic!("a restore in shop read bank's backup: {:?}", decide(&o))
        };
        assert_eq!(problem.reason(), "RepositoryNotOwned");
        assert!(
            problem.to_string().contains("namespace \"shop\""),
            "{problem}"
        );
    }

    #[test]
    fn a_failed_movers_text_is_scrubbed_before_the_decision_is_logged() {
        let mut o = observed();
        let mut secret = o.user_secret.clone().unwrap().0;
        secret.insert("RESTIC_PASSWORD".into(), b"hunter2-password".to_vec());
        o.user_secret = Some(crate::secret_data::SecretData(secret));
        o.vsr.status = Some(
            serde_json::from_value(
                serde_json::json!({"phase": "InProgress", "batchingStatus": "Processing"}),
            )
            .unwrap(),
        );
        o.working.secret = true;
        o.working.destination = Some(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationDestination",
                "metadata": {"name": "d", "namespace": "openshift-adp"},
                "spec": {},
                "status": {"latestMoverStatus": {"result": "Failed", "logs": "Fatal: wrong password hunter2-password"}},
            }))
            .unwrap(),
        );
        let decision = decide(&o);
        let Decision::Fail(message) = &decision else {
            panic!("{decision:?}")
        };
        assert_eq!(message, "Fatal: wrong password [redacted]");
        assert!(!format!("{decision:?}").contains("hunter2"));
        assert!(!format!("{:?}", o.user_secret).contains("hunter2"));
    }
}
