//! The generated server side, for drivers (the reference hostpath driver) and tests.

pub use crate::proto::identity::identity_server::{Identity, IdentityServer};
pub use crate::proto::replication::controller_server::{Controller, ControllerServer};
pub use crate::proto::volumegroup::controller_server::{
    Controller as VolumeGroupController, ControllerServer as VolumeGroupServer,
};
