//! Reading a running mover's report: its Pod's log tail, at most every `--progress-interval`.
//!
//! VolSync runs each sync as a Job `volsync-src-<name>` (`volsync-dst-<name>` for a restore);
//! its Pods carry the Job controller's `batch.kubernetes.io/job-name` label and the mover's
//! container is `restic`. Logs are not watchable, so while a mover runs the request is looked
//! at again every interval; a log that cannot be read (no kubelet, not started, no permission)
//! is no report, never an error.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, LogParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use lifeline_api::datamover::MoverProgress;
use serde::de::DeserializeOwned;

use super::shared::patch_status;
use crate::context::Context;
use crate::error::Error;
use crate::progress;

/// The label the Job controller puts on a Job's Pods.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// The mover's container in VolSync's restic Job.
pub const MOVER_CONTAINER: &str = "restic";
/// How much of the log's end is read: enough for the last status line and marker.
const TAIL_LINES: i64 = 200;
const LIMIT_BYTES: i64 = 64 * 1024;

/// The VolSync Job that moves a ReplicationSource's (`source`) or ReplicationDestination's data.
pub fn job_name(replication: &str, source: bool) -> String {
    let side = if source { "src" } else { "dst" };
    format!("volsync-{side}-{replication}")
}

/// Seconds from `start` to `now` (zero when unknown or in the future).
pub fn elapsed(start: Option<&Time>, now: Timestamp) -> Duration {
    start
        .and_then(|t| Duration::try_from(now.duration_since(t.0)).ok())
        .map(|d| Duration::from_secs(d.as_secs()))
        .unwrap_or_default()
}

/// Updates `status.progress` from the log of the newest of the mover's `pods` (a Job retries in
/// new Pods: the newest is the run going on) when a report is due; says when to look again.
pub async fn report<K>(
    ctx: &Context,
    object: &K,
    previous: Option<&MoverProgress>,
    started: Option<&Time>,
    namespace: &str,
    pods: &[Pod],
) -> Result<Action, Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let every = ctx.settings.progress_interval;
    if every.is_zero() {
        return Ok(Action::await_change());
    }
    let now = Timestamp::now();
    let updated = previous.and_then(|p| p.updated.as_ref()).map(|t| t.0);
    if !progress::due(updated, now, every) {
        let since = updated
            .and_then(|u| Duration::try_from(now.duration_since(u)).ok())
            .unwrap_or_default();
        return Ok(Action::requeue(
            every.saturating_sub(since).max(Duration::from_millis(100)),
        ));
    }
    let log = match newest(pods, |_| true) {
        Some(pod) => log_of(ctx, namespace, pod).await,
        None => None,
    };
    let report = log.as_deref().map(progress::report).unwrap_or_default();
    let mut next = progress::running(report, previous, elapsed(started, now));
    next.updated = Some(Time(Timestamp::from_second(now.as_second()).unwrap_or(now)));
    patch_status(
        ctx,
        object,
        serde_json::json!({"progress": with_nulls(&next)}),
    )
    .await?;
    Ok(Action::requeue(every))
}

/// The mover finished: its totals from the lines VolSync kept, how long the request took, and
/// the `status.progress` that reports them.
pub fn at_end(
    logs: Option<&str>,
    started: Option<&Time>,
) -> (progress::Totals, Duration, MoverProgress) {
    let now = Timestamp::now();
    let totals = progress::totals(logs.unwrap_or_default());
    let took = elapsed(started, now);
    let mut finished = progress::finished(totals, took);
    finished.updated = Some(Time(Timestamp::from_second(now.as_second()).unwrap_or(now)));
    (totals, took, finished)
}

/// A merge patch of `progress` that also clears what the new report lacks.
pub fn with_nulls(progress: &MoverProgress) -> serde_json::Value {
    let mut value = serde_json::to_value(progress).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        for key in [
            "phase",
            "bytesDone",
            "bytesTotal",
            "filesDone",
            "filesTotal",
            "bytesAdded",
            "elapsedSeconds",
            "updated",
            "summary",
        ] {
            map.entry(key).or_insert(serde_json::Value::Null);
        }
    }
    value
}

/// A failed mover Pod's log that says no retry can succeed ([`crate::mover_failure::hopeless`]),
/// read once one of the mover's `pods` has failed; `None` while none has, or when it cannot be
/// read.
pub async fn hopeless_failure(ctx: &Context, namespace: &str, pods: &[Pod]) -> Option<String> {
    let failed = |p: &Pod| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed");
    let log = log_of(ctx, namespace, newest(pods, failed)?).await?;
    crate::mover_failure::hopeless(&log)
}

/// The Pods of the mover's Job (`job_name`), listed once per look at a running request: none
/// when they cannot be listed (no report, never an error).
pub async fn mover_pods(ctx: &Context, namespace: &str, job: &str) -> Vec<Pod> {
    Api::<Pod>::namespaced(ctx.client.clone(), namespace)
        .list(&ListParams::default().labels(&format!("{JOB_NAME_LABEL}={job}")))
        .await
        .inspect_err(|e| tracing::debug!(job, error = %e, "cannot list the mover's Pods"))
        .map(|l| l.items)
        .unwrap_or_default()
}

/// The newest of `pods` that `pick` takes.
pub(crate) fn newest(pods: &[Pod], pick: impl Fn(&Pod) -> bool) -> Option<&Pod> {
    pods.iter()
        .filter(|p| pick(p))
        .max_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// The tail of a mover Pod's log, if it can be read.
pub(crate) async fn log_of(ctx: &Context, namespace: &str, pod: &Pod) -> Option<String> {
    let params = LogParams {
        container: Some(MOVER_CONTAINER.into()),
        tail_lines: Some(TAIL_LINES),
        limit_bytes: Some(LIMIT_BYTES),
        ..LogParams::default()
    };
    Api::<Pod>::namespaced(ctx.client.clone(), namespace)
        .logs(&pod.name_any(), &params)
        .await
        .inspect_err(
            |e| tracing::debug!(pod = pod.name_any(), error = %e, "cannot read the mover's log"),
        )
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volsyncs_job_names() {
        assert_eq!(job_name("vsb-abc", true), "volsync-src-vsb-abc");
        assert_eq!(job_name("vsr-abc", false), "volsync-dst-vsr-abc");
    }

    #[test]
    fn a_patch_clears_what_a_report_lacks() {
        let patch = with_nulls(&MoverProgress {
            summary: Some("Preparing, 1s".into()),
            ..MoverProgress::default()
        });
        assert_eq!(patch["summary"], "Preparing, 1s");
        assert!(patch["bytesDone"].is_null() && patch.get("bytesDone").is_some());
    }

    #[test]
    fn elapsed_is_never_negative() {
        let t = |s| Time(Timestamp::from_second(s).unwrap());
        let now = Timestamp::from_second(100).unwrap();
        assert_eq!(elapsed(Some(&t(40)), now), Duration::from_secs(60));
        assert_eq!(elapsed(Some(&t(140)), now), Duration::ZERO);
        assert_eq!(elapsed(None, now), Duration::ZERO);
    }
}
