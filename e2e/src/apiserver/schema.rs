//! A CRD version's `openAPIV3Schema` applied the way the API server applies it: unknown
//! fields pruned, defaults filled in, the object validated (types, enums, required, patterns,
//! formats) and every `x-kubernetes-validations` CEL rule evaluated — creation rules always,
//! transition rules (`oldSelf`) on update where the old object has the field — with kube's
//! `cel` feature (kube-cel: the Kubernetes CEL libraries and the apiserver's rule semantics).

use kube::core::cel::{CompilationError, CompiledSchema, compile_schema, validate_compiled};
use serde_json::{Map, Value};

/// A field problem, reported as a `Status` cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    pub field: String,
    pub message: String,
}

pub struct Schema {
    raw: Value,
    validator: jsonschema::Validator,
    rules: CompiledSchema,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema").finish_non_exhaustive()
    }
}

/// Every rule that does not compile, anywhere in the tree (the API server refuses such a CRD).
fn compile_errors(node: &CompiledSchema, out: &mut Vec<String>) {
    for error in node.compilation_errors() {
        out.push(match error {
            CompilationError::SchemaTooDeep { depth } => format!("schema deeper than {depth}"),
            other => other.to_string(),
        });
    }
    let children = node
        .properties
        .values()
        .chain(node.items.as_deref())
        .chain(node.additional_properties.as_deref())
        .chain(node.all_of.iter())
        .chain(node.one_of.iter())
        .chain(node.any_of.iter());
    for child in children {
        compile_errors(child, out);
    }
}

impl Schema {
    pub fn compile(openapi: &Value) -> Result<Self, String> {
        let json_schema = to_json_schema(openapi);
        let validator = jsonschema::validator_for(&json_schema).map_err(|e| e.to_string())?;
        let rules = compile_schema(openapi);
        let mut errors = Vec::new();
        compile_errors(&rules, &mut errors);
        if !errors.is_empty() {
            return Err(format!("x-kubernetes-validations: {}", errors.join("; ")));
        }
        Ok(Self {
            raw: openapi.clone(),
            validator,
            rules,
        })
    }

    /// The `openAPIV3Schema` as the CRD declares it.
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// Drops fields the schema does not declare (except where unknown fields are preserved).
    /// `metadata`, `apiVersion` and `kind` at the top are the server's business, not the schema's.
    pub fn prune(&self, object: &mut Value) {
        self.prune_reporting(object, &mut Vec::new());
    }

    /// The fields [`Schema::prune`] would drop from `object`, as `.spec.foo` paths — what
    /// `fieldValidation=Strict` refuses.
    pub fn unknown_fields(&self, object: &Value) -> Vec<String> {
        let mut dropped = Vec::new();
        self.prune_reporting(&mut object.clone(), &mut dropped);
        dropped
    }

    fn prune_reporting(&self, object: &mut Value, dropped: &mut Vec<String>) {
        let Value::Object(map) = object else { return };
        let Some(properties) = self.raw.get("properties").and_then(Value::as_object) else {
            return;
        };
        map.retain(|key, _| {
            let keep = matches!(key.as_str(), "apiVersion" | "kind" | "metadata")
                || properties.contains_key(key);
            if !keep {
                dropped.push(format!(".{key}"));
            }
            keep
        });
        for (key, value) in map.iter_mut() {
            if let Some(schema) = properties.get(key)
                && key != "metadata"
            {
                prune(schema, value, &format!(".{key}"), dropped);
            }
        }
    }

    /// Fills in `default`s for absent fields, recursively through present objects.
    pub fn apply_defaults(&self, object: &mut Value) {
        apply_defaults(&self.raw, object, true);
    }

    pub fn validate(&self, object: &Value) -> Vec<Cause> {
        // Validate without metadata: ObjectMeta is checked by the server itself.
        let mut copy = object.clone();
        if let Some(map) = copy.as_object_mut() {
            map.remove("metadata");
        }
        self.validator
            .iter_errors(&copy)
            .map(|e| Cause {
                field: field_path(e.instance_path().as_str()),
                message: e.to_string(),
            })
            .collect()
    }

    /// The CEL rules: creation rules on `object`, and on update (`old` given) the transition
    /// rules where the old object has the field.
    pub fn check_rules(&self, object: &Value, old: Option<&Value>) -> Vec<Cause> {
        match validate_compiled(&self.rules, object, old) {
            Ok(()) => Vec::new(),
            Err(errors) => errors
                .iter()
                .map(|e| Cause {
                    field: e.field_path.clone(),
                    message: format!("Invalid value: \"object\": {}", e.message),
                })
                .collect(),
        }
    }
}

fn field_path(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

fn preserves_unknown(schema: &Value) -> bool {
    schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true)
}

fn prune(schema: &Value, value: &mut Value, path: &str, dropped: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema["properties"].as_object() {
                if !preserves_unknown(schema) {
                    map.retain(|key, _| {
                        let keep = properties.contains_key(key);
                        if !keep {
                            dropped.push(format!("{path}.{key}"));
                        }
                        keep
                    });
                }
                for (key, child) in map.iter_mut() {
                    if let Some(child_schema) = properties.get(key) {
                        prune(child_schema, child, &format!("{path}.{key}"), dropped);
                    }
                }
            } else if let Some(additional) =
                schema.get("additionalProperties").filter(|a| a.is_object())
            {
                for (key, child) in map.iter_mut() {
                    prune(additional, child, &format!("{path}.{key}"), dropped);
                }
            } else if !preserves_unknown(schema)
                && schema["type"] == "object"
                && schema.get("additionalProperties").is_none()
            {
                // An object with neither properties nor additionalProperties keeps nothing.
                if schema.get("x-kubernetes-embedded-resource").is_none() {
                    dropped.extend(map.keys().map(|key| format!("{path}.{key}")));
                    map.clear();
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune(item_schema, item, &format!("{path}[{i}]"), dropped);
                }
            }
        }
        _ => {}
    }
}

