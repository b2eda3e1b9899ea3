//! Command-line flags: the sites and output shared by every command, then one subcommand.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::sites::SiteSpec;
pub use crate::volsync::build::Method;
pub use crate::volsync::settings::ServiceType;

/// The DR runbook as checked commands across two clusters. Sites are named kubeconfigs.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-lifeline",
    bin_name = "kubectl lifeline",
    version,
    about,
    long_about = None,
    after_help = "Examples:
  export LIFELINE_SITES=a=$HOME/.kube/site-a.yaml,b=$HOME/.kube/site-b.yaml
  kubectl lifeline status -n shop                     # exit 0: every volume protected
  kubectl lifeline --kubeconfig both.yaml --context east --context west status
  kubectl lifeline protect --from a --to b -n shop --dry-run
  kubectl lifeline protect --from a --to b -n shop --method volsync --interval 5m
  kubectl lifeline migrate --from a --to b -n shop    # planned; rerun it if interrupted
  kubectl lifeline failover --to b -n shop            # site a gone: shows what is lost, asks
  kubectl lifeline failback --to a --from b -n shop

Exit codes: 0 verified (status: protected or syncing), 1 something to act on, 2 usage or
local error (a bad kubeconfig, credentials, RBAC) before anything was read or written."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// A site: NAME=KUBECONFIG[#CONTEXT]; repeat for each site. Without it: LIFELINE_SITES
    /// (comma-separated), else one site per context of the kubeconfig (--kubeconfig, else
    /// KUBECONFIG or ~/.kube/config), named after the context.
    #[arg(long = "site", global = true, value_name = "NAME=KUBECONFIG[#CONTEXT]")]
    pub sites: Vec<SiteSpec>,

    /// The kubeconfig whose contexts are the sites (kubectl's flag; instead of --site).
    #[arg(long, global = true, conflicts_with = "sites", value_name = "PATH")]
    pub kubeconfig: Option<std::path::PathBuf>,

    /// A context of that kubeconfig to use as a site, named after it; repeat for each site
    /// (default: every context).
    #[arg(
        long = "context",
        global = true,
        conflicts_with = "sites",
        value_name = "NAME"
    )]
    pub contexts: Vec<String>,

    /// The namespace of the VolumeReplications (default: the first site's context namespace,
    /// else `default`, as kubectl).
    #[arg(short = 'n', long, global = true, conflicts_with = "all_namespaces")]
    pub namespace: Option<String>,

    /// Every namespace (commands that only read).
    #[arg(short = 'A', long, global = true)]
    pub all_namespaces: bool,

    /// How long a command may take before it gives up, e.g. 30s, 5m.
    #[arg(long, global = true, default_value = "2m", value_parser = parse_duration)]
    pub timeout: Duration,

    /// How to print the result.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    /// The table with more columns (`status`: Replicating, time since the last switch).
    Wide,
    Json,
    Yaml,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show every replicated claim at every site, with a verdict per volume.
    ///
    /// Desired and current state, health, last sync and its age, the RPO bound it judges by
    /// (schedulingInterval + last sync duration + the status's lag), and a verdict: protected,
    /// syncing, stale, degraded, split-brain, no-primary, unprotected or site-unreachable.
    /// Exits 0 only if every volume is protected or syncing.
    #[command(
        after_help = "Examples:\n  kubectl lifeline status -n shop\n  kubectl lifeline status -A -o wide\n  kubectl lifeline status -n shop -o yaml"
    )]
    Status,
    /// Set up site --to as standby for the namespace's volumes at site --from.
    ///
    /// For every VolumeReplication at --from: the VolumeReplicationClass (the Secret it names must exist at --to), a static
    /// PersistentVolume per volume (same CSI driver and volumeHandle, Retain, pre-bound to the
    /// new claim), the claim (same name, bound to it) and a VolumeReplication with
    /// replicationState: secondary. For a claim no VolumeReplication covers (--method
    /// volsync; or auto, when its CSI driver has no VolumeReplicationClass and --interval is
    /// given): a VolSync rsync-TLS pair — a pre-shared key Secret at both sites (never
    /// printed), the claim and a ReplicationDestination into it at --to, a ReplicationSource
    /// at --from pushing a snapshot every --interval. Idempotent: what exists is kept.
    #[command(
        after_help = "Examples:\n  kubectl lifeline protect --from a --to b -n shop --dry-run\n  kubectl lifeline protect --from a --to b -n shop --method volsync --interval 5m"
    )]
    Protect {
        /// The site whose volumes are protected (the primary).
        #[arg(long)]
        from: String,
        /// The site to set up as standby.
        #[arg(long)]
        to: String,
        /// Print the objects it would create, and create nothing.
        #[arg(long)]
        dry_run: bool,
        /// What protects each claim.
        #[arg(long, value_enum, default_value_t = Method::Auto)]
        method: Method,
        /// How often a VolSync pair syncs (whole minutes up to 59m, whole hours up to 24h).
        #[arg(long, value_parser = parse_duration)]
        interval: Option<Duration>,
        /// How the standby's VolSync destination is reached from the primary's cluster.
        #[arg(long, value_enum, default_value_t = ServiceType::LoadBalancer)]
        service_type: ServiceType,
    },
    /// Planned migration of the namespace from site --from to site --to, nothing lost.
    ///
    /// Checks every volume is protected and both sites answer; scales to zero the Deployments
    /// and StatefulSets at --from that mount the claims (their counts remembered in the
    /// lifeline.dev/replicas annotation) and waits until no Pod mounts them; demotes at --from
    /// and waits until it is Secondary (the final sync shipped); promotes at --to (no force
    /// needed) and waits until it is a healthy Primary; scales the same-named workloads at --to
    /// up to the remembered counts. Resumable: a rerun goes on from what the sites say and
    /// never demotes or promotes twice.
    #[command(after_help = "Example:\n  kubectl lifeline migrate --from a --to b -n shop")]
    Migrate {
        /// The site that holds the primaries now.
        #[arg(long)]
        from: String,
        /// The site to move them to.
        #[arg(long)]
        to: String,
        /// Switch volumes whose last sync is older than the RPO bound too.
        #[arg(long)]
        allow_stale: bool,
    },
    /// Disaster failover to site --to when the other site is gone.
    ///
    /// Shows per volume the data age at --to (what is lost) and the RPO bound, asks for a yes (or --yes), promotes at --to (the controller
    /// promotes with force when the driver refuses), waits until Primary, scales up the
    /// workloads at --to that mount the claims to their lifeline.dev/replicas counts. Refuses
    /// while another named site answers: use migrate then.
    #[command(after_help = "Example:\n  kubectl lifeline failover --to b -n shop")]
    Failover {
        /// The surviving site.
        #[arg(long)]
        to: String,
        /// Go on without asking: writes after each volume's last sync are lost.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// After a failover, move back to the recovered site --to from site --from.
    ///
    /// Demotes --to's old primaries so they resync from --from, waits until --to reports the resync complete,
    /// then switches back as migrate does (scale down at --from, demote --from, promote --to,
    /// scale up at --to). Resumable like migrate.
    #[command(after_help = "Example:\n  kubectl lifeline failback --to a --from b -n shop")]
    Failback {
        /// The recovered site, to be primary again.
        #[arg(long)]
        to: String,
        /// The site that took over in the failover.
        #[arg(long)]
        from: String,
        /// Go on without asking: writes made at --to after its last sync are discarded.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// `30s`, `5m`, `1h`, or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| text.split_at(i))
        .unwrap_or((text, "s"));
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; write e.g. 30s, 5m or 1h"))?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("{text:?}: the unit must be s, m or h")),
    };
    Ok(Duration::from_secs(value.saturating_mul(unit)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_help_is_consistent_and_flags_parse() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "kubectl-lifeline",
            "status",
            "--site",
            "a=/a.yaml",
            "--site",
            "b=/b.yaml#ctx",
            "-n",
            "shop",
            "-o",
            "json",
            "--timeout",
            "30s",
        ])
        .unwrap();
        assert_eq!(cli.global.sites.len(), 2);
        assert_eq!(cli.global.output, Output::Json);
        assert_eq!(cli.global.timeout, Duration::from_secs(30));
        for bad in [
            &["kubectl-lifeline", "status", "--site", "nope"][..],
            &["kubectl-lifeline", "status", "--timeout", "5x"],
            &["kubectl-lifeline", "status", "-n", "a", "-A"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        let protect = Cli::try_parse_from([
            "kubectl-lifeline",
            "protect",
            "--from",
            "a",
            "--to",
            "b",
            "--dry-run",
        ])
        .unwrap();
        assert!(matches!(
            protect.command,
            Command::Protect { dry_run: true, .. }
        ));
        assert!(Cli::try_parse_from(["kubectl-lifeline", "protect", "--from", "a"]).is_err());
        let migrate = Cli::try_parse_from([
            "kubectl-lifeline",
            "migrate",
            "--from",
            "a",
            "--to",
            "b",
            "--allow-stale",
        ])
        .unwrap();
        assert!(matches!(
            migrate.command,
            Command::Migrate {
                allow_stale: true,
                ..
            }
        ));
        let failover =
            Cli::try_parse_from(["kubectl-lifeline", "failover", "--to", "b", "-y"]).unwrap();
        assert!(matches!(
            failover.command,
            Command::Failover { yes: true, .. }
        ));
        assert!(Cli::try_parse_from(["kubectl-lifeline", "failback", "--to", "a"]).is_err());
    }
}
