//! Our CRDs accept every object the upstream CRDs accept: walking each upstream schema node by
//! node, ours declares the same fields with the same types and adds no constraint upstream does
//! not have (no extra `required`, `enum`, pattern, bound or CEL rule). An object written for the
//! Go operators, or by another controller, therefore applies to Lifeline's CRDs unchanged.

use std::path::PathBuf;

use serde_json::Value;

fn upstream(file: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/upstream-crds")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap()
}

fn version_schema(crd: &Value, version: &str) -> Value {
    crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == version)
        .unwrap_or_else(|| panic!("no version {version}"))["schema"]["openAPIV3Schema"]
        .clone()
}

fn ours(kind: &str) -> Value {
    let crd = lifeline_api::crds::lifeline()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap();
    version_schema(&serde_json::to_value(crd).unwrap(), "v1alpha1")
}

/// Keys that narrow what a node accepts.
const CONSTRAINTS: [&str; 10] = [
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "format",
];

/// Where `ours` accepts less than `theirs`, as "path: what".
fn narrower(theirs: &Value, ours: &Value, path: &str, problems: &mut Vec<String>) {
    let loose = |node: &Value| {
        node["x-kubernetes-preserve-unknown-fields"] == true
            || node["x-kubernetes-int-or-string"] == true
    };
    if ours.is_null() {
        problems.push(format!(
            "{path}: not declared (a real object's value is pruned)"
        ));
        return;
    }
    if loose(ours) {
        return;
    }
    if theirs["type"] != ours["type"] && !theirs["type"].is_null() {
        problems.push(format!(
            "{path}: type {} where upstream has {}",
            ours["type"], theirs["type"]
        ));
        return;
    }
    if theirs["nullable"] == true && ours["nullable"] != true {
        problems.push(format!("{path}: not nullable"));
    }
    let list = |node: &Value, key: &str| -> Vec<Value> {
        node[key].as_array().cloned().unwrap_or_default()
    };
    for field in list(ours, "required") {
        if !list(theirs, "required").contains(&field) {
            problems.push(format!("{path}: requires {field}, upstream does not"));
        }
    }
    if let Some(values) = ours["enum"].as_array() {
        let upstream = list(theirs, "enum");
        if upstream.is_empty() || upstream.iter().any(|v| !values.contains(v)) {
            problems.push(format!(
                "{path}: enum {values:?}, upstream {upstream:?} (any value of its type)"
            ));
        }
    }
    for key in CONSTRAINTS {
        if !ours[key].is_null() && ours[key] != theirs[key] {
            problems.push(format!(
                "{path}: {key} {} where upstream has {}",
                ours[key], theirs[key]
            ));
        }
    }
    for rule in list(ours, "x-kubernetes-validations") {
        if !list(theirs, "x-kubernetes-validations")
            .iter()
            .any(|r| r["rule"] == rule["rule"])
        {
            problems.push(format!("{path}: CEL rule {} not upstream's", rule["rule"]));
        }
    }
    if let Some(properties) = theirs["properties"].as_object() {
        // apiVersion, kind and metadata at the top are the API server's, whatever the schema.
        for (name, child) in properties {
            if path.is_empty() && matches!(name.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            let child_path = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            narrower(child, &ours["properties"][name], &child_path, problems);
        }
    }
    if theirs["items"].is_object() {
        narrower(
            &theirs["items"],
            &ours["items"],
            &format!("{path}[]"),
            problems,
        );
    }
    if theirs["additionalProperties"].is_object() {
        narrower(
            &theirs["additionalProperties"],
            &ours["additionalProperties"],
            &format!("{path}{{}}"),
            problems,
        );
    }
}

fn check(kind: &str, file: &str) -> Vec<String> {
    let theirs = version_schema(&upstream(file), "v1alpha1");
    let mut problems = Vec::new();
    narrower(&theirs, &ours(kind), "", &mut problems);
    problems
}

#[test]
fn data_mover_crds_accept_what_volume_snapshot_mover_accepts() {
    for (kind, file) in [
        (
            "VolumeSnapshotBackup",
            "volume-snapshot-mover-master/datamover.oadp.openshift.io_volumesnapshotbackups.yaml",
        ),
        (
            "VolumeSnapshotRestore",
            "volume-snapshot-mover-master/datamover.oadp.openshift.io_volumesnapshotrestores.yaml",
        ),
    ] {
        assert_eq!(check(kind, file), Vec::<String>::new(), "{kind}");
    }
}

#[test]
fn replication_crds_accept_what_csi_addons_accepts() {
    for (kind, file) in [
        (
            "VolumeReplication",
            "kubernetes-csi-addons-main/replication.storage.openshift.io_volumereplications.yaml",
        ),
        (
            "VolumeReplicationClass",
            "kubernetes-csi-addons-main/replication.storage.openshift.io_volumereplicationclasses.yaml",
        ),
        (
            "VolumeGroupReplication",
            "kubernetes-csi-addons-main/replication.storage.openshift.io_volumegroupreplications.yaml",
        ),
        (
            "VolumeGroupReplicationClass",
            "kubernetes-csi-addons-main/replication.storage.openshift.io_volumegroupreplicationclasses.yaml",
        ),
        (
            "VolumeGroupReplicationContent",
            "kubernetes-csi-addons-main/replication.storage.openshift.io_volumegroupreplicationcontents.yaml",
        ),
    ] {
        assert_eq!(
            check(kind, file),
            Vec::<String>::new(),
            "{kind} from {file}"
        );
    }
    // The older operator's VR is narrower in exactly what csi-addons added since: a required
    // spec and the immutability rules (the same in csi-addons main, which Lifeline follows).
    assert_eq!(
        check(
            "VolumeReplication",
            "volume-replication-operator-v0.3.0/replication.storage.openshift.io_volumereplications.yaml"
        ),
        [
            ": requires \"spec\", upstream does not",
            "spec.dataSource: CEL rule \"self == oldSelf\" not upstream's",
            "spec.volumeReplicationClass: CEL rule \"self == oldSelf\" not upstream's",
        ]
    );
    assert_eq!(
        check(
            "VolumeReplicationClass",
            "volume-replication-operator-v0.3.0/replication.storage.openshift.io_volumereplicationclasses.yaml"
        ),
        [
            ": requires \"spec\", upstream does not",
            "spec: CEL rule \"has(self.parameters) == has(oldSelf.parameters)\" not upstream's",
            "spec.parameters: CEL rule \"self == oldSelf\" not upstream's",
            "spec.provisioner: CEL rule \"self == oldSelf\" not upstream's",
        ]
    );
}

/// The walk itself finds each kind of narrowing.
#[test]
fn the_walk_reports_every_narrowing() {
    let theirs = serde_json::json!({"type": "object", "properties": {
        "a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": "integer"},
        "d": {"type": "string"}, "e": {"type": "array", "items": {"type": "string"}}}});
    let ours = serde_json::json!({"type": "object", "required": ["a"], "properties": {
        "a": {"type": "string", "enum": ["x"]}, "b": {"type": "string", "pattern": "^b$"},
        "c": {"type": "string"}, "e": {"type": "array", "items": {"type": "string",
        "x-kubernetes-validations": [{"rule": "self != ''"}]}}}});
    let mut problems = Vec::new();
    narrower(&theirs, &ours, "", &mut problems);
    assert_eq!(
        problems,
        [
            ": requires \"a\", upstream does not",
            "a: enum [String(\"x\")], upstream [] (any value of its type)",
            "b: pattern \"^b$\" where upstream has null",
            "c: type \"string\" where upstream has \"integer\"",
            "d: not declared (a real object's value is pruned)",
            "e[]: CEL rule \"self != ''\" not upstream's",
        ]
    );
}
