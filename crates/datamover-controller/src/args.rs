//! Command-line flags (each with an environment-variable equivalent).

use clap::{Args, Parser};
use lifeline_api::foreign::volsync::ResticRetainPolicy;
use lifeline_runtime::{AdminArgs, LeaderArgs, LogArgs};

use crate::settings::Settings;

/// Moves CSI snapshot data to restic repositories and back through VolSync.
#[derive(Clone, Debug, Parser)]
#[command(name = "lifeline-datamover-controller", version, about, long_about = None)]
pub struct ControllerArgs {
    /// How many backups move data at once (counted from the cluster's VolumeSnapshotBackups).
    #[arg(long, env = "LIFELINE_MAX_CONCURRENT_BACKUPS", default_value_t = 4)]
    pub max_concurrent_backups: usize,

    /// How many restores move data at once.
    #[arg(long, env = "LIFELINE_MAX_CONCURRENT_RESTORES", default_value_t = 4)]
    pub max_concurrent_restores: usize,

    #[command(flatten)]
    pub mover: MoverArgs,

    #[command(flatten)]
    pub velero: VeleroArgs,

    /// Work only in this protected namespace: watch working objects there only and refuse
    /// requests naming another (the Helm chart sets it, so the controller's Secret, claim and
    /// VolSync permissions are a Role in that namespace, not cluster-wide).
    #[arg(long, env = "LIFELINE_PROTECTED_NAMESPACE")]
    pub protected_namespace: Option<String>,

    #[command(flatten)]
    pub log: LogArgs,

    #[command(flatten)]
    pub admin: AdminArgs,

    #[command(flatten)]
    pub leader: LeaderArgs,
}

/// Velero's pluggable data mover (OADP 1.3+): DataUpload and DataDownload.
#[derive(Clone, Debug, Args)]
pub struct VeleroArgs {
    /// The mover name Velero's requests carry in spec.datamover (`velero backup create
    /// --data-mover NAME`); requests naming any other mover are never touched. Also the name
    /// of the ConfigMap holding the mover's settings, in Velero's namespace.
    #[arg(long, env = "LIFELINE_DATAMOVER_NAME", default_value = "lifeline")]
    pub datamover_name: String,

    /// Serve Velero's DataUploads (needs Velero's CRDs; skipped with a log line when absent).
    #[arg(long, env = "LIFELINE_VELERO_UPLOADS", default_value_t = true, action = clap::ArgAction::Set)]
    pub velero_uploads: bool,

    /// Serve Velero's DataDownloads (needs Velero's CRDs; skipped with a log line when absent).
    #[arg(long, env = "LIFELINE_VELERO_DOWNLOADS", default_value_t = true, action = clap::ArgAction::Set)]
    pub velero_downloads: bool,
}

impl VeleroArgs {
    /// The name, checked: a DNS label (it names a ConfigMap and folders of the repository),
    /// and never `velero`, which is Velero's built-in mover's.
    pub fn name(&self) -> Result<String, String> {
        let name = self.datamover_name.trim();
        let label = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !label {
            return Err(format!(
                "--datamover-name {name:?} must be a DNS label (lowercase letters, digits, '-')"
            ));
        }
        if name == "velero" {
            return Err("--datamover-name cannot be \"velero\": that name is Velero's built-in data mover's".into());
        }
        Ok(name.to_owned())
    }
}

#[derive(Clone, Debug, Args)]
pub struct MoverArgs {
    /// Storage class of backup/restore claims (default: the source claim's).
    #[arg(long, env = "LIFELINE_STORAGE_CLASS")]
    pub storage_class: Option<String>,

    /// Access mode of backup/restore claims (default: the source claim's).
    #[arg(long, env = "LIFELINE_ACCESS_MODE")]
    pub access_mode: Option<String>,

    /// Service account of VolSync's mover pods.
    #[arg(long, env = "LIFELINE_MOVER_SERVICE_ACCOUNT")]
    pub mover_service_account: Option<String>,

    /// User id the mover runs as.
    #[arg(long, env = "LIFELINE_MOVER_RUN_AS_USER")]
    pub mover_run_as_user: Option<i64>,

