//! The working objects of a backup, built from what was fetched. Pure: no client.

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PodSecurityContext, Secret};
use kube::ResourceExt;
use lifeline_api::datamover::VolumeSnapshotBackup;
use lifeline_api::foreign::snapshot::{VolumeSnapshot, VolumeSnapshotContent};
use lifeline_api::foreign::volsync::ReplicationSource;
use serde_json::json;

use crate::names::Names;
use crate::repository::{RESTIC_CUSTOM_CA, ResticSecret};
use crate::settings::Settings;
use crate::sizes::larger;
use crate::storage_config::Side;

/// What a backup's working objects are built from.
pub struct BackupInputs<'a> {
    pub vsb: &'a VolumeSnapshotBackup,
    pub source_content: &'a VolumeSnapshotContent,
    pub source_pvc: &'a PersistentVolumeClaim,
    pub secret: &'a ResticSecret,
    pub names: &'a Names,
    pub settings: &'a Settings,
    /// The source side of OADP's `<storageclass>-config` ConfigMap, if the class has one.
    pub config: Option<&'a Side>,
    /// The workload's Pod security context, when the ConfigMap asks the mover to run with it.
    pub mover_context: Option<&'a PodSecurityContext>,
}

impl BackupInputs<'_> {
    fn namespace(&self) -> &str {
        &self.vsb.spec.protected_namespace
    }

    /// The source claim's namespace and name.
    pub fn source(&self) -> (String, String) {
        (
            self.source_pvc.namespace().unwrap_or_default(),
            self.source_pvc.name_any(),
        )
    }

    pub fn repository(&self) -> String {
        let (namespace, name) = self.source();
        self.secret.repository_for(&namespace, &name)
    }

    pub fn snapshot_class(&self) -> Option<String> {
        self.source_content.spec.volume_snapshot_class_name.clone()
    }

    /// max(source claim request, snapshot restore size).
    pub fn size(&self) -> String {
        let request = self
            .source_pvc
            .spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .map(|q| q.0.clone());
        let restore = self
            .source_content
            .status
            .as_ref()
            .and_then(|s| s.restore_size)
            .map(|b| b.to_string());
        larger(request.as_deref(), restore.as_deref()).unwrap_or_else(|| "1Gi".into())
    }

    /// The ConfigMap's, else the controller's `--storage-class`, else the source claim's.
    pub fn storage_class(&self) -> Option<String> {
        let configured = self.config.and_then(|c| c.storage_class.clone());
        configured
            .or_else(|| self.settings.storage_class.clone())
            .or_else(|| {
                self.source_pvc
                    .spec
                    .as_ref()
                    .and_then(|s| s.storage_class_name.clone())
            })
    }

    fn access_modes(&self) -> Vec<String> {
        let configured = self.config.and_then(|c| c.access_mode.as_ref());
        match configured.or(self.settings.access_mode.as_ref()) {
            Some(mode) => vec![mode.clone()],
            None => self
                .source_pvc
                .spec
                .as_ref()
                .and_then(|s| s.access_modes.clone())
                .unwrap_or_else(|| vec!["ReadWriteOnce".into()]),
        }
    }

    fn metadata(&self, name: String, namespaced: bool) -> serde_json::Value {
        let mut metadata = json!({"name": name, "labels": self.names.labels()});
        if namespaced {
            metadata["namespace"] = json!(self.namespace());
        }
        metadata
    }

    /// A static copy of the user's snapshot content. `Retain` always: deleting our copy can
    /// never delete the user's snapshot data.
    pub fn content(&self) -> VolumeSnapshotContent {
        let source = self
            .source_content
            .status
            .as_ref()
            .and_then(|s| s.snapshot_handle.clone());
        serde_json::from_value(json!({
            "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
            "metadata": self.metadata(self.names.content(), false),
            "spec": {
                "deletionPolicy": "Retain",
                "driver": self.source_content.spec.driver,
                "source": {"snapshotHandle": source},
                "volumeSnapshotClassName": self.snapshot_class(),
                "volumeSnapshotRef": {"namespace": self.namespace(), "name": self.names.snapshot()},
            },
        }))
        .expect("a valid VolumeSnapshotContent")
    }

    pub fn snapshot(&self) -> VolumeSnapshot {
        serde_json::from_value(json!({
            "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
            "metadata": self.metadata(self.names.snapshot(), true),
            "spec": {"volumeSnapshotClassName": self.snapshot_class(),
                     "source": {"volumeSnapshotContentName": self.names.content()}},
        }))
        .expect("a valid VolumeSnapshot")
    }

    pub fn pvc(&self) -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": self.metadata(self.names.pvc(), true),
            "spec": {
                "accessModes": self.access_modes(),
                "storageClassName": self.storage_class(),
                "resources": {"requests": {"storage": self.size()}},
                "dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": self.names.snapshot()},
            },
        }))
        .expect("a valid PersistentVolumeClaim")
    }

    /// The per-request restic Secret: the user's keys, pointed at this volume's repository.
    pub fn secret(&self) -> Secret {
        let mut secret: Secret = serde_json::from_value(
            json!({"metadata": self.metadata(self.names.secret(), true), "type": "Opaque"}),
        )
        .expect("a valid Secret");
        secret.string_data = Some(self.secret.with_repository(&self.repository()));
        secret
    }

    pub fn replication_source(&self) -> ReplicationSource {
        let mut restic = json!({
            "repository": self.names.secret(),
            "copyMethod": "Direct",
            "moverServiceAccount": self.settings.mover_service_account,
        });
        if self.secret.has_custom_ca() {
            restic["customCA"] = custom_ca(&self.names.secret());
        }
        if let Some(retain) = self.secret.retain(self.settings.retain.as_ref()) {
            restic["retain"] = serde_json::to_value(retain).expect("serializable");
        }
        if let Some(days) = self.secret.oadp.prune_interval_days {
            restic["pruneIntervalDays"] = json!(days);
        }
        if let Some(context) = self.mover_context {
            restic["moverSecurityContext"] = serde_json::to_value(context).expect("serializable");
        } else if let Some(uid) = self.settings.mover_run_as_user {
            restic["moverSecurityContext"] = json!({"runAsUser": uid, "runAsNonRoot": uid != 0});
        }
        if let Some(config) = self.config {
            // A class with a ConfigMap never leaves the cache's class to the cluster default.
            restic["cacheStorageClassName"] = json!(
                config
                    .cache_storage_class
                    .clone()
                    .or_else(|| self.storage_class())
            );
            if let Some(capacity) = &config.cache_capacity {
                restic["cacheCapacity"] = json!(capacity);
            }
            if let Some(mode) = &config.cache_access_mode {
                restic["cacheAccessModes"] = json!([mode]);
            }
        }
        serde_json::from_value(json!({
            "apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationSource",
            "metadata": self.metadata(self.names.replication_source(), true),
            "spec": {"sourcePVC": self.names.pvc(), "trigger": {"manual": self.vsb.name_any()}, "restic": restic},
        }))
        .expect("a valid ReplicationSource")
    }
}

/// `spec.restic.customCA`: the CA in the per-request Secret, where VolSync mounts it for
/// restic's `--cacert` (it never reads `RESTIC_CUSTOM_CA` from the environment).
pub fn custom_ca(secret: &str) -> serde_json::Value {
    json!({"secretName": secret, "key": RESTIC_CUSTOM_CA})
}
