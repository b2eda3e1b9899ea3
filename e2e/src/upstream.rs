//! The upstream CRDs of the foreign kinds Lifeline creates and reads — VolSync's
//! ReplicationSource/ReplicationDestination (v0.12.0) and the CSI external-snapshotter's
//! VolumeSnapshot/VolumeSnapshotContent/VolumeSnapshotClass (v8.2.0) — as those projects publish
//! them (descriptions removed), from `../shared/upstream-crds/`. Test clusters that lack them
//! get these, never CRDs generated from Lifeline's own typed views, so every object the
//! controllers write meets the real schemas and CEL rules. (On the control plane the harness
//! starts, VolSync's CRDs are those of the VolSync release that runs there, v0.14.0:
//! [`crate::storage_controllers::volsync_crds`].)

use std::path::PathBuf;

use anyhow::Context;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// The CRD files, relative to the upstream-crds folder.
pub const FILES: &[&str] = &[
    "volsync-v0.12.0/volsync.backube_replicationsources.yaml",
    "volsync-v0.12.0/volsync.backube_replicationdestinations.yaml",
    "external-snapshotter-v8.2.0/snapshot.storage.k8s.io_volumesnapshots.yaml",
    "external-snapshotter-v8.2.0/snapshot.storage.k8s.io_volumesnapshotcontents.yaml",
    "external-snapshotter-v8.2.0/snapshot.storage.k8s.io_volumesnapshotclasses.yaml",
];

/// Where the upstream CRDs are: `$LIFELINE_UPSTREAM_CRDS`, or `shared/upstream-crds` beside
/// the checkout (where every developer and CI has it).
pub fn dir() -> PathBuf {
    std::env::var_os("LIFELINE_UPSTREAM_CRDS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/upstream-crds")
        })
}

/// Reads one upstream CRD file.
pub fn load(file: &str) -> anyhow::Result<CustomResourceDefinition> {
    let path = dir().join(file);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read the upstream CRD {} (set LIFELINE_UPSTREAM_CRDS to the shared/upstream-crds folder)",
            path.display()
        )
    })?;
    serde_saphyr::from_str(&text).with_context(|| format!("{} is not a CRD", path.display()))
}

/// Velero v1.18.1's DataUpload, DataDownload and BackupStorageLocation CRDs (descriptions
/// removed), for the clusters where the data mover serves Velero's requests.
pub const VELERO_FILES: &[&str] = &[
    "velero-v1.18.1/velero.io_datauploads.yaml",
    "velero-v1.18.1/velero.io_datadownloads.yaml",
    "velero-v1.18.1/velero.io_backupstoragelocations.yaml",
];

pub fn velero() -> anyhow::Result<Vec<CustomResourceDefinition>> {
    VELERO_FILES.iter().map(|file| load(file)).collect()
}

/// Every foreign CRD, as its project publishes it.
pub fn foreign() -> anyhow::Result<Vec<CustomResourceDefinition>> {
    FILES.iter().map(|file| load(file)).collect()
}

/// The `openAPIV3Schema` of a foreign kind's served, stored version, for validating objects.
pub fn schema(kind: &str) -> anyhow::Result<serde_json::Value> {
    for file in FILES {
        let crd = load(file)?;
        if crd.spec.names.kind != kind {
            continue;
        }
        let version = crd
            .spec
            .versions
            .iter()
            .find(|v| v.storage)
            .context("no storage version")?;
        let schema = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .context("no openAPIV3Schema")?;
        return Ok(serde_json::to_value(schema)?);
    }
    anyhow::bail!("no upstream CRD for kind {kind}")
}
