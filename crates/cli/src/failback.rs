//! `kubectl lifeline failback --to a --from b` (after a disaster, the Rook guide's "Failback
//! (post-disaster recovery)"): a's old primaries are demoted so they resync from b, and once a
//! reports the resync complete the volumes move back as in `migrate` (scale down at b, demote
//! b, promote a, scale up at a). Resumable like `migrate`.

use std::collections::BTreeSet;
use std::time::Instant;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use lifeline_api::replication::{CurrentState, ReplicationState};
use serde::Serialize;

use crate::error::Error;
use crate::progress::{POLL, STILL_WAITING, Steps};
use crate::sites::{SiteSpec, connect, distinct, named};
use crate::status::Report;
use crate::verdict::Method;
use crate::volsync::Role;
use crate::volsync::switch::{self as volsync, At};
use crate::volumes::{self, Settled};
use crate::{migrate, runbook, status, workloads};

/// What a failback throws away at the recovered site: each old primary it demotes loses the
/// writes made there after its last shipped sync.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Discard {
    pub volume_replication: String,
    /// The last sync that old primary shipped, if its status says.
    pub last_sync_time: Option<Timestamp>,
    /// How long ago that was: the span of writes discarded, at most.
    pub seconds: Option<u64>,
}

/// The discards of demoting `demotions` at `to`, from what `to` reports.
pub fn discards(report: &Report, to: &str, demotions: &[String], now: Timestamp) -> Vec<Discard> {
    report
        .volumes
        .iter()
        .flat_map(|v| v.sites.iter())
        .filter(|s| s.site == to)
        .filter_map(|s| s.volume_replication.as_ref())
        .filter(|o| demotions.contains(&o.name))
        .map(|o| Discard {
            volume_replication: o.name.clone(),
            last_sync_time: o.last_sync_time,
            seconds: o.age(now).map(|d| d.as_secs()),
        })
        .collect()
}

