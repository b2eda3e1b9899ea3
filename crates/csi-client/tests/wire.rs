//! What goes on the wire, decoded with a hand-written protobuf reader and the field numbers
//! of the csi-addons contract table (not with the generated code), so a wrong number in
//! `proto/` fails here.

use std::collections::BTreeMap;

use lifeline_csi_client::{ReplicationRequest, Secrets, Target};
use prost::Message;

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Varint(u64),
    Bytes(Vec<u8>),
}

/// Decodes one message level into (field number, value) in wire order.
fn fields(mut bytes: &[u8]) -> Vec<(u64, Value)> {
    fn varint(bytes: &mut &[u8]) -> u64 {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = bytes[0];
            *bytes = &bytes[1..];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        value
    }
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes);
        let (number, wire_type) = (key >> 3, key & 7);
        let value = match wire_type {
            0 => Value::Varint(varint(&mut bytes)),
            2 => {
                let len = usize::try_from(varint(&mut bytes)).unwrap();
                let (head, tail) = bytes.split_at(len);
                bytes = tail;
                Value::Bytes(head.to_vec())
            }
            other => panic!("unexpected wire type {other} for field {number}"),
        };
        out.push((number, value));
    }
    out
}

fn string(fields: &[(u64, Value)], number: u64) -> Option<String> {
    fields
        .iter()
        .find(|(n, _)| *n == number)
        .map(|(_, v)| match v {
            Value::Bytes(b) => String::from_utf8(b.clone()).unwrap(),
            Value::Varint(_) => panic!("field {number} is a varint"),
        })
}

fn varint(fields: &[(u64, Value)], number: u64) -> Option<u64> {
    fields
        .iter()
        .find(|(n, _)| *n == number)
        .map(|(_, v)| match v {
            Value::Varint(x) => *x,
            Value::Bytes(_) => panic!("field {number} is length-delimited"),
        })
}

fn nested(fields: &[(u64, Value)], number: u64) -> Vec<(u64, Value)> {
    match fields.iter().find(|(n, _)| *n == number) {
        Some((_, Value::Bytes(b))) => self::fields(b),
        other => panic!("field {number} is not a message: {other:?}"),
    }
}

/// A map field: repeated entries whose key is field 1 and value field 2.
fn map(fields: &[(u64, Value)], number: u64) -> BTreeMap<String, String> {
    fields
        .iter()
        .filter(|(n, _)| *n == number)
        .map(|(_, v)| {
            let Value::Bytes(entry) = v else {
                panic!("map entry is not a message")
            };
            let entry = self::fields(entry);
            (string(&entry, 1).unwrap(), string(&entry, 2).unwrap())
        })
        .collect()
}

fn numbers(fields: &[(u64, Value)]) -> Vec<u64> {
    let mut n: Vec<u64> = fields.iter().map(|(n, _)| *n).collect();
    n.dedup();
    n
}

fn request() -> ReplicationRequest {
    ReplicationRequest::new(Target::Volume("vol-1".into()))
        .with_parameters([("mirroringMode".to_owned(), "snapshot".to_owned())].into())
        .with_secrets(Secrets::from_iter([("userKey", "k")]))
        .with_replication_id("rid")
}

