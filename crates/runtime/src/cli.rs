//! Command-line groups every controller flattens into its own arguments. Each flag has an
//! environment-variable equivalent (`LIFELINE_…`) so a Helm chart can set either.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Clone, Debug, Args)]
pub struct LogArgs {
    /// Log format.
    #[arg(long, env = "LIFELINE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter in `tracing` syntax, e.g. `info` or `info,lifeline=debug`.
    #[arg(long, env = "LIFELINE_LOG", default_value = "info")]
    pub log_level: String,
}

#[derive(Clone, Debug, Args)]
pub struct AdminArgs {
    /// Address of the admin HTTP endpoint serving /healthz, /readyz and /metrics.
    #[arg(long, env = "LIFELINE_ADMIN_ADDRESS", default_value = "0.0.0.0:8080")]
    pub admin_address: SocketAddr,
    /// Serve the admin endpoint over HTTPS with tls.crt and tls.key from this directory.
    #[arg(long, env = "LIFELINE_ADMIN_TLS_DIR")]
    pub admin_tls_dir: Option<std::path::PathBuf>,
    /// Serve the admin endpoint over HTTPS with a self-signed certificate made at start (what a
    /// scraper that checks the token, not the certificate, needs); ignored with --admin-tls-dir.
    #[arg(long, env = "LIFELINE_ADMIN_SELF_SIGNED", default_value_t = false)]
    pub admin_self_signed: bool,
    /// /metrics only for a bearer token the API server authenticates (TokenReview) and
    /// authorises for get on /metrics (SubjectAccessReview); needs HTTPS (--admin-tls-dir or
    /// --admin-self-signed).
    #[arg(long, env = "LIFELINE_METRICS_AUTH", default_value_t = false)]
    pub metrics_auth: bool,
}

#[derive(Clone, Debug, Args)]
pub struct LeaderArgs {
    /// Only the holder of a Lease reconciles; run with this when replicas > 1.
    #[arg(long, env = "LIFELINE_LEADER_ELECT", default_value_t = false)]
    pub leader_elect: bool,

    /// Name of the Lease used for leader election (defaults to the controller's name).
    #[arg(long, env = "LIFELINE_LEADER_ELECTION_LEASE_NAME")]
    pub leader_election_lease_name: Option<String>,

    /// Namespace of the Lease (defaults to the pod's namespace from POD_NAMESPACE, else "default").
    #[arg(long, env = "LIFELINE_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,

    /// How long a Lease stays valid without renewal; a standby takes over after at most this long.
    #[arg(long, env = "LIFELINE_LEASE_DURATION", value_parser = parse_duration, default_value = "15s")]
    pub lease_duration: Duration,

    /// How often the leader renews the Lease, and how often a standby retries acquiring it.
    #[arg(long, env = "LIFELINE_LEASE_RENEW_PERIOD", value_parser = parse_duration, default_value = "5s")]
    pub lease_renew_period: Duration,
}

/// Parses `500ms`, `30s`, `5m`, `2h` (a plain number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 30s, 5m or 2h"))?;
    let seconds = |factor: u64| {
        value
            .checked_mul(factor)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{text:?} is too long"))
    };
    match unit {
        "ms" => Ok(Duration::from_millis(value)),
        "" | "s" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        _ => Err(format!(
            "{text:?} has unknown unit {unit:?}; use ms, s, m or h"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("5d").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("m").is_err());
    }
}