fn apply_defaults(schema: &Value, value: &mut Value, top: bool) {
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema["properties"].as_object() {
                for (key, child_schema) in properties {
                    if top && key == "metadata" {
                        continue;
                    }
                    if !map.contains_key(key)
                        && let Some(default) = child_schema.get("default")
                    {
                        map.insert(key.clone(), default.clone());
                    }
                    if let Some(child) = map.get_mut(key) {
                        apply_defaults(child_schema, child, false);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    apply_defaults(item_schema, item, false);
                }
            }
        }
        _ => {}
    }
}

/// OpenAPI v3 (Kubernetes flavour) → JSON Schema: `nullable` becomes a `null` type,
/// `x-kubernetes-int-or-string` an integer-or-string, and the top-level `metadata` is left to
/// the server.
fn to_json_schema(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        let converted = match key.as_str() {
            "properties" | "patternProperties" | "definitions" => Value::Object(
                value
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), to_json_schema(v)))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            "items" | "additionalProperties" | "not" if value.is_object() => to_json_schema(value),
            "allOf" | "anyOf" | "oneOf" => Value::Array(
                value
                    .as_array()
                    .map(|a| a.iter().map(to_json_schema).collect())
                    .unwrap_or_default(),
            ),
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    if out.get("nullable") == Some(&Value::Bool(true))
        && let Some(Value::String(t)) = out.get("type").cloned()
    {
        out.insert(
            "type".into(),
            Value::Array(vec![Value::String(t), Value::String("null".into())]),
        );
        if let Some(Value::Array(values)) = out.get_mut("enum") {
            values.push(Value::Null);
        }
    }
    if out.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        out.remove("type");
        out.insert(
            "anyOf".into(),
            serde_json::json!([{"type": "integer"}, {"type": "string"}]),
        );
    }
    out.into_iter().collect::<Map<String, Value>>().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::compile(&json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["state"],
                    "properties": {
                        "state": {"type": "string", "enum": ["a", "b"]},
                        "flag": {"type": "boolean", "default": false},
                        "name": {"type": "string", "pattern": "^[a-z]+$", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "name is immutable"}]},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "map": {"type": "object", "additionalProperties": {"type": "string"}},
                        "maybe": {"type": "string", "nullable": true}
                    },
                    "x-kubernetes-validations": [{"rule": "has(self.map) == has(oldSelf.map)", "message": "map presence is immutable"}]
                }
            }
        }))
        .unwrap()
    }

    #[test]
    fn prunes_unknown_fields_but_keeps_preserved_ones() {
        let mut object = json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "n", "extra": 1},
            "spec": {"state": "a", "unknown": 1, "free": {"anything": 1}, "map": {"k": "v"}}, "junk": true});
        schema().prune(&mut object);
        assert_eq!(
            object,
            json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "n", "extra": 1},
            "spec": {"state": "a", "free": {"anything": 1}, "map": {"k": "v"}}})
        );
    }

    #[test]
    fn unknown_fields_are_named_by_path() {
        let object = json!({"apiVersion": "x/v1", "metadata": {"name": "n"}, "junk": 1,
            "spec": {"state": "a", "unknown": 1, "free": {"anything": 1}, "map": {"k": "v"}}});
        assert_eq!(schema().unknown_fields(&object), [".junk", ".spec.unknown"]);
    }

    #[test]
    fn fills_defaults_and_validates() {
        let schema = schema();
        let mut object = json!({"spec": {"state": "a"}});
        schema.apply_defaults(&mut object);
        assert_eq!(object["spec"]["flag"], json!(false));
        assert!(schema.validate(&object).is_empty());
        assert!(
            schema
                .validate(&json!({"spec": {"state": "a", "maybe": null}}))
                .is_empty()
        );
        let causes = schema.validate(&json!({"spec": {"state": "c", "name": "A1"}}));
        let fields: Vec<_> = causes.iter().map(|c| c.field.as_str()).collect();
        assert!(
            fields.contains(&"spec.state") && fields.contains(&"spec.name"),
            "{causes:?}"
        );
        let causes = schema.validate(&json!({"spec": {}}));
        assert!(causes[0].message.contains("state"), "{causes:?}");
    }

    #[test]
    fn transition_rules_keep_immutable_fields() {
        let schema = schema();
        let old = json!({"spec": {"state": "a", "name": "x"}});
        assert!(
            schema
                .check_rules(&json!({"spec": {"state": "b", "name": "x"}}), Some(&old))
                .is_empty()
        );
        let causes = schema.check_rules(&json!({"spec": {"state": "a", "name": "y"}}), Some(&old));
        assert_eq!(causes[0].field, "spec.name");
        assert!(causes[0].message.contains("name is immutable"));
        let causes = schema.check_rules(
            &json!({"spec": {"state": "a", "name": "x", "map": {}}}),
            Some(&old),
        );
        assert!(
            causes[0].message.contains("map presence is immutable"),
            "{causes:?}"
        );
    }
}
