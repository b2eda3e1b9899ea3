//! Events have one storage and two views: `events.k8s.io/v1` (what controllers write) and core
//! `v1` (what `kubectl get events` and `kubectl describe` read). Field names differ; the
//! conversion is kube-apiserver's: regarding ↔ involvedObject, note ↔ message,
//! reportingController ↔ reportingComponent, deprecatedSource ↔ source,
//! deprecatedFirstTimestamp/LastTimestamp/Count ↔ firstTimestamp/lastTimestamp/count.

use serde_json::{Map, Value};

/// The storage keys of the two views.
const EVENTS_V1: &str = "events.k8s.io/events";
const CORE: &str = "/events";

/// (events.k8s.io name, core name)
const RENAMED: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// The other view's storage key and the object as that view shows it, for an Event.
pub fn other_view(type_key: &str, object: &Value) -> Option<(String, Value)> {
    let to_core = match type_key {
        EVENTS_V1 => true,
        CORE => false,
        _ => return None,
    };
    let Value::Object(fields) = object else {
        return None;
    };
    let mut converted = Map::new();
    for (key, value) in fields {
        let renamed = RENAMED.iter().find_map(|(v1, core)| {
            if to_core && key == v1 {
                Some(*core)
            } else if !to_core && key == core {
                Some(*v1)
            } else {
                None
            }
        });
        let key = match (key.as_str(), renamed) {
            (_, Some(name)) => name,
            ("apiVersion", _) => continue, // set by the reading view
            ("kind", _) => continue,
            (other, None) => other,
        };
        converted.insert(key.to_owned(), value.clone());
    }
    let mut converted = Value::Object(converted);
    converted["apiVersion"] = Value::from(if to_core { "v1" } else { "events.k8s.io/v1" });
    converted["kind"] = Value::from("Event");
    if let Some(meta) = converted["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
    Some((if to_core { CORE } else { EVENTS_V1 }.to_owned(), converted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_two_views_convert_both_ways() {
        let v1 = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "ns", "managedFields": [{}]},
            "regarding": {"kind": "VolumeReplication", "name": "db"}, "note": "promoted",
            "reason": "Promoted", "type": "Normal", "reportingController": "lifeline",
            "deprecatedCount": 2, "eventTime": "2026-12-01T10:00:00.000000Z"});
        let (key, core) = other_view(EVENTS_V1, &v1).unwrap();
        assert_eq!(key, CORE);
        assert_eq!(core["involvedObject"]["name"], "db");
        assert_eq!(core["message"], "promoted");
        assert_eq!(core["reportingComponent"], "lifeline");
        assert_eq!(core["count"], 2);
        assert_eq!(core["apiVersion"], "v1");
        assert!(core["metadata"].get("managedFields").is_none());
        let (back_key, back) = other_view(CORE, &core).unwrap();
        assert_eq!(back_key, EVENTS_V1);
        let mut expected = v1.clone();
        expected["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        assert_eq!(back, expected);
        assert!(other_view("/configmaps", &v1).is_none());
    }
}