fn expected(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// ReplicationSource{volume(1): VolumeSource{volume_id(1)}}.
fn assert_volume_source(source: &[(u64, Value)], id: &str) {
    let volume = nested(source, 1);
    assert_eq!(string(&volume, 1).as_deref(), Some(id));
    assert_eq!(numbers(source), [1]);
}

#[test]
fn enable_and_disable_use_fields_1_to_5() {
    let r = request();
    for bytes in [r.enable().encode_to_vec(), r.disable().encode_to_vec()] {
        let f = fields(&bytes);
        assert_eq!(numbers(&f), [1, 2, 3, 4, 5]);
        assert_eq!(string(&f, 1).as_deref(), Some("vol-1"));
        assert_eq!(map(&f, 2), expected(&[("mirroringMode", "snapshot")]));
        assert_eq!(map(&f, 3), expected(&[("userKey", "k")]));
        assert_eq!(string(&f, 4).as_deref(), Some("rid"));
        assert_volume_source(&nested(&f, 5), "vol-1");
    }
}

#[test]
fn promote_demote_resync_use_force_2_and_source_6() {
    let r = request();
    for bytes in [
        r.promote(true).encode_to_vec(),
        r.demote(true).encode_to_vec(),
        r.resync(true).encode_to_vec(),
    ] {
        let f = fields(&bytes);
        assert_eq!(numbers(&f), [1, 2, 3, 4, 5, 6]);
        assert_eq!(string(&f, 1).as_deref(), Some("vol-1"));
        assert_eq!(varint(&f, 2), Some(1));
        assert_eq!(map(&f, 3), expected(&[("mirroringMode", "snapshot")]));
        assert_eq!(map(&f, 4), expected(&[("userKey", "k")]));
        assert_eq!(string(&f, 5).as_deref(), Some("rid"));
        assert_volume_source(&nested(&f, 6), "vol-1");
    }
    // force=false is proto3's default and so is not on the wire at all.
    assert_eq!(varint(&fields(&r.promote(false).encode_to_vec()), 2), None);
}

#[test]
fn get_info_has_no_parameters() {
    let f = fields(&request().info().encode_to_vec());
    assert_eq!(numbers(&f), [1, 2, 3, 4]);
    assert_eq!(string(&f, 1).as_deref(), Some("vol-1"));
    assert_eq!(map(&f, 2), expected(&[("userKey", "k")]));
    assert_eq!(string(&f, 3).as_deref(), Some("rid"));
    assert_volume_source(&nested(&f, 4), "vol-1");
}

#[test]
fn get_destination_info_has_secrets_1_and_source_2() {
    let f = fields(&request().destination_info().encode_to_vec());
    assert_eq!(numbers(&f), [1, 2]);
    assert_eq!(map(&f, 1), expected(&[("userKey", "k")]));
    assert_volume_source(&nested(&f, 2), "vol-1");
}

#[test]
fn a_group_is_source_field_2_with_group_id_1() {
    let r = ReplicationRequest::new(Target::VolumeGroup("g-1".into()));
    let f = fields(&r.enable().encode_to_vec());
    assert_eq!(numbers(&f), [5], "no deprecated volume_id for a group");
    let source = nested(&f, 5);
    assert_eq!(numbers(&source), [2]);
    assert_eq!(string(&nested(&source, 2), 1).as_deref(), Some("g-1"));
}

#[test]
fn identity_responses_decode_from_contract_bytes() {
    use lifeline_csi_client::Capabilities;
    use lifeline_csi_client::proto::identity::GetCapabilitiesResponse;
    // capabilities(1) = [ {volume_replication(4): {type(1): GET_REPLICATION_DESTINATION_INFO=2}},
    //                     {service(1): {type(1): CONTROLLER_SERVICE=1}} ]
    let bytes = [
        0x0a, 0x04, 0x22, 0x02, 0x08, 0x02, 0x0a, 0x04, 0x0a, 0x02, 0x08, 0x01,
    ];
    let caps: Capabilities = GetCapabilitiesResponse::decode(&bytes[..]).unwrap().into();
    assert!(caps.get_replication_destination_info);
    assert!(caps.controller_service);
    assert!(!caps.volume_replication);
}

fn strings(fields: &[(u64, Value)], number: u64) -> Vec<String> {
    fields
        .iter()
        .filter(|(n, _)| *n == number)
        .filter_map(|(_, v)| match v {
            Value::Bytes(b) => String::from_utf8(b.clone()).ok(),
            Value::Varint(_) => None,
        })
        .collect()
}

#[test]
fn volume_group_requests_use_the_contracts_numbers() {
    use lifeline_csi_client::proto::volumegroup as vg;
    let params = expected(&[("a", "b")]);
    let secrets = expected(&[("userKey", "k")]);
    let ids = vec!["v1".to_owned(), "v2".to_owned()];

    let f = fields(
        &vg::CreateVolumeGroupRequest {
            name: "vm-1".into(),
            parameters: params.clone(),
            secrets: secrets.clone(),
            volume_ids: ids.clone(),
        }
        .encode_to_vec(),
    );
    assert_eq!(string(&f, 1).as_deref(), Some("vm-1"));
    assert_eq!(map(&f, 2), params);
    assert_eq!(map(&f, 3), secrets);
    assert_eq!(strings(&f, 4), ids);

    let f = fields(
        &vg::ModifyVolumeGroupMembershipRequest {
            volume_group_id: "g".into(),
            volume_ids: ids.clone(),
            secrets: secrets.clone(),
            parameters: params.clone(),
        }
        .encode_to_vec(),
    );
    assert_eq!(string(&f, 1).as_deref(), Some("g"));
    assert_eq!(strings(&f, 2), ids);
    assert_eq!(map(&f, 3), secrets);
    assert_eq!(map(&f, 4), params);

    for bytes in [
        vg::DeleteVolumeGroupRequest {
            volume_group_id: "g".into(),
            secrets: secrets.clone(),
        }
        .encode_to_vec(),
        vg::ControllerGetVolumeGroupRequest {
            volume_group_id: "g".into(),
            secrets: secrets.clone(),
        }
        .encode_to_vec(),
    ] {
        let f = fields(&bytes);
        assert_eq!(string(&f, 1).as_deref(), Some("g"));
        assert_eq!(map(&f, 2), secrets);
    }

    let f = fields(
        &vg::ListVolumeGroupsRequest {
            max_entries: 7,
            starting_token: "t".into(),
            secrets: secrets.clone(),
        }
        .encode_to_vec(),
    );
    assert_eq!(varint(&f, 1), Some(7));
    assert_eq!(string(&f, 2).as_deref(), Some("t"));
    assert_eq!(map(&f, 3), secrets);
}

#[test]
fn volume_group_answers_decode_from_contract_bytes() {
    use lifeline_csi_client::proto::identity::GetCapabilitiesResponse;
    use lifeline_csi_client::proto::volumegroup::VolumeGroup as Group;
    use lifeline_csi_client::{Capabilities, VolumeGroup};
    // volume_group_id(1) = "g", volumes(3) = [ csi.v1.Volume { volume_id(2) = "v1" } ]
    let bytes = [0x0a, 0x01, b'g', 0x1a, 0x04, 0x12, 0x02, b'v', b'1'];
    let group: VolumeGroup = Group::decode(&bytes[..]).unwrap().into();
    assert_eq!(group.id, "g");
    assert_eq!(group.volume_ids, ["v1"]);
    // capabilities(1) = [ {volume_group(5): {type(1): MODIFY_VOLUME_GROUP=4}},
    //                     {volume_group(5): {type(1): VOLUME_GROUP=1}} ]
    let bytes = [
        0x0a, 0x04, 0x2a, 0x02, 0x08, 0x04, 0x0a, 0x04, 0x2a, 0x02, 0x08, 0x01,
    ];
    let caps: Capabilities = GetCapabilitiesResponse::decode(&bytes[..]).unwrap().into();
    assert!(caps.modify_volume_group && caps.volume_group);
    assert!(!caps.list_volume_groups && !caps.volume_replication);
}

/// CSI's CreateVolumeRequest as external-provisioner sends it, decoded with the numbers of the
/// CSI spec (csi.v1): name 1, capacity_range 2 {required_bytes 1, limit_bytes 2},
/// volume_capabilities 3 {mount 2 {fs_type 1}, access_mode 3 {mode 1}}, parameters 4,
/// secrets 5, volume_content_source 6 {snapshot 1 {snapshot_id 1} | volume 2 {volume_id 1}}.
#[test]
fn csi_create_volume_uses_the_specs_numbers() {
    use lifeline_csi_client::proto::csi::v1 as csi;
    let request = csi::CreateVolumeRequest {
        name: "pvc-1".into(),
        capacity_range: Some(csi::CapacityRange {
            required_bytes: 1 << 30,
            limit_bytes: 2 << 30,
        }),
        volume_capabilities: vec![csi::VolumeCapability {
            access_type: Some(csi::volume_capability::AccessType::Mount(
                csi::volume_capability::MountVolume {
                    fs_type: "ext4".into(),
                    ..Default::default()
                },
            )),
            access_mode: Some(csi::volume_capability::AccessMode { mode: 7 }),
        }],
        parameters: [("p".to_owned(), "v".to_owned())].into(),
        secrets: [("s".to_owned(), "k".to_owned())].into(),
        volume_content_source: Some(csi::VolumeContentSource {
            r#type: Some(csi::volume_content_source::Type::Snapshot(
                csi::volume_content_source::SnapshotSource {
                    snapshot_id: "snap-1".into(),
                },
            )),
        }),
        ..Default::default()
    };
    let f = fields(&request.encode_to_vec());
    assert_eq!(string(&f, 1).as_deref(), Some("pvc-1"));
    let range = nested(&f, 2);
    assert_eq!(
        (varint(&range, 1), varint(&range, 2)),
        (Some(1 << 30), Some(2 << 30))
    );
    let capability = nested(&f, 3);
    assert_eq!(string(&nested(&capability, 2), 1).as_deref(), Some("ext4"));
    assert_eq!(
        varint(&nested(&capability, 3), 1),
        Some(7),
        "SINGLE_NODE_MULTI_WRITER"
    );
    assert_eq!(map(&f, 4), expected(&[("p", "v")]));
    assert_eq!(map(&f, 5), expected(&[("s", "k")]));
    let source = nested(&f, 6);
    assert_eq!(string(&nested(&source, 1), 1).as_deref(), Some("snap-1"));
    assert!(
        !format!("{request:?}").contains("\"k\""),
        "secrets print as keys only"
    );
}

