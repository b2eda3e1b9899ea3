//! Generates the gRPC code from `proto/` with a vendored `protoc`, so building needs no system
//! protobuf compiler.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let include = protoc_bin_vendored::include_path()?;

    let proto_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        proto_dir.join("replication.proto"),
        proto_dir.join("identity.proto"),
        proto_dir.join("csi.proto"),
        proto_dir.join("volumegroup.proto"),
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    // Requests that carry `secrets` get a hand-written Debug that prints key names only.
    let with_secrets = [
        "replication.EnableVolumeReplicationRequest",
        "replication.DisableVolumeReplicationRequest",
        "replication.PromoteVolumeRequest",
        "replication.DemoteVolumeRequest",
        "replication.ResyncVolumeRequest",
        "replication.GetVolumeReplicationInfoRequest",
        "replication.GetReplicationDestinationInfoRequest",
        "volumegroup.CreateVolumeGroupRequest",
        "volumegroup.ModifyVolumeGroupMembershipRequest",
        "volumegroup.DeleteVolumeGroupRequest",
        "volumegroup.ListVolumeGroupsRequest",
        "volumegroup.ControllerGetVolumeGroupRequest",
        "csi.v1.CreateVolumeRequest",
        "csi.v1.DeleteVolumeRequest",
        "csi.v1.CreateSnapshotRequest",
        "csi.v1.DeleteSnapshotRequest",
    ];
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    // Parameters and secrets are maps of strings: BTreeMap keeps them ordered in logs and tests.
    config.btree_map(["."]);
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .skip_debug(with_secrets)
        .compile_with_config(config, &files, &[proto_dir, include])?;
    Ok(())
}