    /// Seconds between reads of a running mover's log for the request's `status.progress`
    /// (VolSync's mover prints every 10 s); 0 turns progress reports off.
    #[arg(long, env = "LIFELINE_PROGRESS_INTERVAL_SECONDS", default_value_t = 10)]
    pub progress_interval_seconds: u64,

    /// restic retention: keep the last N snapshots of each volume (default: keep all).
    #[arg(long, env = "LIFELINE_RETAIN_LAST")]
    pub retain_last: Option<i32>,

    /// restic retention: keep one snapshot per day for N days.
    #[arg(long, env = "LIFELINE_RETAIN_DAILY")]
    pub retain_daily: Option<i32>,

    /// restic retention: keep one snapshot per week for N weeks.
    #[arg(long, env = "LIFELINE_RETAIN_WEEKLY")]
    pub retain_weekly: Option<i32>,

    /// restic retention: keep one snapshot per month for N months.
    #[arg(long, env = "LIFELINE_RETAIN_MONTHLY")]
    pub retain_monthly: Option<i32>,
}

impl MoverArgs {
    pub fn settings(&self, protected_namespace: Option<String>) -> Result<Settings, String> {
        let any_retain = [
            self.retain_last,
            self.retain_daily,
            self.retain_weekly,
            self.retain_monthly,
        ];
        if any_retain.iter().flatten().any(|n| *n < 1) {
            return Err("retention counts must be at least 1 (a count of 0 would prune the snapshot just taken)".into());
        }
        let retain = any_retain
            .iter()
            .any(Option::is_some)
            .then(|| ResticRetainPolicy {
                last: self.retain_last.map(|n| n.to_string()),
                daily: self.retain_daily,
                weekly: self.retain_weekly,
                monthly: self.retain_monthly,
                ..ResticRetainPolicy::default()
            });
        Ok(Settings {
            storage_class: self.storage_class.clone(),
            access_mode: self.access_mode.clone(),
            mover_service_account: self.mover_service_account.clone(),
            mover_run_as_user: self.mover_run_as_user,
            retain,
            protected_namespace,
            progress_interval: std::time::Duration::from_secs(self.progress_interval_seconds),
            datamover_name: String::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_are_documented_and_retention_is_safe() {
        ControllerArgs::command().debug_assert();
        let help = ControllerArgs::command().render_long_help().to_string();
        for flag in [
            "--max-concurrent-backups",
            "--max-concurrent-restores",
            "--retain-last",
            "--mover-service-account",
            "--storage-class",
            "--leader-elect",
            "--progress-interval-seconds",
            "--datamover-name",
            "--velero-uploads",
            "--velero-downloads",
        ] {
            assert!(help.contains(flag), "{flag}");
        }
        let args = ControllerArgs::try_parse_from(["x"]).unwrap();
        assert_eq!(
            args.mover.settings(None).unwrap().retain,
            None,
            "keeps everything by default"
        );
        let args = ControllerArgs::try_parse_from(["x", "--retain-last", "0"]).unwrap();
        assert!(
            args.mover
                .settings(None)
                .unwrap_err()
                .contains("at least 1")
        );
        assert_eq!(args.velero.name().as_deref(), Ok("lifeline"));
        assert!(args.velero.velero_uploads && args.velero.velero_downloads);
        let off = ControllerArgs::try_parse_from(["x", "--velero-uploads", "false"]).unwrap();
        assert!(!off.velero.velero_uploads && off.velero.velero_downloads);
        for bad in ["velero", "", "My Mover", "-x"] {
            let flag = format!("--datamover-name={bad}");
            let args = ControllerArgs::try_parse_from(["x", flag.as_str()]).unwrap();
            assert!(args.velero.name().is_err(), "{bad}");
        }
        let args = ControllerArgs::try_parse_from(["x", "--retain-daily", "7"]).unwrap();
        assert_eq!(
            args.mover.settings(None).unwrap().retain.unwrap().daily,
            Some(7)
        );
    }
}
