//! `kubectl lifeline migrate --from a --to b` (planned): preflight, scale the workloads at a
//! to zero, demote at a, wait until a is Secondary (the final sync shipped), promote at b,
//! wait until b is a healthy Primary, scale the workloads at b up. Resumable: each step looks
//! at what the sites say first, so a rerun goes on from where the last one stopped.

use std::collections::BTreeSet;

use kube::{Client, ResourceExt};
use lifeline_api::replication::{CurrentState, ReplicationState};

use crate::error::Error;
use crate::progress::Steps;
use crate::runbook::{self, Switch};
use crate::sites::{SiteSpec, connect, distinct, named};
use crate::verdict::Method;
use crate::volsync::Role;
use crate::volsync::switch::{self as volsync, At};
use crate::volumes::{self, Settled};
use crate::{status, workloads};

#[derive(Clone, Debug)]
pub struct Options {
    pub from: String,
    pub to: String,
    /// Switch volumes whose last sync is older than the bound too.
    pub allow_stale: bool,
}

pub async fn run(
    sites: &[SiteSpec],
    namespace: &str,
    options: &Options,
    steps: &Steps,
) -> Result<(), Error> {
    let (from, to) = (&options.from, &options.to);
    distinct(from, to)?;
    let pair = [named(sites, from)?.clone(), named(sites, to)?.clone()];
    let report = status::gather(&pair, Some(namespace)).await?;
    let switches = runbook::migrate(&report, from, to, options.allow_stale)?;
    steps.say(format!(
        "preflight: {} volume(s) in {namespace} can move from site {from} to site {to}",
        switches.len()
    ));
    let source = connect(&pair[0]).await?;
    let target = connect(&pair[1]).await?;
    switch(&source, &target, namespace, from, to, &switches, steps).await
}

/// The switch itself, from the preflight's answer (`failback` ends with it too).
pub(crate) async fn switch(
    source: &Client,
    target: &Client,
    namespace: &str,
    from: &str,
    to: &str,
    switches: &[Switch],
    steps: &Steps,
) -> Result<(), Error> {
    let claims: BTreeSet<String> = switches.iter().flat_map(|s| s.claims.clone()).collect();

    // Nothing may write at the source once it gives the volumes up.
    let running = workloads::mounting(source, from, namespace, &claims).await?;
    workloads::scale_down(source, from, namespace, &running, steps).await?;
    workloads::wait_unmounted(source, from, namespace, &claims, steps).await?;
    steps.say(format!("site {from}: no Pod mounts the claims"));

    let (pairs, switches): (Vec<&Switch>, Vec<&Switch>) =
        switches.iter().partition(|s| s.method == Method::Volsync);
    let (source_at, target_at) = (
        At {
            client: source,
            site: from,
            namespace,
        },
        At {
            client: target,
            site: to,
            namespace,
        },
    );
    // VolSync: the final sync, then the source gives the claim up (its role first, so a rerun
    // knows the sync shipped).
    for s in &pairs {
        if s.demote {
            volsync::final_sync(source_at, &s.claim, steps).await?;
            volsync::set_role(source_at, &s.claim, Role::Secondary).await?;
            steps.say(format!("site {from}: {} demoted (role secondary)", s.claim));
        }
        volsync::remove_source(source_at, &s.claim, steps).await?;
    }

    let at_source = volumes::list(source, from, namespace).await?;
    for s in &switches {
        let Some(vr) = at_source.iter().find(|v| v.name_any() == s.from_vr) else {
            return Err(Error::Refused(format!(
                "site {from}: VolumeReplication {namespace}/{} is gone",
                s.from_vr
            )));
        };
        if s.demote && volumes::ask(source, from, vr, ReplicationState::Secondary).await? {
            steps.say(format!(
                "site {from}: {} demoted (asked for secondary)",
                s.from_vr
            ));
        } else {
            steps.say(format!(
                "site {from}: {} already asks for secondary",
                s.from_vr
            ));
        }
    }
    if !switches.is_empty() {
        let names: Vec<String> = switches.iter().map(|s| s.from_vr.clone()).collect();
        volumes::wait(source, from, namespace, &names, Settled::Demoted, steps).await?;
        steps.say(format!(
            "site {from}: every volume Secondary (the final sync shipped)"
        ));
    }

    let at_target = volumes::list(target, to, namespace).await?;
    for s in &switches {
        let Some(vr) = at_target.iter().find(|v| v.name_any() == s.to_vr) else {
            return Err(Error::Refused(format!(
                "site {to}: VolumeReplication {namespace}/{} is gone",
                s.to_vr
            )));
        };
        if s.promote && volumes::ask(target, to, vr, ReplicationState::Primary).await? {
            steps.say(format!(
                "site {to}: {} promoted (asked for primary)",
                s.to_vr
            ));
        } else {
            steps.say(format!("site {to}: {} already asks for primary", s.to_vr));
        }
    }
    // VolSync: the target takes the claim (its role first), its destination goes, and the
    // pair is set up the other way round.
    for s in &pairs {
        if s.promote && volsync::set_role(target_at, &s.claim, Role::Primary).await? {
            steps.say(format!("site {to}: {} promoted (role primary)", s.claim));
        }
        volsync::remove_destination(target_at, &s.claim, steps).await?;
        volsync::reverse(target_at, source_at, &s.claim, steps).await?;
    }
    if !switches.is_empty() {
        let names: Vec<String> = switches.iter().map(|s| s.to_vr.clone()).collect();
        volumes::wait(
            target,
            to,
            namespace,
            &names,
            Settled::Healthy(CurrentState::Primary),
            steps,
        )
        .await?;
        steps.say(format!(
            "site {to}: every volume a healthy Primary, replicating to site {from}"
        ));
    }

    let remembered = workloads::mounting(source, from, namespace, &claims).await?;
    let standing = workloads::mounting(target, to, namespace, &claims).await?;
    workloads::scale_up(
        target,
        to,
        namespace,
        &workloads::targets(&remembered, &standing),
        steps,
    )
    .await
}
