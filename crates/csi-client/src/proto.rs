//! The generated protobuf messages and gRPC stubs, one module per protobuf package.
//!
//! Requests that carry `secrets` do not derive `Debug` (see `build.rs`): their hand-written
//! `Debug` below prints the secret *keys* only, so logging a request can never leak a value.

#[allow(clippy::all, missing_docs)]
pub mod replication {
    tonic::include_proto!("replication");
}

#[allow(clippy::all, missing_docs)]
pub mod identity {
    tonic::include_proto!("identity");
}

/// The CSI spec's messages the volume group service carries (package `csi.v1`).
#[allow(clippy::all, missing_docs)]
pub mod csi {
    pub mod v1 {
        tonic::include_proto!("csi.v1");
    }
}

#[allow(clippy::all, missing_docs)]
pub mod volumegroup {
    tonic::include_proto!("volumegroup");
}

use std::fmt;

use replication::*;
use volumegroup::*;

/// Debug for a request with a `secrets` map: every field as usual, secrets as their keys.
macro_rules! redacted_debug {
    ($ty:ident { $($field:ident),* }) => {
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), &self.$field))*
                    .field("secrets", &crate::secrets::KeysOnly(&self.secrets))
                    .finish()
            }
        }
    };
}

redacted_debug!(EnableVolumeReplicationRequest {
    volume_id,
    parameters,
    replication_id,
    replication_source
});
redacted_debug!(DisableVolumeReplicationRequest {
    volume_id,
    parameters,
    replication_id,
    replication_source
});
redacted_debug!(PromoteVolumeRequest {
    volume_id,
    force,
    parameters,
    replication_id,
    replication_source
});
redacted_debug!(DemoteVolumeRequest {
    volume_id,
    force,
    parameters,
    replication_id,
    replication_source
});
redacted_debug!(ResyncVolumeRequest {
    volume_id,
    force,
    parameters,
    replication_id,
    replication_source
});
redacted_debug!(GetVolumeReplicationInfoRequest {
    volume_id,
    replication_id,
    replication_source
});
redacted_debug!(GetReplicationDestinationInfoRequest { replication_source });
redacted_debug!(CreateVolumeGroupRequest {
    name,
    parameters,
    volume_ids
});
redacted_debug!(ModifyVolumeGroupMembershipRequest {
    volume_group_id,
    volume_ids,
    parameters
});
redacted_debug!(DeleteVolumeGroupRequest { volume_group_id });
redacted_debug!(ListVolumeGroupsRequest {
    max_entries,
    starting_token
});
redacted_debug!(ControllerGetVolumeGroupRequest { volume_group_id });

// The CSI requests that carry secrets (the provisioner's and snapshotter's).
mod csi_redacted {
    use std::fmt;

    use super::csi::v1::{
        CreateSnapshotRequest, CreateVolumeRequest, DeleteSnapshotRequest, DeleteVolumeRequest,
    };

    redacted_debug!(CreateVolumeRequest {
        name,
        capacity_range,
        volume_capabilities,
        parameters,
        volume_content_source,
        accessibility_requirements,
        mutable_parameters
    });
    redacted_debug!(DeleteVolumeRequest { volume_id });
    redacted_debug!(CreateSnapshotRequest {
        source_volume_id,
        name,
        parameters
    });
    redacted_debug!(DeleteSnapshotRequest { snapshot_id });
}
