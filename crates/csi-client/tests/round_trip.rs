//! Every RPC against an in-process driver on a Unix socket, with every field set.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use lifeline_csi_client::fake::{FakeDriver, Received, serve};
use lifeline_csi_client::proto::replication as rep;
use lifeline_csi_client::{
    Destination, ReplicationHealth, ReplicationInfo, ReplicationRequest, Secrets, Target, connect,
};

fn params() -> BTreeMap<String, String> {
    [("mirroringMode", "snapshot"), ("schedulingInterval", "1m")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn request(target: Target) -> ReplicationRequest {
    ReplicationRequest::new(target)
        .with_parameters(params())
        .with_secrets(Secrets::from_iter([
            ("userID", "admin"),
            ("userKey", "hunter2"),
        ]))
        .with_replication_id("rid-7")
}

fn volume_source(id: &str) -> Option<rep::ReplicationSource> {
    use rep::replication_source::{Type, VolumeSource};
    Some(rep::ReplicationSource {
        r#type: Some(Type::Volume(VolumeSource {
            volume_id: id.into(),
        })),
    })
}

fn secrets_map() -> BTreeMap<String, String> {
    [("userID", "admin"), ("userKey", "hunter2")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[tokio::test]
async fn every_replication_rpc_carries_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new("hostpath.lifeline.dev");
    let served = serve(driver.clone(), &dir.path().join("csi.sock"));
    let client = connect(&served.endpoint()).unwrap();
    let r = request(Target::Volume("vol-1".into()));

    driver.set_resync_ready(true);
    driver.set_info(rep::GetVolumeReplicationInfoResponse {
        last_sync_time: Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        }),
        last_sync_duration: Some(prost_types::Duration {
            seconds: 42,
            nanos: 0,
        }),
        last_sync_bytes: 1_048_576,
        status: rep::get_volume_replication_info_response::Status::Degraded as i32,
        status_message: "peer unreachable".into(),
    });
    driver.set_destination(rep::GetReplicationDestinationInfoResponse {
        replication_destination: Some(rep::ReplicationDestination {
            r#type: Some(rep::replication_destination::Type::Volume(
                rep::replication_destination::VolumeDestination {
                    volume_id: "peer-vol-1".into(),
                },
            )),
        }),
    });

    client.enable(&r).await.unwrap();
    client.promote(&r, true).await.unwrap();
    client.demote(&r, false).await.unwrap();
    assert!(client.resync(&r, true).await.unwrap());
    let info = client.replication_info(&r).await.unwrap();
    let destination = client.destination_info(&r).await.unwrap();
    client.disable(&r).await.unwrap();

    assert_eq!(
        info,
        ReplicationInfo {
            last_sync_time: Some(UNIX_EPOCH + Duration::new(1_700_000_000, 5)),
            last_sync_duration: Some(Duration::from_secs(42)),
            last_sync_bytes: Some(1_048_576),
            health: ReplicationHealth::Degraded,
            status_message: "peer unreachable".into(),
        }
    );
    assert_eq!(destination, Destination::Volume("peer-vol-1".into()));

    let received = driver.received();
    assert_eq!(
        received,
        [
            Received::Enable(rep::EnableVolumeReplicationRequest {
                volume_id: "vol-1".into(),
                parameters: params(),
                secrets: secrets_map(),
                replication_id: "rid-7".into(),
                replication_source: volume_source("vol-1"),
            }),
            Received::Promote(rep::PromoteVolumeRequest {
                volume_id: "vol-1".into(),
                force: true,
                parameters: params(),
                secrets: secrets_map(),
                replication_id: "rid-7".into(),
                replication_source: volume_source("vol-1"),
            }),
            Received::Demote(rep::DemoteVolumeRequest {
                volume_id: "vol-1".into(),
                force: false,
                parameters: params(),
                secrets: secrets_map(),
                replication_id: "rid-7".into(),
                replication_source: volume_source("vol-1"),
            }),
            Received::Resync(rep::ResyncVolumeRequest {
                volume_id: "vol-1".into(),
                force: true,
                parameters: params(),
                secrets: secrets_map(),
                replication_id: "rid-7".into(),
                replication_source: volume_source("vol-1"),
            }),
            Received::Info(rep::GetVolumeReplicationInfoRequest {
                volume_id: "vol-1".into(),
                secrets: secrets_map(),
                replication_id: "rid-7".into(),
                replication_source: volume_source("vol-1"),
            }),
            Received::DestInfo(rep::GetReplicationDestinationInfoRequest {
                secrets: secrets_map(),
                replication_source: volume_source("vol-1"),
            }),
            Received::Disable(rep::DisableVolumeReplicationRequest {
                volume_id: "vol-1".into(),
                parameters: params(),
                secrets: secrets_map(),
                replication_id: "rid-7".into(),
                replication_source: volume_source("vol-1"),
            }),
        ]
    );
    served.stop().await;
}

