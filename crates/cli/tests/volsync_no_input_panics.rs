//! No annotation or VolSync status a site holds panics `status` or the runbook: whatever the
//! claim's lifeline.dev/volsync-* annotations and the objects' times say, reading them ends in
//! an observation (unknowns left unknown) or a refusal naming the annotation.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use lifeline_api::foreign::volsync::ReplicationSource;
use lifeline_cli::volsync::observe::{Objects, observe};
use lifeline_cli::volsync::settings::{Settings, interval_of, schedule};
use lifeline_cli::volsync::{INTERVAL, ROLE, ROLE_SINCE, SERVICE_TYPE};
use proptest::prelude::*;
use serde_json::json;

fn claim(annotations: BTreeMap<String, String>) -> PersistentVolumeClaim {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "db", "namespace": "shop", "annotations": annotations},
        "spec": {},
    }))
    .unwrap()
}

proptest! {
    #[test]
    fn any_annotations_are_read_without_panicking(
        role in ".{0,12}",
        since in ".{0,30}",
        interval in ".{0,10}",
        service in ".{0,14}",
        schedule_text in ".{0,20}",
        duration in ".{0,8}",
    ) {
        let annotations = BTreeMap::from([
            (ROLE.to_owned(), role.clone()),
            (ROLE_SINCE.to_owned(), since),
            (INTERVAL.to_owned(), interval),
            (SERVICE_TYPE.to_owned(), service),
        ]);
        match Settings::from_annotations(&annotations, "claim shop/db") {
            Ok(settings) => prop_assert!(schedule(settings.interval).is_ok()),
            Err(e) => prop_assert!(e.to_string().contains("claim shop/db")),
        }
        let _ = interval_of(&schedule_text);
        let source: ReplicationSource = serde_json::from_value(json!({
            "apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationSource",
            "metadata": {"name": "db", "namespace": "shop"},
            "spec": {"sourcePVC": "db", "trigger": {"schedule": schedule_text}, "rsyncTLS": {}},
            "status": {"lastSyncDuration": duration},
        }))
        .unwrap();
        let observed = observe(&claim(annotations), Objects { source: Some(&source), destination: None })
            .expect("a claim with a role is observed");
        prop_assert_eq!(&observed.desired, &role);
        let _ = observed.rpo_bound();
    }
}
