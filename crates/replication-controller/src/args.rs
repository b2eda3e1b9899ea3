//! Command-line flags (each with an environment-variable equivalent).

use std::time::Duration;

use clap::{Args, Parser};
use lifeline_runtime::cli::parse_duration;
use lifeline_runtime::{AdminArgs, LeaderArgs, LogArgs};

/// Drives csi-addons replication drivers through VolumeReplication objects.
#[derive(Clone, Debug, Parser)]
#[command(name = "lifeline-replication-controller", version, about, long_about = None)]
pub struct ControllerArgs {
    #[command(flatten)]
    pub drivers: DriverArgs,

    /// Only watch VolumeReplications in this namespace (default: all namespaces).
    #[arg(long, env = "LIFELINE_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,

    /// How many VolumeReplications are reconciled at once.
    #[arg(long, env = "LIFELINE_CONCURRENCY", default_value_t = 4)]
    pub concurrency: u16,

    /// How often a secondary whose resync is not ready yet is asked again.
    #[arg(long, env = "LIFELINE_RESYNC_POLL_INTERVAL", value_parser = parse_duration, default_value = "10s")]
    pub resync_poll_interval: Duration,

    /// The longest time between two GetVolumeReplicationInfo calls for one volume: replication
    /// info is refreshed at the class's schedulingInterval or this, whichever is shorter, so the
    /// reported data age is never more than this out of date
    /// (`lifeline_volume_replication_info_age_seconds` says by how much it is).
    #[arg(long, env = "LIFELINE_INFO_REFRESH", value_parser = parse_duration, default_value = "1m")]
    pub info_refresh: Duration,

    #[command(flatten)]
    pub log: LogArgs,

    #[command(flatten)]
    pub admin: AdminArgs,

    #[command(flatten)]
    pub leader: LeaderArgs,
}

/// How the controller reaches drivers: sidecar mode (one driver on a local socket) or central
/// mode (several drivers by name, usually over TCP).
#[derive(Clone, Debug, Args)]
pub struct DriverArgs {
    /// Sidecar mode: the driver (VolumeReplicationClass provisioner) this controller serves;
    /// VolumeReplications of other provisioners are left to other controllers.
    #[arg(long, env = "LIFELINE_DRIVER_NAME", requires = "csi_address")]
    pub driver_name: Option<String>,

    /// Sidecar mode: the driver's csi-addons endpoint, e.g. unix:///csi/csi-addons.sock.
    #[arg(long, env = "LIFELINE_CSI_ADDRESS", requires = "driver_name")]
    pub csi_address: Option<String>,

    /// Central mode: NAME=URI of a driver's csi-addons endpoint (tcp://host:port or unix:///path);
    /// repeat for several drivers. VolumeReplications of unlisted provisioners get a condition
    /// saying no endpoint is configured.
    #[arg(
        long = "driver-endpoint",
        env = "LIFELINE_DRIVER_ENDPOINTS",
        value_delimiter = ',',
        conflicts_with_all = ["driver_name", "csi_address"],
        value_parser = parse_driver_endpoint,
    )]
    pub driver_endpoints: Vec<(String, String)>,

    /// Deadline of each call to a driver.
    #[arg(long, env = "LIFELINE_RPC_TIMEOUT", value_parser = parse_duration, default_value = "60s")]
    pub rpc_timeout: Duration,
    /// PEM CA certificates that sign the drivers' certificates, for https:// endpoints (central
    /// mode over TLS: the class's secrets travel with every call).
    #[arg(long, env = "LIFELINE_DRIVER_CA_FILE")]
    pub driver_ca_file: Option<std::path::PathBuf>,
}

fn parse_driver_endpoint(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, uri)) if !name.trim().is_empty() && !uri.trim().is_empty() => {
            Ok((name.trim().to_owned(), uri.trim().to_owned()))
        }
        _ => Err(format!(
            "{text:?} is not NAME=URI, e.g. hostpath.lifeline.dev=tcp://10.0.0.5:9000"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_are_consistent_and_documented() {
        ControllerArgs::command().debug_assert();
        let help = ControllerArgs::command().render_long_help().to_string();
        for flag in [
            "--driver-name",
            "--csi-address",
            "--driver-endpoint",
            "--rpc-timeout",
            "--log-format",
            "--admin-address",
            "--leader-elect",
            "--resync-poll-interval",
        ] {
            assert!(help.contains(flag), "{flag} missing from --help");
        }
    }

    #[test]
    fn sidecar_needs_both_name_and_address() {
        let err = ControllerArgs::try_parse_from(["x", "--driver-name", "d"]).unwrap_err();
        assert!(err.to_string().contains("--csi-address"), "{err}");
    }

    #[test]
    fn central_endpoints_repeat_and_reject_bad_pairs() {
        let args = ControllerArgs::try_parse_from([
            "x",
            "--driver-endpoint",
            "a=tcp://h:1",
            "--driver-endpoint",
            "b=unix:///s",
        ])
        .unwrap();
        assert_eq!(
            args.drivers.driver_endpoints,
            vec![
                ("a".to_owned(), "tcp://h:1".to_owned()),
                ("b".to_owned(), "unix:///s".to_owned())
            ]
        );
        let err = ControllerArgs::try_parse_from(["x", "--driver-endpoint", "nope"]).unwrap_err();
        assert!(err.to_string().contains("NAME=URI"), "{err}");
        let err = ControllerArgs::try_parse_from([
            "x",
            "--driver-endpoint",
            "a=tcp://h:1",
            "--driver-name",
            "a",
            "--csi-address",
            "unix:///s",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("cannot be used with"), "{err}");
    }
}
