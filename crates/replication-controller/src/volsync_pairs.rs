//! RPO metrics for VolSync rsync-TLS pairs (`kubectl lifeline protect --method volsync`): the
//! same gauges as a VolumeReplication's, with `method="volsync"`, so the chart's alerts
//! (stale, no primary, split brain) and dashboard cover them too. A primary's facts are its
//! ReplicationSource's last sync, a secondary's its ReplicationDestination's; the bound is the
//! interval plus the last sync's duration. The claim's role annotation says which site is
//! primary (after a failover the primary has no source). Only watches (never a GET); a cluster
//! without VolSync has no pairs, and its failing watches back off quietly.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use lifeline_api::foreign::volsync::{ReplicationDestination, ReplicationSource, SyncStatus};
use lifeline_api::scope::namespaced_or_all;
use lifeline_api::volsync_pair::{self, ROLE};

use crate::caches::narrow_claim;
use crate::metrics::{Metrics, PairState, Role, SyncFacts};

/// How often the gauges are recomputed from the watch caches.
const ROUND: Duration = Duration::from_secs(10);

/// A claim's pair at this site: the source pushing it, the destination writing it.
#[derive(Clone, Copy, Default)]
pub struct Pair<'a> {
    pub source: Option<&'a ReplicationSource>,
    pub destination: Option<&'a ReplicationDestination>,
}

fn sync_time(sync: &SyncStatus) -> Option<SystemTime> {
    let t = sync.last_sync_time.as_ref()?.0;
    let secs = u64::try_from(t.as_second()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// The gauges of one claim's pair, `now` being when the status was read. Pure; `None` when
/// the claim takes no part in a pair.
pub fn state(claim: &PersistentVolumeClaim, pair: Pair<'_>, now: SystemTime) -> Option<PairState> {
    let annotations = claim.annotations();
    let role = match annotations.get(ROLE).map(String::as_str) {
        Some("primary") => Role::Primary,
        Some("secondary") => Role::Secondary,
        Some(_) => return None,
        None if pair.source.is_some() => Role::Primary,
        None if pair.destination.is_some() => Role::Secondary,
        None => return None,
    };
    let sync = match role {
        Role::Primary => pair.source.and_then(|s| s.status.as_ref()).map(|s| &s.sync),
        Role::Secondary => pair
            .destination
            .and_then(|d| d.status.as_ref())
            .map(|d| &d.sync),
    };
    let interval = volsync_pair::interval(annotations, pair.source);
    let facts = match (sync.and_then(sync_time), interval) {
        (Some(last_sync), Some(interval)) => Some(SyncFacts {
            role,
            last_sync,
            rpo_bound: interval
                + sync
                    .and_then(|s| s.last_sync_duration.as_deref())
                    .and_then(lifeline_api::parse_go_duration)
                    .unwrap_or_default(),
            answered: now,
        }),
        _ => None,
    };
    let primary = role == Role::Primary && pair.destination.is_none();
    let failed = sync.is_some_and(volsync_pair::mover_failed);
    Some(PairState {
        facts,
        primary,
        degraded: primary && (pair.source.is_none() || failed),
    })
}

/// Every pair of the site, by (namespace, claim), from the watch caches.
pub fn states(
    claims: &[Arc<PersistentVolumeClaim>],
    sources: &[Arc<ReplicationSource>],
    destinations: &[Arc<ReplicationDestination>],
    now: SystemTime,
) -> BTreeMap<(String, String), PairState> {
    let mut out = BTreeMap::new();
    for claim in claims {
        let (ns, name) = (claim.namespace().unwrap_or_default(), claim.name_any());
        let (source, destination) =
            lifeline_api::volsync_pair::pair_of(&ns, &name, sources, destinations);
        let pair = Pair {
            source,
            destination,
        };
        if let Some(state) = state(claim, pair, now) {
            out.insert((ns, name), state);
        }
    }
    out
}

/// Fills a store from a watch until dropped; errors (no such kind, say) only back off.
fn cache<K>(api: Api<K>, modify: fn(&mut K)) -> (Store<K>, tokio::task::JoinHandle<()>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store::<K>();
    let task = tokio::spawn(async move {
        watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(modify)
            .reflect(writer)
            .for_each(|event| {
                if let Err(error) = event {
                    tracing::debug!(%error, "VolSync pair watch");
                }
                futures::future::ready(())
            })
            .await;
    });
    (reader, task)
}

/// Keeps the pairs' gauges current until `stop` resolves.
pub async fn run(
    client: Client,
    metrics: Metrics,
    namespace: Option<&str>,
    stop: impl Future<Output = ()>,
) {
    let (sources, source_task) = cache(
        namespaced_or_all::<ReplicationSource>(&client, namespace),
        |s| s.managed_fields_mut().clear(),
    );
    let (destinations, destination_task) = cache(
        namespaced_or_all::<ReplicationDestination>(&client, namespace),
        |d| d.managed_fields_mut().clear(),
    );
    let (claims, claim_task) = cache(
        namespaced_or_all::<PersistentVolumeClaim>(&client, namespace),
        narrow_claim,
    );
    let rounds = async {
        let mut tick = tokio::time::interval(ROUND);
        loop {
            tick.tick().await;
            metrics.set_volsync_pairs(states(
                &claims.state(),
                &sources.state(),
                &destinations.state(),
                SystemTime::now(),
            ));
        }
    };
    tokio::select! {
        () = rounds => {}
        () = stop => {}
    }
    for task in [source_task, destination_task, claim_task] {
        task.abort();
    }
}

#[cfg(test)]
mod tests;
