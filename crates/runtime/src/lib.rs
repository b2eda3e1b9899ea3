//! What every Lifeline controller process shares, so each controller's `main` stays thin:
//! command-line groups ([`cli`]), logging ([`logging`]), the admin HTTP endpoint with
//! `/healthz`, `/readyz` and `/metrics` ([`admin`]), Lease-based leader election ([`leader`])
//! and the shutdown signal ([`shutdown`]).

pub mod admin;
pub mod cli;
pub mod leader;
pub mod lifecycle;
pub mod logging;
pub mod shutdown;

pub use admin::Health;
pub use cli::{AdminArgs, LeaderArgs, LogArgs, LogFormat};
pub use leader::{LeaderElector, LeaderError, Leadership};
