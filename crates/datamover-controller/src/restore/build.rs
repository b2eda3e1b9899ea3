//! The working objects of a restore. Pure: no client.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use lifeline_api::datamover::VolumeSnapshotRestore;
use lifeline_api::foreign::volsync::ReplicationDestination;
use serde_json::json;

use crate::backup::build::custom_ca;
use crate::names::Names;
use crate::repository::ResticSecret;
use crate::restore::decide::restore_as_of;
use crate::settings::Settings;
use crate::storage_config::Side;

/// Annotation (Lifeline's) on a VSR: restore the backup as of this time (RFC 3339), copied from
/// the VolumeSnapshotBackup's annotation of the same name. Without it, the latest backup.
pub const RESTORE_AS_OF: &str = "datamover.io/restore-as-of";

pub struct RestoreInputs<'a> {
    pub vsr: &'a VolumeSnapshotRestore,
    pub secret: &'a ResticSecret,
    pub names: &'a Names,
    pub settings: &'a Settings,
    /// The destination side of OADP's `<storageclass>-config` ConfigMap, if the class has one.
    pub config: Option<&'a Side>,
}

impl RestoreInputs<'_> {
    fn metadata(&self, name: String) -> serde_json::Value {
        json!({"name": name, "namespace": self.vsr.spec.protected_namespace, "labels": self.names.labels()})
    }

    /// The repository the mover reads: the Secret's base, the restore's own namespace and the
    /// claim named in the reference (checked by `decide`), never the reference as given.
    pub fn repository(&self) -> String {
        let given = self
            .vsr
            .spec
            .volume_snapshot_mover_backup_ref
            .restic_repository
            .as_deref()
            .unwrap_or_default();
        let namespace = self.vsr.namespace().unwrap_or_default();
        crate::repository_scope::restorable(self.secret, &namespace, given).unwrap_or_default()
    }

    /// The user's keys, pointed at the backup's repository.
    pub fn secret(&self) -> Secret {
        let mut secret: Secret = serde_json::from_value(
            json!({"metadata": self.metadata(self.names.secret()), "type": "Opaque"}),
        )
        .expect("a valid Secret");
        secret.string_data = Some(self.secret.with_repository(&self.repository()));
        secret
    }

    pub fn replication_destination(&self) -> ReplicationDestination {
        let reference = &self.vsr.spec.volume_snapshot_mover_backup_ref;
        let pvc = reference.source_pvc_data.clone().unwrap_or_default();
        // The ConfigMap's, else the controller's flags, else the backed-up claim's.
        let config = self.config.cloned().unwrap_or_default();
        let storage_class = config
            .storage_class
            .clone()
            .or_else(|| self.settings.storage_class.clone())
            .or(pvc.storage_class_name);
        let access_mode = config
            .access_mode
            .clone()
            .or_else(|| self.settings.access_mode.clone())
            .unwrap_or_else(|| "ReadWriteOnce".into());
        let mut restic = json!({
            "repository": self.names.secret(),
            "copyMethod": "Snapshot",
            "capacity": pvc.size.unwrap_or_else(|| "1Gi".into()),
            "accessModes": [access_mode],
            "storageClassName": storage_class,
            "volumeSnapshotClassName": reference.volume_snapshot_class_name,
            "moverServiceAccount": self.settings.mover_service_account,
        });
        if self.secret.has_custom_ca() {
            restic["customCA"] = custom_ca(&self.names.secret());
        }
        if self.config.is_some() {
            // A class with a ConfigMap never leaves the cache's class to the cluster default.
            restic["cacheStorageClassName"] =
                json!(config.cache_storage_class.clone().or(storage_class));
            if let Some(capacity) = &config.cache_capacity {
                restic["cacheCapacity"] = json!(capacity);
            }
            if let Some(mode) = &config.cache_access_mode {
                restic["cacheAccessModes"] = json!([mode]);
            }
        }
        // Checked before anything is created (`required_fields`); never trusted to parse here.
        if let Ok(Some(as_of)) = restore_as_of(self.vsr) {
            restic["restoreAsOf"] = json!(as_of.to_string());
        }
        if let Some(uid) = self.settings.mover_run_as_user {
            restic["moverSecurityContext"] = json!({"runAsUser": uid, "runAsNonRoot": uid != 0});
        }
        serde_json::from_value(json!({
            "apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationDestination",
            "metadata": self.metadata(self.names.replication_destination()),
            "spec": {"trigger": {"manual": self.vsr.name_any()}, "restic": restic},
        }))
        .expect("a valid ReplicationDestination")
    }
}
