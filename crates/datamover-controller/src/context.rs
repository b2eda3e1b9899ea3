//! What every reconcile shares.

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::metrics::Metrics;
use crate::settings::Settings;

/// The one field manager (and Event reporter) of this controller's writes.
pub const FIELD_MANAGER: &str = "lifeline-datamover-controller";

pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub settings: Settings,
    pub metrics: Metrics,
    pub max_backups: usize,
    pub max_restores: usize,
}

impl Context {
    pub fn new(
        client: Client,
        settings: Settings,
        max_backups: usize,
        max_restores: usize,
    ) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            settings,
            metrics: Metrics::new(),
            max_backups,
            max_restores,
        }
    }
}