/// Snapshots and the rest, with the spec's numbers: CreateSnapshotRequest {source_volume_id 1,
/// name 2, secrets 3, parameters 4}; Snapshot {size_bytes 1, snapshot_id 2, source_volume_id 3,
/// ready_to_use 5}; DeleteVolumeRequest/DeleteSnapshotRequest {id 1, secrets 2};
/// ControllerServiceCapability {rpc 1 {type 1}}; PluginCapability {service 1 {type 1}};
/// GetPluginInfoResponse {name 1, vendor_version 2}.
#[test]
fn csi_snapshots_capabilities_and_identity_use_the_specs_numbers() {
    use lifeline_csi_client::proto::csi::v1 as csi;
    let create = csi::CreateSnapshotRequest {
        source_volume_id: "vol".into(),
        name: "snap".into(),
        secrets: [("s".to_owned(), "k".to_owned())].into(),
        parameters: [("p".to_owned(), "v".to_owned())].into(),
    };
    let f = fields(&create.encode_to_vec());
    assert_eq!(string(&f, 1).as_deref(), Some("vol"));
    assert_eq!(string(&f, 2).as_deref(), Some("snap"));
    assert_eq!(map(&f, 3), expected(&[("s", "k")]));
    assert_eq!(map(&f, 4), expected(&[("p", "v")]));
    let snapshot = csi::Snapshot {
        size_bytes: 5,
        snapshot_id: "snap".into(),
        source_volume_id: "vol".into(),
        ready_to_use: true,
        ..Default::default()
    };
    let f = fields(&snapshot.encode_to_vec());
    assert_eq!(varint(&f, 1), Some(5));
    assert_eq!(string(&f, 2).as_deref(), Some("snap"));
    assert_eq!(string(&f, 3).as_deref(), Some("vol"));
    assert_eq!(varint(&f, 5), Some(1));
    for bytes in [
        csi::DeleteVolumeRequest {
            volume_id: "id".into(),
            secrets: [("s".to_owned(), "k".to_owned())].into(),
        }
        .encode_to_vec(),
        csi::DeleteSnapshotRequest {
            snapshot_id: "id".into(),
            secrets: [("s".to_owned(), "k".to_owned())].into(),
        }
        .encode_to_vec(),
    ] {
        let f = fields(&bytes);
        assert_eq!(string(&f, 1).as_deref(), Some("id"));
        assert_eq!(map(&f, 2), expected(&[("s", "k")]));
    }
    let rpc = csi::ControllerServiceCapability {
        r#type: Some(csi::controller_service_capability::Type::Rpc(
            csi::controller_service_capability::Rpc { r#type: 7 },
        )),
    };
    assert_eq!(
        varint(&nested(&fields(&rpc.encode_to_vec()), 1), 1),
        Some(7),
        "CLONE_VOLUME"
    );
    let plugin = csi::PluginCapability {
        r#type: Some(csi::plugin_capability::Type::Service(
            csi::plugin_capability::Service { r#type: 1 },
        )),
    };
    assert_eq!(
        varint(&nested(&fields(&plugin.encode_to_vec()), 1), 1),
        Some(1),
        "CONTROLLER_SERVICE"
    );
    let info = csi::GetPluginInfoResponse {
        name: "hostpath.lifeline.dev".into(),
        vendor_version: "0.1.0".into(),
        ..Default::default()
    };
    let f = fields(&info.encode_to_vec());
    assert_eq!(string(&f, 1).as_deref(), Some("hostpath.lifeline.dev"));
    assert_eq!(string(&f, 2).as_deref(), Some("0.1.0"));
}