#[tokio::test]
async fn volume_groups_use_the_group_source_and_no_volume_id() {
    let dir = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new("d");
    let served = serve(driver.clone(), &dir.path().join("csi.sock"));
    let client = connect(&served.endpoint()).unwrap();
    driver.set_destination(rep::GetReplicationDestinationInfoResponse {
        replication_destination: Some(rep::ReplicationDestination {
            r#type: Some(rep::replication_destination::Type::Volumegroup(
                rep::replication_destination::VolumeGroupDestination {
                    volume_group_id: "peer-group".into(),
                    volume_ids: [("a".to_owned(), "peer-a".to_owned())].into(),
                },
            )),
        }),
    });

    let r = ReplicationRequest::new(Target::VolumeGroup("group-1".into()));
    client.promote(&r, false).await.unwrap();
    let destination = client.destination_info(&r).await.unwrap();

    assert_eq!(
        destination,
        Destination::VolumeGroup {
            id: "peer-group".into(),
            volume_ids: [("a".to_owned(), "peer-a".to_owned())].into(),
        }
    );
    let Received::Promote(promote) = &driver.received()[0] else {
        panic!("not a promote")
    };
    assert_eq!(promote.volume_id, "");
    assert_eq!(promote.replication_id, "");
    assert_eq!(
        promote.replication_source,
        Some(rep::ReplicationSource {
            r#type: Some(rep::replication_source::Type::Volumegroup(
                rep::replication_source::VolumeGroupSource {
                    volume_group_id: "group-1".into()
                }
            )),
        })
    );
    served.stop().await;
}

#[tokio::test]
async fn identity_capabilities_and_probe() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(
        FakeDriver::new("hostpath.lifeline.dev"),
        &dir.path().join("csi.sock"),
    );
    let client = connect(&served.endpoint()).unwrap();

    let identity = client.identity().await.unwrap();
    assert_eq!(identity.name, "hostpath.lifeline.dev");
    assert_eq!(identity.vendor_version, "1.2.3");
    assert_eq!(
        identity.manifest.get("commit").map(String::as_str),
        Some("abc")
    );

    let caps = client.capabilities().await.unwrap();
    assert!(caps.controller_service);
    assert!(caps.volume_replication);
    assert!(!caps.get_replication_destination_info);
    assert_eq!(caps.raw.len(), 2);

    assert!(client.probe().await.unwrap());
    served.stop().await;
}

/// The volume-replication-operator probes through the CSI spec's Identity service before it
/// starts; the fake serves it beside csi-addons'.
#[tokio::test]
async fn the_csi_specs_identity_is_served_too() {
    use lifeline_csi_client::proto::csi::v1 as csi;
    let dir = tempfile::tempdir().unwrap();
    let served = serve(
        FakeDriver::new("bench.lifeline.dev"),
        &dir.path().join("csi.sock"),
    );
    let endpoint: lifeline_csi_client::Endpoint = served.endpoint().parse().unwrap();
    let mut identity = csi::identity_client::IdentityClient::new(endpoint.channel());
    let probe = identity.probe(csi::ProbeRequest {}).await.unwrap();
    assert_eq!(probe.into_inner().ready, Some(true));
    let info = identity
        .get_plugin_info(csi::GetPluginInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.name, "bench.lifeline.dev");
    let caps = identity
        .get_plugin_capabilities(csi::GetPluginCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(caps.capabilities.len(), 1);
    served.stop().await;
}
