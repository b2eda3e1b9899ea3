//! The generated CRD schemas are structural, carry the upstream CEL rules and printer columns,
//! and (checked with a JSON-schema validator) accept the samples and reject bad objects.

use std::fs;
use std::path::PathBuf;

use lifeline_api::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};

/// Our CRD of `kind`, or for a foreign kind its upstream CRD (`../shared/upstream-crds/`).
fn crd(kind: &str) -> CustomResourceDefinition {
    lifeline_api::crds::lifeline()
        .into_iter()
        .chain(upstream_crds())
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for {kind}"))
}

fn upstream_crds() -> Vec<CustomResourceDefinition> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/upstream-crds");
    [
        "volsync-v0.12.0/volsync.backube_replicationsources.yaml",
        "volsync-v0.12.0/volsync.backube_replicationdestinations.yaml",
        "external-snapshotter-v8.2.0/snapshot.storage.k8s.io_volumesnapshots.yaml",
        "external-snapshotter-v8.2.0/snapshot.storage.k8s.io_volumesnapshotcontents.yaml",
        "external-snapshotter-v8.2.0/snapshot.storage.k8s.io_volumesnapshotclasses.yaml",
    ]
    .iter()
    .map(|f| serde_saphyr::from_str(&fs::read_to_string(dir.join(f)).unwrap()).unwrap())
    .collect()
}

fn schema(kind: &str) -> Value {
    let crd = crd(kind);
    let version = &crd.spec.versions[0];
    serde_json::to_value(
        version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("openAPIV3Schema"),
    )
    .unwrap()
}

fn example(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/examples")
        .join(name);
    serde_saphyr::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// Every schema node says its type, as Kubernetes requires of structural schemas.
fn assert_structural(node: &Value, path: &str, problems: &mut Vec<String>) {
    let Some(obj) = node.as_object() else { return };
    let exempt = obj.contains_key("x-kubernetes-int-or-string")
        || obj.contains_key("x-kubernetes-preserve-unknown-fields");
    if !obj.contains_key("type") && !exempt {
        problems.push(format!("{path}: no type"));
    }
    for forbidden in ["$ref", "anyOf", "oneOf", "allOf", "not"] {
        // Kubernetes allows these only as value validations inside a typed node; we use none.
        if obj.contains_key(forbidden) {
            problems.push(format!("{path}: uses {forbidden}"));
        }
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            assert_structural(child, &format!("{path}.{name}"), problems);
        }
    }
    if let Some(items) = obj.get("items") {
        assert_structural(items, &format!("{path}[]"), problems);
    }
    if let Some(extra) = obj.get("additionalProperties").filter(|v| v.is_object()) {
        assert_structural(extra, &format!("{path}{{}}"), problems);
    }
}

const OUR_KINDS: [&str; 4] = [
    "VolumeReplication",
    "VolumeReplicationClass",
    "VolumeSnapshotBackup",
    "VolumeSnapshotRestore",
];

