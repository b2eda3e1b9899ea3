//! Publishing Kubernetes Events (`events.k8s.io/v1`) about the objects a controller reconciles.
//!
//! Warnings go through kube-runtime's `Recorder`, which folds repeats of the same failure into
//! one Event with a count — it keeps every Event it published for six minutes to do so. Normal
//! Events announce a transition, which does not repeat, so they are created directly and never
//! cached: at 10 000 objects, one transition each would otherwise hold 10 000 Events in memory
//! (and the recorder rescans its whole cache on every publish).

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client};

#[derive(Clone)]
pub struct Publisher {
    client: Client,
    reporter: Reporter,
    warnings: Recorder,
}

impl Publisher {
    /// Events reported as `controller`, with the pod name (`POD_NAME`) as instance.
    pub fn new(client: Client, controller: &str) -> Self {
        let reporter = Reporter {
            controller: controller.to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            warnings: Recorder::new(client.clone(), reporter.clone()),
            client,
            reporter,
        }
    }

    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        if event.type_ == EventType::Warning {
            return self.warnings.publish(event, regarding).await;
        }
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        Api::<K8sEvent>::namespaced(self.client.clone(), namespace)
            .create(&PostParams::default(), &self.normal(event, regarding))
            .await
            .map(|_| ())
    }

    fn normal(&self, event: &Event, regarding: &ObjectReference) -> K8sEvent {
        let now = Timestamp::now();
        let controller = &self.reporter.controller;
        K8sEvent {
            metadata: ObjectMeta {
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_deref().unwrap_or(controller),
                    now.as_nanosecond()
                )),
                namespace: regarding.namespace.clone(),
                ..ObjectMeta::default()
            },
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            note: event.note.clone(),
            type_: Some("Normal".into()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: event.secondary.clone(),
            reporting_controller: Some(controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| controller.clone()),
            ),
            ..K8sEvent::default()
        }
    }
}
