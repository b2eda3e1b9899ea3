//! What every reconcile shares.

use kube::Client;
use lifeline_runtime::events::Publisher;

use crate::metrics::Metrics;
use crate::settings::Settings;

/// The one field manager (and Event reporter) of this controller's writes.
pub const FIELD_MANAGER: &str = "lifeline-datamover-controller";

pub struct Context {
    pub client: Client,
    pub recorder: Publisher,
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
        Self {
            recorder: Publisher::new(client.clone(), FIELD_MANAGER),
            client,
            settings,
            metrics: Metrics::new(),
            max_backups,
            max_restores,
        }
    }
}
