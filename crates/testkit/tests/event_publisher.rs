//! lifeline-runtime's Event publisher against the in-memory API: transitions (Normal) are
//! created one by one and never cached (a failback's second `Promoted` is its own Event, in
//! order); a repeated failure (Warning) stays one Event with a count.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};
use lifeline_runtime::events::Publisher;
use lifeline_testkit::MockApi;

fn event(type_: EventType, reason: &str) -> Event {
    Event {
        type_,
        reason: reason.into(),
        note: Some(format!("{reason} happened")),
        action: "Test".into(),
        secondary: None,
    }
}

fn regarding(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("replication.storage.openshift.io/v1alpha1".into()),
        kind: Some("VolumeReplication".into()),
        name: Some(name.into()),
        namespace: Some("shop".into()),
        uid: Some(format!("uid-{name}")),
        ..ObjectReference::default()
    }
}

#[tokio::test]
async fn transitions_are_separate_events_and_repeated_failures_fold_into_one() {
    let api = MockApi::default();
    let publisher = Publisher::new(api.client(), "lifeline-test");
    publisher
        .publish(&event(EventType::Normal, "Promoted"), &regarding("a"))
        .await
        .unwrap();
    publisher
        .publish(&event(EventType::Normal, "Demoted"), &regarding("a"))
        .await
        .unwrap();
    // Failed back: a second Promoted is a new step of the story, not a repeat of the first.
    publisher
        .publish(&event(EventType::Normal, "Promoted"), &regarding("a"))
        .await
        .unwrap();
    for _ in 0..3 {
        publisher
            .publish(
                &event(EventType::Warning, "FailedToPromote"),
                &regarding("b"),
            )
            .await
            .unwrap();
    }
    let mut events = api.events();
    events.sort();
    assert_eq!(
        events,
        [
            ("Normal".into(), "Demoted".into(), "Demoted happened".into()),
            (
                "Normal".into(),
                "Promoted".into(),
                "Promoted happened".into()
            ),
            (
                "Normal".into(),
                "Promoted".into(),
                "Promoted happened".into()
            ),
            (
                "Warning".into(),
                "FailedToPromote".into(),
                "FailedToPromote happened".into()
            ),
        ]
    );
}
