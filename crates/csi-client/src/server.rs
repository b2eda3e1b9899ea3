//! The generated server side, for drivers (the reference hostpath driver) and tests.

/// The CSI spec's own services (csi.v1), which the CSI sidecars call.
pub use crate::proto::csi::v1::controller_server::{
    Controller as CsiController, ControllerServer as CsiControllerServer,
};
pub use crate::proto::csi::v1::identity_server::{
    Identity as CsiIdentity, IdentityServer as CsiIdentityServer,
};
pub use crate::proto::identity::identity_server::{Identity, IdentityServer};
pub use crate::proto::replication::controller_server::{Controller, ControllerServer};
pub use crate::proto::volumegroup::controller_server::{
    Controller as VolumeGroupController, ControllerServer as VolumeGroupServer,
};
