//! Prometheus metrics: reconciles and errors by kind, finished requests by phase, durations,
//! and the queue length.

use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    reconciles: IntCounterVec,
    errors: IntCounterVec,
    finished: IntCounterVec,
    durations: HistogramVec,
    queued: IntGaugeVec,
    bytes: prometheus::IntCounterVec,
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
                "lifeline_datamover_reconciles_total",
                "Reconciles by kind and result",
            ),
            &["kind", "result"],
        )
        .expect("valid");
        let errors = IntCounterVec::new(
            Opts::new(
                "lifeline_datamover_reconcile_errors_total",
                "Failed reconciles by kind and category",
            ),
            &["kind", "category"],
        )
        .expect("valid");
        let finished = IntCounterVec::new(
            Opts::new(
                "lifeline_datamover_finished_total",
                "Backups and restores that finished, by final phase",
            ),
            &["kind", "phase"],
        )
        .expect("valid");
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "lifeline_datamover_duration_seconds",
                "From start to Completed or Failed",
            )
            .buckets(vec![1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0]),
            &["kind"],
        )
        .expect("valid");
        let bytes = IntCounterVec::new(
            Opts::new(
                "lifeline_datamover_bytes_added_total",
                "Bytes restic added to repositories, as the mover reports them",
            ),
            &["kind"],
        )
        .expect("valid");
        let queued = IntGaugeVec::new(
            Opts::new("lifeline_datamover_queued", "Requests waiting for a slot"),
            &["kind"],
        )
        .expect("valid");
        // Every series an alert or the dashboard reads exists from the start at 0: `increase()`
        // counts the first failure only if a sample came before it.
        for kind in ["backup", "restore", "upload", "download"] {
            for phase in ["Completed", "Failed"] {
                finished.with_label_values(&[kind, phase]);
            }
            bytes.with_label_values(&[kind]);
            queued.with_label_values(&[kind]);
        }
        for c in [
            Box::new(reconciles.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(errors.clone()),
            Box::new(finished.clone()),
            Box::new(durations.clone()),
            Box::new(queued.clone()),
            Box::new(bytes.clone()),
        ] {
            registry.register(c).expect("unique");
        }
        Self {
            registry,
            reconciles,
            errors,
            finished,
            durations,
            queued,
            bytes,
        }
    }

    pub fn reconciled(&self, kind: &str, error: Option<&str>) {
        match error {
            None => self.reconciles.with_label_values(&[kind, "ok"]).inc(),
            Some(category) => {
                self.reconciles.with_label_values(&[kind, "error"]).inc();
                self.errors.with_label_values(&[kind, category]).inc();
            }
        }
    }

    pub fn finished(&self, kind: &str, phase: &str, took: Option<Duration>) {
        self.finished.with_label_values(&[kind, phase]).inc();
        if let Some(took) = took {
            self.durations
                .with_label_values(&[kind])
                .observe(took.as_secs_f64());
        }
    }

    pub fn bytes_added(&self, kind: &str, bytes: u64) {
        self.bytes.with_label_values(&[kind]).inc_by(bytes);
    }

    pub fn set_queued(&self, kind: &str, count: usize) {
        self.queued
            .with_label_values(&[kind])
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerted_series_exist_at_zero_before_anything_finishes() {
        use prometheus::Encoder;
        let metrics = Metrics::new();
        let mut out = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&metrics.registry.gather(), &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("lifeline_datamover_finished_total{kind=\"backup\",phase=\"Failed\"} 0"),
            "{text}"
        );
    }
}
