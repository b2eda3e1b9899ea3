//! `kubectl lifeline failover --to b` (disaster): shows what b holds of each volume (the data
//! age and the bound), needs a yes, promotes at b (the controller promotes with force when the
//! driver refuses because the peer is gone), waits Primary, scales b's workloads up. Refuses
//! unless every other named site is gone (not reachable at the network level): while one
//! answers, `migrate` loses nothing, and a site this side cannot ask (a typo in its kubeconfig,
//! a credential or RBAC problem) is a local error, never taken for a site that is gone. With
//! only the target named there is no site to check: refused.

use std::collections::BTreeSet;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use lifeline_api::replication::{CurrentState, ReplicationState};

use crate::error::Error;
use crate::progress::Steps;
use crate::runbook::{self, Promotion};
use crate::sites::{SiteSpec, connect, named};
use crate::verdict::Method;
use crate::volsync::Role;
use crate::volsync::switch::{self as volsync, At};
use crate::volumes::{self, Settled};
use crate::{status, workloads};

/// Runs the failover; `confirm` sees what would be promoted and says whether to go on.
pub async fn run(
    sites: &[SiteSpec],
    namespace: &str,
    to: &str,
    steps: &Steps,
    confirm: impl FnOnce(&[Promotion]) -> Result<(), Error>,
) -> Result<(), Error> {
    let target_site = named(sites, to)?.clone();
    if sites.len() < 2 {
        return Err(Error::Refused(format!(
            "only site {to} is named: name the site that is gone too (--site NAME=KUBECONFIG), so that failover can check it is gone before it promotes"
        )));
    }
    let report = status::gather(sites, Some(namespace)).await?;
    let promotions = runbook::failover(&report, to, Timestamp::now())?;
    for gone in report.sites.iter().filter(|s| s.site != to) {
        steps.say(format!(
            "site {} is gone: {} does not answer ({})",
            gone.site,
            gone.address,
            gone.error.as_deref().unwrap_or("no answer")
        ));
    }
    confirm(&promotions)?;
    let target = connect(&target_site).await?;
    // VolSync: the claim becomes primary, then its destination goes (nothing writes it from
    // here on): the application gets the last sync the destination received.
    let (pairs, promotions): (Vec<&Promotion>, Vec<&Promotion>) =
        promotions.iter().partition(|p| p.method == Method::Volsync);
    let target_at = At {
        client: &target,
        site: to,
        namespace,
    };
    for p in &pairs {
        if volsync::set_role(target_at, &p.claim, Role::Primary).await? {
            steps.say(format!("site {to}: {} promoted (role primary)", p.claim));
        }
        volsync::remove_destination(target_at, &p.claim, steps).await?;
    }
    let at_target = volumes::list(&target, to, namespace).await?;
    for p in &promotions {
        let Some(vr) = at_target
            .iter()
            .find(|v| v.name_any() == p.volume_replication)
        else {
            continue;
        };
        if volumes::ask(&target, to, vr, ReplicationState::Primary).await? {
            steps.say(format!(
                "site {to}: {} asked for primary",
                p.volume_replication
            ));
        } else {
            steps.say(format!(
                "site {to}: {} already asks for primary",
                p.volume_replication
            ));
        }
    }
    let names: Vec<String> = promotions
        .iter()
        .map(|p| p.volume_replication.clone())
        .collect();
    // Not "healthy": with the peer gone the new primaries are Degraded until it is back.
    if !names.is_empty() {
        volumes::wait(
            &target,
            to,
            namespace,
            &names,
            Settled::In(CurrentState::Primary),
            steps,
        )
        .await?;
    }
    steps.say(format!("site {to}: every volume Primary"));
    let claims: BTreeSet<String> = promotions
        .iter()
        .chain(&pairs)
        .flat_map(|p| p.claims.clone())
        .collect();
    let standing = workloads::mounting(&target, to, namespace, &claims).await?;
    workloads::scale_up(
        &target,
        to,
        namespace,
        &workloads::targets(&[], &standing),
        steps,
    )
    .await
}

/// The table `failover` shows before it asks: what each volume at the site holds.
pub fn table(promotions: &[Promotion]) -> String {
    let secs = |d: Option<std::time::Duration>| {
        d.map(|d| format!("{}s", d.as_secs()))
            .unwrap_or_else(|| "unknown".into())
    };
    let mut rows = vec![[
        "NAMESPACE".to_owned(),
        "CLAIM".into(),
        "LAST SYNC RECEIVED".into(),
        "DATA AGE".into(),
        "RPO BOUND".into(),
        "WITHIN BOUND".into(),
    ]];
    for p in promotions {
        rows.push([
            p.namespace.clone(),
            p.claim.clone(),
            p.last_sync_time
                .map(|t| t.to_string())
                .unwrap_or_else(|| "never".into()),
            secs(p.data_age),
            secs(p.rpo_bound),
            match p.within_bound() {
                Some(true) => "yes".into(),
                Some(false) => "NO".into(),
                None => "unknown".into(),
            },
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            format!("{}\n", cells.join("  ").trim_end())
        })
        .collect()
}
