//! Prometheus metrics: reconcile counts and errors by category, reconcile and RPC latency, and
//! per-VolumeReplication recovery-point gauges on both sites (a primary's from the sync it
//! shipped, a secondary's from the sync it received), computed at scrape time so the data age
//! keeps growing when nothing reconciles — or the other site is gone.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use lifeline_csi_client::{CallObserver, Method};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    reconciles: IntCounterVec,
    errors: IntCounterVec,
    reconcile_seconds: Histogram,
    rpc_seconds: HistogramVec,
    sync: Arc<SyncGauges>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let reconciles = IntCounterVec::new(
            Opts::new(
                "lifeline_replication_reconciles_total",
                "Reconciles of VolumeReplications by result",
            ),
            &["result"],
        )
        .expect("valid metric");
        let errors = IntCounterVec::new(
            Opts::new(
                "lifeline_replication_reconcile_errors_total",
                "Failed reconciles by error category",
            ),
            &["category"],
        )
        .expect("valid metric");
        let reconcile_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "lifeline_replication_reconcile_duration_seconds",
                "Time per reconcile",
            )
            .buckets(vec![
                0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
        )
        .expect("valid metric");
        let rpc_seconds = HistogramVec::new(
            HistogramOpts::new(
                "lifeline_csi_rpc_duration_seconds",
                "Time per csi-addons call by method and gRPC code",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0,
            ]),
            &["method", "code"],
        )
        .expect("valid metric");
        let sync = Arc::new(SyncGauges::default());
        for collector in [
            Box::new(reconciles.clone()) as Box<dyn Collector>,
            Box::new(errors.clone()),
            Box::new(reconcile_seconds.clone()),
            Box::new(rpc_seconds.clone()),
            Box::new(SyncCollector(Arc::clone(&sync))),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Self {
            registry,
            reconciles,
            errors,
            reconcile_seconds,
            rpc_seconds,
            sync,
        }
    }

    pub fn reconciled(&self, duration: Duration, error_category: Option<&str>) {
        self.reconcile_seconds.observe(duration.as_secs_f64());
        match error_category {
            None => self.reconciles.with_label_values(&["ok"]).inc(),
            Some(category) => {
                self.reconciles.with_label_values(&["error"]).inc();
                self.errors.with_label_values(&[category]).inc();
            }
        }
    }

    /// An observer for the csi-addons client, filling the RPC histogram.
    pub fn rpc_observer(&self) -> Arc<dyn CallObserver> {
        Arc::new(RpcObserver(self.rpc_seconds.clone()))
    }

    /// Records what the driver last said of a volume's sync (the RPO bound is the scheduling
    /// interval plus the last sync's duration, the Regional-DR formula).
    pub fn set_sync(&self, namespace: &str, name: &str, facts: SyncFacts) {
        self.sync
            .0
            .lock()
            .expect("metrics lock")
            .insert((namespace.to_owned(), name.to_owned()), facts);
    }

    /// The role the recorded sync facts of a volume are for, if any are recorded.
    pub fn sync_role(&self, namespace: &str, name: &str) -> Option<Role> {
        self.sync
            .0
            .lock()
            .expect("metrics lock")
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(|f| f.role)
    }

    /// Records whether a VolumeReplication is Primary now and whether it is Degraded: summed
    /// over both sites' controllers, `lifeline_volume_replication_primary` says whether a volume
    /// has no primary anywhere (0) or two (split brain).
    pub fn set_state(&self, namespace: &str, name: &str, primary: bool, degraded: bool) {
        self.sync
            .1
            .lock()
            .expect("metrics lock")
            .insert((namespace.to_owned(), name.to_owned()), (primary, degraded));
    }

    /// Replaces the gauges of every VolSync pair at once (the pairs' task recomputes them all
    /// each round, so a pair that is gone is dropped).
    pub fn set_volsync_pairs(&self, pairs: BTreeMap<(String, String), PairState>) {
        *self.sync.2.lock().expect("metrics lock") = pairs;
    }

    /// Drops every gauge of a deleted VolumeReplication.
    pub fn forget(&self, namespace: &str, name: &str) {
        self.forget_sync(namespace, name);
        self.sync
            .1
            .lock()
            .expect("metrics lock")
            .remove(&(namespace.to_owned(), name.to_owned()));
    }

    /// Drops a VolumeReplication's sync gauges (role changed, or no facts for its role).
    pub fn forget_sync(&self, namespace: &str, name: &str) {
        self.sync
            .0
            .lock()
            .expect("metrics lock")
            .remove(&(namespace.to_owned(), name.to_owned()));
    }
}

/// Which side of the replication a volume's sync facts describe: the `role` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The last sync it shipped.
    Primary,
    /// The last sync it received.
    Secondary,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Secondary => "secondary",
        }
    }
}

/// One volume's last answer to GetVolumeReplicationInfo.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SyncFacts {
    pub role: Role,
    /// When the last sync (shipped or received) captured its data.
    pub last_sync: SystemTime,
    /// Scheduling interval plus the last sync's duration.
    pub rpo_bound: Duration,
    /// When the driver answered: the data age is known to within now minus this.
    pub answered: SystemTime,
}

