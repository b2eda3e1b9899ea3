//! `kubectl lifeline failback --to a --from b` (after a disaster, the Rook guide's "Failback
//! (post-disaster recovery)"): a's old primaries are demoted so they resync from b, and once a
//! reports the resync complete the volumes move back as in `migrate` (scale down at b, demote
//! b, promote a, scale up at a). Resumable like `migrate`.

use std::collections::BTreeSet;
use std::time::Instant;

use kube::ResourceExt;
use lifeline_api::replication::{CurrentState, ReplicationState};

use crate::error::Error;
use crate::progress::{POLL, STILL_WAITING, Steps};
use crate::sites::{SiteSpec, connect, distinct, named};
use crate::volumes::{self, Settled};
use crate::{migrate, runbook, status, workloads};

pub async fn run(
    sites: &[SiteSpec],
    namespace: &str,
    to: &str,
    from: &str,
    steps: &Steps,
) -> Result<(), Error> {
    distinct(from, to)?;
    let pair = [named(sites, to)?.clone(), named(sites, from)?.clone()];
    let report = status::gather(&pair, Some(namespace)).await?;
    let demotions = runbook::failback_demotions(&report, to, from)?;
    let home = connect(&pair[0]).await?;
    let away = connect(&pair[1]).await?;
    // The volumes still held at `from`: `to` resyncs each before it takes them back.
    let resyncing: Vec<String> = report
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
                .map(|o| o.name.clone())
        })
        .collect();
    if !resyncing.is_empty() {
        // What came back at `to` must not write to copies about to be overwritten.
        let claims: BTreeSet<String> = report.volumes.iter().flat_map(|v| v.claims()).collect();
        let running = workloads::mounting(&home, to, namespace, &claims).await?;
        workloads::scale_down(&home, to, namespace, &running, steps).await?;
        workloads::wait_unmounted(&home, to, namespace, &claims, steps).await?;
        let vrs = volumes::list(&home, to, namespace).await?;
        for vr in vrs.iter().filter(|v| demotions.contains(&v.name_any())) {
            volumes::ask(&home, to, vr, ReplicationState::Secondary).await?;
            steps.say(format!(
                "site {to}: {} demoted, to resync from site {from}",
                vr.name_any()
            ));
        }
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