/// Fails back; `confirm` sees what will be discarded at `to` (only when something will be)
/// and says whether to go on.
pub async fn run(
    sites: &[SiteSpec],
    namespace: &str,
    to: &str,
    from: &str,
    steps: &Steps,
    confirm: impl FnOnce(&[Discard]) -> Result<(), Error>,
) -> Result<(), Error> {
    distinct(from, to)?;
    let pair = [named(sites, to)?.clone(), named(sites, from)?.clone()];
    let report = status::gather(&pair, Some(namespace)).await?;
    let demotions = runbook::failback_demotions(&report, to, from)?;
    let discarded = discards(&report, to, &demotions, Timestamp::now());
    if !discarded.is_empty() {
        confirm(&discarded)?;
    }
    let home = connect(&pair[0]).await?;
    let away = connect(&pair[1]).await?;
    // The volumes still held at `from`: `to` resyncs each before it takes them back.
    let held: Vec<(String, Method)> = report
        .volumes
        .iter()
        .filter(|v| {
            v.sites.iter().any(|s| {
                s.site == from
                    && s.volume_replication
                        .as_ref()
                        .is_some_and(|o| o.desired == "primary")
            })
        })
        .filter_map(|v| {
            v.sites
                .iter()
                .find(|s| s.site == to)?
                .volume_replication
                .as_ref()
                .map(|o| (o.name.clone(), o.method))
        })
        .collect();
    let pick = |method: Method| -> Vec<String> {
        held.iter()
            .filter(|(_, m)| *m == method)
            .map(|(n, _)| n.clone())
            .collect()
    };
    let (resyncing, pairs) = (pick(Method::VolumeReplication), pick(Method::Volsync));
    if !held.is_empty() {
        // What came back at `to` must not write to copies about to be overwritten.
        let claims: BTreeSet<String> = report.volumes.iter().flat_map(|v| v.claims()).collect();
        let running = workloads::mounting(&home, to, namespace, &claims).await?;
        workloads::scale_down(&home, to, namespace, &running, steps).await?;
        workloads::wait_unmounted(&home, to, namespace, &claims, steps).await?;
        let vrs = volumes::list(&home, to, namespace).await?;
        for vr in vrs
            .iter()
            .filter(|v| demotions.contains(&v.name_any()) && resyncing.contains(&v.name_any()))
        {
            volumes::ask(&home, to, vr, ReplicationState::Secondary).await?;
            steps.say(format!(
                "site {to}: {} demoted, to resync from site {from}",
                vr.name_any()
            ));
        }
        if !resyncing.is_empty() {
            volumes::wait(
                &home,
                to,
                namespace,
                &resyncing,
                Settled::Healthy(CurrentState::Secondary),
                steps,
            )
            .await?;
            steps.say(format!(
                "site {to}: every volume resynced from site {from} (Secondary, not Degraded)"
            ));
        }
        // VolSync: `to` gives the claim up and the pair runs from `from` to it; one sync
        // carries what `from` holds back before the switch (which then moves only the rest).
        let (home_at, away_at) = (
            At {
                client: &home,
                site: to,
                namespace,
            },
            At {
                client: &away,
                site: from,
                namespace,
            },
        );
        for claim in &pairs {
            if volsync::set_role(home_at, claim, Role::Secondary).await? {
                steps.say(format!(
                    "site {to}: {claim} demoted (role secondary), to resync from site {from}"
                ));
            }
            volsync::remove_source(home_at, claim, steps).await?;
            volsync::reverse(away_at, home_at, claim, steps).await?;
            volsync::final_sync(away_at, claim, steps).await?;
            let settings = volsync::settings(away_at, claim).await?;
            volsync::restore_schedule(away_at, claim, &settings).await?;
            steps.say(format!("site {to}: {claim} resynced from site {from}"));
        }
    }
    // Then a planned switch back, once status says every volume is protected again.
    let mut last_said: Option<Instant> = None;
    let switches = loop {
        let report = status::gather(&pair, Some(namespace)).await?;
        match runbook::migrate(&report, from, to, false) {
            Ok(switches) => break switches,
            Err(Error::Refused(why)) => {
                if last_said.is_none_or(|t| t.elapsed() >= STILL_WAITING) {
                    steps.say(format!("waiting until the switch back can go: {why}"));
                    last_said = Some(Instant::now());
                }
                tokio::time::sleep(POLL).await;
            }
            Err(e) => return Err(e),
        }
    };
    migrate::switch(&away, &home, namespace, from, to, &switches, steps).await
}

/// What `failback` shows before it asks: per volume, the writes at `to` it discards.
pub fn table(to: &str, discards: &[Discard]) -> String {
    let mut out = format!(
        "Failing back discards, at site {to}, the writes each old primary took after its last shipped sync:\n"
    );
    for d in discards {
        let when = match (d.last_sync_time, d.seconds) {
            (Some(t), Some(s)) => format!("after {t} ({s} s of writes at most)"),
            _ => "since it was last in sync (its status has no sync time)".to_owned(),
        };
        out.push_str(&format!("  {}: {when}\n", d.volume_replication));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::status::{SiteAnswer, VolumeReport};
    use crate::verdict::{Observed, SiteView, Verdict};

    #[test]
    fn the_writes_discarded_at_the_old_primary_are_said_in_seconds() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let old_primary = Observed {
            name: "db".into(),
            desired: "primary".into(),
            current: Some("Primary".into()),
            last_sync_time: Some(Timestamp::from_second(1_800_000_000 - 95).unwrap()),
            interval: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        let report = Report {
            sites: vec![SiteAnswer {
                site: "a".into(),
                address: "https://a".into(),
                reachable: true,
                error: None,
            }],
            volumes: vec![VolumeReport {
                namespace: "shop".into(),
                claim: "db".into(),
                verdict: Verdict::SplitBrain,
                sites: vec![SiteView {
                    site: "a".into(),
                    reachable: true,
                    volume_replication: Some(old_primary),
                    app_replicas: None,
                }],
            }],
        };
        let d = discards(&report, "a", &["db".into()], now);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].seconds, Some(95));
        let shown = table("a", &d);
        assert!(
            shown.contains("db") && shown.contains("95 s of writes"),
            "{shown}"
        );
        assert!(
            discards(&report, "a", &[], now).is_empty(),
            "nothing demoted, nothing asked"
        );
    }
}