struct RpcObserver(HistogramVec);

impl CallObserver for RpcObserver {
    fn observe(&self, method: Method, outcome: &'static str, latency: Duration) {
        self.0
            .with_label_values(&[method.as_str(), outcome])
            .observe(latency.as_secs_f64());
    }
}

/// Per VolumeReplication, by (namespace, name): the last sync facts, and (`.1`) whether its
/// current state is Primary and whether it is Degraded; (`.2`) the same per VolSync pair, by
/// (namespace, claim), the `method="volsync"` series.
#[derive(Default)]
struct SyncGauges(
    Mutex<BTreeMap<(String, String), SyncFacts>>,
    Mutex<BTreeMap<(String, String), (bool, bool)>>,
    Mutex<BTreeMap<(String, String), PairState>>,
);

/// What one site's VolSync pair of a claim says ([`crate::volsync_pairs`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairState {
    /// `None` while the pair has no sync yet (or its interval is unknown).
    pub facts: Option<SyncFacts>,
    pub primary: bool,
    pub degraded: bool,
}

/// (namespace, name) of a gauge's volume.
type Key = (String, String);

/// The `method` label: how the volume replicates.
const REPLICATION: &str = "replication";
const VOLSYNC: &str = "volsync";

struct SyncCollector(Arc<SyncGauges>);

const LABELS: &[&str] = &["namespace", "name", "role", "method"];

fn sync_vecs() -> [GaugeVec; 4] {
    let gauge = |name: &str, help: &str| {
        GaugeVec::new(Opts::new(name, help), LABELS).expect("valid metric")
    };
    [
        gauge(
            "lifeline_volume_replication_seconds_since_last_sync",
            "Age of the data at this site: seconds since the last sync shipped (primary) or received (secondary) captured it",
        ),
        gauge(
            "lifeline_volume_replication_rpo_bound_seconds",
            "Recovery point bound: scheduling interval plus last sync duration",
        ),
        gauge(
            "lifeline_volume_replication_failover_ready",
            "1 when the last sync is younger than the RPO bound, else 0 (on a secondary: failing over here now loses no more than the bound)",
        ),
        gauge(
            "lifeline_volume_replication_info_age_seconds",
            "Seconds since the driver last answered GetVolumeReplicationInfo: the error of the data age",
        ),
    ]
}

fn state_vecs() -> [GaugeVec; 2] {
    let gauge = |name: &str, help: &str| {
        GaugeVec::new(Opts::new(name, help), &["namespace", "name", "method"])
            .expect("valid metric")
    };
    [
        gauge(
            "lifeline_volume_replication_primary",
            "1 when this site's VolumeReplication is Primary now (status.state), else 0",
        ),
        gauge(
            "lifeline_volume_replication_degraded",
            "1 when the VolumeReplication's Degraded condition is True, else 0",
        ),
    ]
}

impl Collector for SyncCollector {
    fn desc(&self) -> Vec<&Desc> {
        // Descs must outlive the call; build them once.
        static DESCS: std::sync::OnceLock<Vec<Desc>> = std::sync::OnceLock::new();
        DESCS
            .get_or_init(|| {
                sync_vecs()
                    .iter()
                    .chain(state_vecs().iter())
                    .flat_map(|v| v.desc().into_iter().cloned())
                    .collect()
            })
            .iter()
            .collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let [since, bound, ready, info_age] = sync_vecs();
        let now = SystemTime::now();
        let replicated: Vec<(Key, SyncFacts, &str)> = self
            .0
            .0
            .lock()
            .expect("metrics lock")
            .iter()
            .map(|(k, f)| (k.clone(), *f, REPLICATION))
            .collect();
        let pairs: Vec<(Key, PairState)> = self
            .0
            .2
            .lock()
            .expect("metrics lock")
            .iter()
            .map(|(k, p)| (k.clone(), *p))
            .collect();
        let volsync = pairs
            .iter()
            .filter_map(|(k, p)| Some((k.clone(), p.facts?, VOLSYNC)));
        for ((namespace, name), facts, method) in replicated.into_iter().chain(volsync) {
            let age = now.duration_since(facts.last_sync).unwrap_or_default();
            let labels = [
                namespace.as_str(),
                name.as_str(),
                facts.role.as_str(),
                method,
            ];
            since.with_label_values(&labels).set(age.as_secs_f64());
            bound
                .with_label_values(&labels)
                .set(facts.rpo_bound.as_secs_f64());
            ready
                .with_label_values(&labels)
                .set(if age <= facts.rpo_bound { 1.0 } else { 0.0 });
            info_age.with_label_values(&labels).set(
                now.duration_since(facts.answered)
                    .unwrap_or_default()
                    .as_secs_f64(),
            );
        }
        let [primary, degraded] = state_vecs();
        let states: Vec<(Key, (bool, bool), &str)> = self
            .0
            .1
            .lock()
            .expect("metrics lock")
            .iter()
            .map(|(k, v)| (k.clone(), *v, REPLICATION))
            .chain(
                pairs
                    .iter()
                    .map(|(k, p)| (k.clone(), (p.primary, p.degraded), VOLSYNC)),
            )
            .collect();
        for ((namespace, name), (is_primary, is_degraded), method) in &states {
            let labels = [namespace.as_str(), name.as_str(), method];
            primary
                .with_label_values(&labels)
                .set(f64::from(u8::from(*is_primary)));
            degraded
                .with_label_values(&labels)
                .set(f64::from(u8::from(*is_degraded)));
        }
        [since, bound, ready, info_age, primary, degraded]
            .iter()
            .flat_map(|v| v.collect())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, TextEncoder};

