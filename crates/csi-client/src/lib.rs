//! Client for the csi-addons replication, volume group and identity gRPC services.
//!
//! The replication controller talks to storage drivers only through this crate. It speaks the
//! csi-addons wire contract exactly (`proto/`), classifies every gRPC status the way the
//! contract's error table says the caller must react, and never puts a secret value in a log:
//! [`Secrets`] prints key names only, and so do the generated requests' `Debug`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use lifeline_csi_client::{connect, ReplicationRequest, Secrets, Target};
//! let client = connect("unix:///csi/csi-addons.sock")?;
//! if client.capabilities().await?.volume_replication {
//!     let request = ReplicationRequest::new(Target::Volume("vol-1".into()))
//!         .with_secrets(Secrets::from_iter([("key", "value")]));
//!     client.enable(&request).await?;
//!     client.promote(&request, false).await?;
//! }
//! # Ok(()) }
//! ```

mod client;
mod endpoint;
mod error;
#[cfg(feature = "fake")]
pub mod fake;
mod group;
mod identity;
mod info;
mod method;
pub mod proto;
mod request;
mod secrets;
#[cfg(feature = "server")]
pub mod server;
pub mod tls;

pub use client::{Budget, CallObserver, CsiClient, DEFAULT_TIMEOUT};
pub use endpoint::{Endpoint, EndpointError, connect};
pub use error::{CsiError, ErrorClass, code_name};
pub use group::{GroupPage, VolumeGroup};
pub use identity::{Capabilities, DriverIdentity};
pub use info::{Destination, ReplicationHealth, ReplicationInfo};
pub use method::Method;
pub use request::{ReplicationRequest, Target};
pub use secrets::Secrets;
