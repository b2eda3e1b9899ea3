//! The CSI Identity and Controller services, as the CSI sidecars call them over the driver's
//! socket: volumes empty, from a snapshot and cloned; snapshots; idempotent retries; the CSI
//! spec's codes for bad input.

use lifeline_csi_client::Endpoint;
use lifeline_csi_client::proto::csi::v1 as csi;
use lifeline_hostpath_driver::{Config, Running, start};
use tonic::Code;

type Controller = csi::controller_client::ControllerClient<tonic::transport::Channel>;

async fn driver() -> (tempfile::TempDir, Running, Controller, Endpoint) {
    let dir = tempfile::tempdir().unwrap();
    let endpoint: Endpoint = format!("unix://{}", dir.path().join("csi.sock").display())
        .parse()
        .unwrap();
    let running = start(Config::lone(
        "hostpath.lifeline.dev",
        endpoint.clone(),
        dir.path().join("root"),
    ))
    .await
    .unwrap();
    let controller = Controller::new(endpoint.channel());
    (dir, running, controller, endpoint)
}

fn mount() -> Vec<csi::VolumeCapability> {
    vec![csi::VolumeCapability {
        access_type: Some(csi::volume_capability::AccessType::Mount(Default::default())),
        access_mode: Some(csi::volume_capability::AccessMode { mode: 1 }),
    }]
}

fn create(
    name: &str,
    source: Option<csi::volume_content_source::Type>,
) -> csi::CreateVolumeRequest {
    csi::CreateVolumeRequest {
        name: name.into(),
        capacity_range: Some(csi::CapacityRange {
            required_bytes: 1 << 20,
            limit_bytes: 0,
        }),
        volume_capabilities: mount(),
        volume_content_source: source.map(|t| csi::VolumeContentSource { r#type: Some(t) }),
        ..Default::default()
    }
}

#[tokio::test]
async fn identity_says_who_it_is_and_that_it_has_a_controller_service() {
    let (_dir, _running, _, endpoint) = driver().await;
    let mut identity = csi::identity_client::IdentityClient::new(endpoint.channel());
    let info = identity
        .get_plugin_info(csi::GetPluginInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.name, "hostpath.lifeline.dev");
    let caps = identity
        .get_plugin_capabilities(csi::GetPluginCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(
        caps.capabilities[0].r#type,
        Some(csi::plugin_capability::Type::Service(
            csi::plugin_capability::Service { r#type: 1 }
        ))
    ));
    let probe = identity
        .probe(csi::ProbeRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(probe.ready, Some(true));
}

#[tokio::test]
async fn volumes_snapshots_and_clones_carry_the_data_and_retries_are_idempotent() {
    use csi::volume_content_source::{SnapshotSource, Type, VolumeSource};
    let (_dir, running, mut c, _) = driver().await;
    let store = &running.site.store;
    let made = c
        .create_volume(create("pvc-1", None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(made.volume.as_ref().unwrap().volume_id, "pvc-1");
    // The node side finds the directory in the volume context (the PV's volumeAttributes).
    assert_eq!(
        made.volume.as_ref().unwrap().volume_context[lifeline_hostpath_driver::csi::VOLUME_PATH],
        store.volume_dir("pvc-1").display().to_string()
    );
    assert_eq!(made.volume.unwrap().capacity_bytes, 1 << 20);
    std::fs::write(store.volume_dir("pvc-1").join("data"), b"v1").unwrap();
    // A retry (the provisioner's, after a timeout) finds the same volume, data intact.
    c.create_volume(create("pvc-1", None)).await.unwrap();
    assert_eq!(
        std::fs::read(store.volume_dir("pvc-1").join("data")).unwrap(),
        b"v1"
    );

    let snap = csi::CreateSnapshotRequest {
        source_volume_id: "pvc-1".into(),
        name: "snapshot-1".into(),
        ..Default::default()
    };
    let taken = c.create_snapshot(snap.clone()).await.unwrap().into_inner();
    let taken = taken.snapshot.unwrap();
    assert!(taken.ready_to_use && taken.source_volume_id == "pvc-1");
    std::fs::write(store.volume_dir("pvc-1").join("data"), b"v2").unwrap();
    c.create_snapshot(snap).await.unwrap();
    let other = csi::CreateSnapshotRequest {
        source_volume_id: "pvc-2".into(),
        name: "snapshot-1".into(),
        ..Default::default()
    };
    assert_eq!(
        c.create_snapshot(other).await.unwrap_err().code(),
        Code::AlreadyExists
    );

    // From the snapshot: the data as it was when taken; a clone: as it is now.
    let restored = Type::Snapshot(SnapshotSource {
        snapshot_id: "snapshot-1".into(),
    });
    c.create_volume(create("pvc-restored", Some(restored)))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(store.volume_dir("pvc-restored").join("data")).unwrap(),
        b"v1"
    );
    let clone = Type::Volume(VolumeSource {
        volume_id: "pvc-1".into(),
    });
    c.create_volume(create("pvc-clone", Some(clone)))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(store.volume_dir("pvc-clone").join("data")).unwrap(),
        b"v2"
    );

    // A replicated volume is not deleted from under its replication.
    running
        .site
        .enable("pvc-1", Default::default(), String::new())
        .unwrap();
    let err = c
        .delete_volume(csi::DeleteVolumeRequest {
            volume_id: "pvc-1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(store.volume_dir("pvc-1").exists());

    for _ in 0..2 {
        c.delete_snapshot(csi::DeleteSnapshotRequest {
            snapshot_id: "snapshot-1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        c.delete_volume(csi::DeleteVolumeRequest {
            volume_id: "pvc-clone".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    assert!(!store.volume_dir("pvc-clone").exists());
    assert!(!store.csi_snapshot_dir("snapshot-1").exists());
}

#[tokio::test]
async fn bad_requests_get_the_csi_specs_codes() {
    use csi::volume_content_source::{SnapshotSource, Type};
    let (_dir, running, mut c, _) = driver().await;
    let invalid = [
        create("", None),
        create("../escape", None),
        csi::CreateVolumeRequest {
            volume_capabilities: vec![],
            ..create("pvc-x", None)
        },
        csi::CreateVolumeRequest {
            volume_capabilities: vec![csi::VolumeCapability {
                access_type: Some(csi::volume_capability::AccessType::Block(Default::default())),
                access_mode: None,
            }],
            ..create("pvc-x", None)
        },
    ];
    for request in invalid {
        let shown = format!("{request:?}");
        let err = c.create_volume(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{shown}: {err:?}");
    }
    assert!(!running.site.store.volume_dir("pvc-x").exists());
    let missing = Type::Snapshot(SnapshotSource {
        snapshot_id: "snapshot-none".into(),
    });
    let err = c
        .create_volume(create("pvc-y", Some(missing)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .create_snapshot(csi::CreateSnapshotRequest {
            source_volume_id: "pvc-none".into(),
            name: "snapshot-2".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .delete_volume(csi::DeleteVolumeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // An id it never made is deleted already, as the spec says.
    c.delete_volume(csi::DeleteVolumeRequest {
        volume_id: "../../etc".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let caps = c
        .controller_get_capabilities(csi::ControllerGetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(caps.capabilities.len(), 3);
}