#[test]
fn every_schema_is_structural() {
    let mut problems = Vec::new();
    // Ours only: the foreign kinds' schemas are their owners' (and use anyOf in int-or-string).
    for kind in OUR_KINDS {
        assert_structural(&schema(kind), kind, &mut problems);
    }
    assert!(
        problems.is_empty(),
        "not structural:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_structural_check_catches_an_untyped_node() {
    let mut problems = Vec::new();
    assert_structural(
        &json!({"type": "object", "properties": {"x": {"description": "no type"}}}),
        "T",
        &mut problems,
    );
    assert_eq!(problems, ["T.x: no type"]);
}

fn validator(kind: &str) -> jsonschema::Validator {
    jsonschema::validator_for(&schema(kind)).expect("schema compiles")
}

fn errors(kind: &str, object: &Value) -> Vec<String> {
    validator(kind)
        .iter_errors(object)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn schemas_accept_the_examples() {
    for (kind, file) in [
        ("VolumeReplication", "volumereplication.yaml"),
        ("VolumeReplication", "volumereplication-with-status.yaml"),
        ("VolumeReplicationClass", "volumereplicationclass.yaml"),
        ("VolumeSnapshotBackup", "volumesnapshotbackup.yaml"),
        ("VolumeSnapshotRestore", "volumesnapshotrestore.yaml"),
        ("ReplicationSource", "replicationsource-done.yaml"),
        ("ReplicationDestination", "replicationdestination-done.yaml"),
    ] {
        let errs = errors(kind, &example(file));
        assert!(errs.is_empty(), "{file} rejected: {errs:?}");
    }
}

#[test]
fn schemas_reject_bad_objects() {
    let mut vr = example("volumereplication.yaml");
    vr["spec"]["replicationState"] = json!("tertiary");
    assert!(
        !errors("VolumeReplication", &vr).is_empty(),
        "tertiary accepted"
    );

    let mut vr = example("volumereplication.yaml");
    vr["spec"].as_object_mut().unwrap().remove("dataSource");
    assert!(
        !errors("VolumeReplication", &vr).is_empty(),
        "missing dataSource accepted"
    );

    let mut vrc = example("volumereplicationclass.yaml");
    vrc["spec"]["parameters"]["schedulingInterval"] = json!(30);
    assert!(
        !errors("VolumeReplicationClass", &vrc).is_empty(),
        "numeric parameter accepted"
    );
}

/// Upstream requires no field of a VSB/VSR and puts no enum on status: an object another tool
/// wrote must apply and decode (the controller then says what is missing in a condition).
#[test]
fn schemas_accept_what_upstream_accepts() {
    let mut vsb = example("volumesnapshotbackup.yaml");
    vsb["spec"]
        .as_object_mut()
        .unwrap()
        .remove("protectedNamespace");
    vsb["spec"]["resticSecretRef"] = json!({});
    assert_eq!(errors("VolumeSnapshotBackup", &vsb), Vec::<String>::new());
    let decoded: lifeline_api::datamover::VolumeSnapshotBackup =
        serde_json::from_value(vsb).unwrap();
    assert_eq!(decoded.spec.protected_namespace, "");

    let vsr = json!({"apiVersion": "datamover.oadp.openshift.io/v1alpha1", "kind": "VolumeSnapshotRestore",
        "metadata": {"name": "r"}, "spec": {}, "status": {"phase": "SomethingElse", "batchingStatus": "Paused"}});
    assert_eq!(errors("VolumeSnapshotRestore", &vsr), Vec::<String>::new());
    let decoded: lifeline_api::datamover::VolumeSnapshotRestore =
        serde_json::from_value(vsr).unwrap();
    let status = decoded.status.unwrap();
    assert_eq!((status.phase(), status.batching()), (None, None));
    assert_eq!(status.phase.unwrap().to_string(), "SomethingElse");

    let mut vr = example("volumereplication-with-status.yaml");
    vr["status"]["state"] = json!("Promoted");
    assert_eq!(errors("VolumeReplication", &vr), Vec::<String>::new());
    let decoded: lifeline_api::replication::VolumeReplication = serde_json::from_value(vr).unwrap();
    assert_eq!(decoded.status.unwrap().state(), None);
}

/// The CEL rules of a node, as (rule, message) pairs.
fn rules(node: &Value) -> Vec<(String, String)> {
    node["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["rule"].as_str().unwrap().to_owned(),
                r["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn rule(rule: &str, message: &str) -> (String, String) {
    (rule.to_owned(), message.to_owned())
}

#[test]
fn immutability_rules_carry_the_upstream_messages() {
    let vr = schema("VolumeReplication");
    let spec = &vr["properties"]["spec"]["properties"];
    assert_eq!(
        rules(&spec["volumeReplicationClass"]),
        [rule(
            "self == oldSelf",
            "volumeReplicationClass is immutable"
        )]
    );
    assert_eq!(
        rules(&spec["dataSource"]),
        [rule("self == oldSelf", "dataSource is immutable")]
    );
    assert!(
        rules(&spec["replicationState"]).is_empty(),
        "replicationState must stay mutable"
    );

    let vrc = schema("VolumeReplicationClass");
    let spec = &vrc["properties"]["spec"];
    assert_eq!(
        rules(&spec["properties"]["provisioner"]),
        [rule("self == oldSelf", "provisioner is immutable")]
    );
    assert_eq!(
        rules(&spec["properties"]["parameters"]),
        [rule("self == oldSelf", "parameters are immutable")]
    );
    assert_eq!(
        rules(spec),
        [rule(
            "has(self.parameters) == has(oldSelf.parameters)",
            "parameters are immutable"
        )]
    );
}

fn columns(kind: &str) -> Vec<(String, String)> {
    crd(kind).spec.versions[0]
        .additional_printer_columns
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.name, c.json_path))
        .collect()
}

fn col(name: &str, path: &str) -> (String, String) {
    (name.to_owned(), path.to_owned())
}

#[test]
fn printer_columns_short_names_and_subresources() {
    assert_eq!(
        columns("VolumeReplication"),
        [
            col("Age", ".metadata.creationTimestamp"),
            col("VolumeReplicationClass", ".spec.volumeReplicationClass"),
            col("PVCName", ".spec.dataSource.name"),
            col("DesiredState", ".spec.replicationState"),
            col("CurrentState", ".status.state"),
        ]
    );
    assert_eq!(
        columns("VolumeReplicationClass"),
        [
            col("Provisioner", ".spec.provisioner"),
            col("Age", ".metadata.creationTimestamp")
        ]
    );
    assert_eq!(
        columns("VolumeSnapshotBackup"),
        [
            col("PVC Name", ".status.sourcePVCData.name"),
            col("VolumeSnapshotContent", ".spec.volumeSnapshotContent.name"),
            col("Phase", ".status.phase"),
            col("BatchingStatus", ".status.batchingStatus"),
            // Lifeline's: what the mover reports as it goes (upstream's columns, then this).
            col("Progress", ".status.progress.summary"),
            col("Age", ".metadata.creationTimestamp"),
        ]
    );
    assert_eq!(
        columns("VolumeSnapshotRestore"),
        [
            col(
                "PVC Name",
                ".spec.volumeSnapshotMoverBackupRef.sourcePVCData.name"
            ),
            col("Phase", ".status.phase"),
            col("BatchingStatus", ".status.batchingStatus"),
            col("SnapshotHandle", ".status.snapshotHandle"),
            // Lifeline's, as on a VSB.
            col("Progress", ".status.progress.summary"),
            col("Age", ".metadata.creationTimestamp"),
        ]
    );
    for (kind, short, scope) in [
        ("VolumeReplication", "vr", "Namespaced"),
        ("VolumeReplicationClass", "vrc", "Cluster"),
        ("VolumeSnapshotBackup", "vsb", "Namespaced"),
        ("VolumeSnapshotRestore", "vsr", "Namespaced"),
    ] {
        let crd = crd(kind);
        assert_eq!(
            crd.spec.names.short_names,
            Some(vec![short.to_owned()]),
            "{kind}"
        );
        assert_eq!(crd.spec.scope, scope, "{kind}");
        let has_status = crd.spec.versions[0]
            .subresources
            .as_ref()
            .is_some_and(|s| s.status.is_some());
        // Upstream has one on every kind, the class's status being an empty object.
        assert!(has_status, "{kind} status subresource");
    }
}

#[test]
fn auto_resync_defaults_to_false_in_the_schema() {
    let vr = schema("VolumeReplication");
    assert_eq!(
        vr["properties"]["spec"]["properties"]["autoResync"]["default"],
        json!(false)
    );
}

/// Every `format` in a schema of ours is one kube-apiserver knows; it warns on every apply of
/// a CRD with another (schemars' `uint64` did, for the progress counters).
#[test]
fn every_format_is_one_kubernetes_knows() {
    // k8s.io/kube-openapi's strfmt registry, as the API server checks CRD formats.
    const KNOWN: &[&str] = &[
        "int32",
        "int64",
        "float",
        "double",
        "byte",
        "binary",
        "date",
        "date-time",
        "password",
        "uri",
        "email",
        "hostname",
        "ipv4",
        "ipv6",
        "cidr",
        "mac",
        "uuid",
        "uuid3",
        "uuid4",
        "uuid5",
        "duration",
        "bsonobjectid",
        "isbn",
        "isbn10",
        "isbn13",
        "creditcard",
        "ssn",
        "hexcolor",
        "rgbcolor",
        "datetime",
    ];
    fn walk(node: &Value, path: &str, out: &mut Vec<String>) {
        match node {
            Value::Object(map) => {
                if let Some(format) = map.get("format").and_then(Value::as_str)
                    && !KNOWN.contains(&format)
                {
                    out.push(format!("{path}: {format}"));
                }
                for (key, child) in map {
                    walk(child, &format!("{path}.{key}"), out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &format!("{path}[{i}]"), out);
                }
            }
            _ => {}
        }
    }
    let mut unknown = Vec::new();
    for crd in lifeline_api::crds::lifeline() {
        let value = serde_json::to_value(&crd).unwrap();
        walk(&value["spec"], &crd.spec.names.kind, &mut unknown);
    }
    assert!(
        unknown.is_empty(),
        "formats Kubernetes does not know: {unknown:?}"
    );
    let mut caught = Vec::new();
    walk(&json!({"format": "uint64"}), "x", &mut caught);
    assert_eq!(caught, vec!["x: uint64"]);
}
