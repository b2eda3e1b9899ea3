//! Objects for unit tests, written as YAML overlays on a base object.

use lifeline_api::replication::VolumeReplication;
use serde_json::Value;

const BASE_VR: &str = r#"
apiVersion: replication.storage.openshift.io/v1alpha1
kind: VolumeReplication
metadata: {name: db-replication, namespace: shop, generation: 1, uid: uid-1}
spec:
  volumeReplicationClass: gold
  replicationState: primary
  dataSource: {kind: PersistentVolumeClaim, name: db-data}
"#;

fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// The base VolumeReplication with `overlay` merged in.
pub fn vr_yaml(overlay: &str) -> VolumeReplication {
    let mut value: Value = serde_saphyr::from_str(BASE_VR).expect("base parses");
    let overlay: Value = serde_saphyr::from_str(overlay).expect("overlay parses");
    if !overlay.is_null() {
        merge(&mut value, overlay);
    }
    serde_json::from_value(value).expect("a valid VolumeReplication")
}
