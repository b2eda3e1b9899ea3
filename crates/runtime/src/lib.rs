//! What every Lifeline controller process shares, so each controller's `main` stays thin:
//! command-line groups ([`cli`]), logging ([`logging`]), the admin HTTP endpoint with
//! `/healthz`, `/readyz` and `/metrics` ([`admin`]), Lease-based leader election ([`leader`]),
//! the shutdown signal ([`shutdown`]), the Kubernetes client ([`client`]) and the declared
//! RBAC rules ([`rbac`]).

pub mod admin;
pub mod admin_security;
pub mod cli;
pub mod client;
pub mod events;
pub mod fence;
pub mod leader;
pub mod lifecycle;
pub mod logging;
pub mod rbac;
pub mod shutdown;

pub use admin::Health;
pub use cli::{AdminArgs, LeaderArgs, LogArgs, LogFormat};
pub use fence::Fence;
pub use leader::{LeaderElector, LeaderError, Leadership};