    fn scrape(metrics: &Metrics) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&metrics.registry.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn sync_gauges_follow_the_rpo_formula() {
        let metrics = Metrics::new();
        let now = SystemTime::now();
        let facts = |role, last_sync, answered| SyncFacts {
            role,
            last_sync,
            rpo_bound: Duration::from_secs(600),
            answered,
        };
        metrics.set_sync("shop", "fresh", facts(Role::Primary, now, now));
        metrics.set_sync(
            "shop",
            "stale",
            facts(
                Role::Secondary,
                now - Duration::from_secs(3600),
                now - Duration::from_secs(120),
            ),
        );
        let text = scrape(&metrics);
        let line = |metric: &str, name: &str, role: &str| {
            text.lines()
                .find(|l| {
                    l.starts_with(&format!(
                        "{metric}{{method=\"replication\",name=\"{name}\",namespace=\"shop\",role=\"{role}\"}} "
                    ))
                })
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("{metric} of {name} in {text}"))
        };
        assert_eq!(
            line(
                "lifeline_volume_replication_rpo_bound_seconds",
                "fresh",
                "primary"
            ),
            600.0
        );
        assert_eq!(
            line(
                "lifeline_volume_replication_failover_ready",
                "fresh",
                "primary"
            ),
            1.0
        );
        assert_eq!(
            line(
                "lifeline_volume_replication_failover_ready",
                "stale",
                "secondary"
            ),
            0.0
        );
        assert!(
            line(
                "lifeline_volume_replication_seconds_since_last_sync",
                "stale",
                "secondary"
            ) >= 3600.0
        );
        assert!(
            line(
                "lifeline_volume_replication_info_age_seconds",
                "stale",
                "secondary"
            ) >= 120.0
        );
        assert!(
            line(
                "lifeline_volume_replication_info_age_seconds",
                "fresh",
                "primary"
            ) < 120.0
        );
        assert_eq!(metrics.sync_role("shop", "stale"), Some(Role::Secondary));
        metrics.forget_sync("shop", "stale");
        assert!(!scrape(&metrics).contains("stale"));
        assert_eq!(metrics.sync_role("shop", "stale"), None);

        metrics.set_state("shop", "fresh", true, false);
        let text = scrape(&metrics);
        assert!(
            text.contains(
                "lifeline_volume_replication_primary{method=\"replication\",name=\"fresh\",namespace=\"shop\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "lifeline_volume_replication_degraded{method=\"replication\",name=\"fresh\",namespace=\"shop\"} 0"
            ),
            "{text}"
        );
        metrics.forget("shop", "fresh");
        assert!(!scrape(&metrics).contains("fresh"));
    }

    /// A VolSync pair's gauges are the same metrics with `method="volsync"`; a round without
    /// the pair drops them.
    #[test]
    fn volsync_pairs_are_the_same_gauges_with_their_method() {
        let metrics = Metrics::new();
        let now = SystemTime::now();
        let pair = PairState {
            facts: Some(SyncFacts {
                role: Role::Primary,
                last_sync: now,
                rpo_bound: Duration::from_secs(105),
                answered: now,
            }),
            primary: true,
            degraded: false,
        };
        metrics.set_volsync_pairs(BTreeMap::from([(("shop".into(), "db".into()), pair)]));
        let text = scrape(&metrics);
        for line in [
            "lifeline_volume_replication_rpo_bound_seconds{method=\"volsync\",name=\"db\",namespace=\"shop\",role=\"primary\"} 105",
            "lifeline_volume_replication_primary{method=\"volsync\",name=\"db\",namespace=\"shop\"} 1",
            "lifeline_volume_replication_degraded{method=\"volsync\",name=\"db\",namespace=\"shop\"} 0",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        metrics.set_volsync_pairs(BTreeMap::new());
        assert!(!scrape(&metrics).contains("volsync"));
    }

    #[test]
    fn reconciles_and_rpcs_are_counted_by_category_and_code() {
        let metrics = Metrics::new();
        metrics.reconciled(Duration::from_millis(5), None);
        metrics.reconciled(Duration::from_millis(5), Some("class_missing"));
        metrics.rpc_observer().observe(
            Method::PromoteVolume,
            "FAILED_PRECONDITION",
            Duration::from_millis(3),
        );
        let text = scrape(&metrics);
        assert!(
            text.contains("lifeline_replication_reconciles_total{result=\"ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "lifeline_replication_reconcile_errors_total{category=\"class_missing\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("lifeline_csi_rpc_duration_seconds_count{code=\"FAILED_PRECONDITION\",method=\"PromoteVolume\"} 1"), "{text}");
    }
}
