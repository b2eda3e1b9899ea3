//! OpenAPI v3 documents (`/openapi/v3` and one per group-version), for clients that read the
//! API's schema: `kubectl explain` finds a kind's schema by its `x-kubernetes-group-version-kind`,
//! and `kubectl apply`/`create` look for the `fieldValidation` parameter of a kind's PATCH to
//! know that the server validates fields itself (`fieldValidation=Strict`). Custom resources
//! carry their CRD version's schema; built-in kinds a schema that accepts any object.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::types::{Registry, ResourceType};

/// `api/v1` or `apis/<group>/<version>`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The schema name Kubernetes gives a kind: the group reversed, then version and kind.
pub(super) fn definition(rt: &ResourceType) -> String {
    let group = if rt.group.is_empty() {
        "io.k8s.api.core".to_owned()
    } else {
        let mut parts: Vec<&str> = rt.group.split('.').collect();
        parts.reverse();
        parts.join(".")
    };
    format!("{group}.{}.{}", rt.version, rt.kind)
}

/// A kind's schema as published: a CRD's schema need not declare `apiVersion`, `kind` and
/// `metadata`, but every published one does (clients validate against it).
pub(super) fn published(rt: &ResourceType) -> Value {
    let mut schema = match &rt.schema {
        Some(schema) => schema.raw().clone(),
        None => return json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
    };
    if let Some(properties) = schema
        .as_object_mut()
        .map(|s| s.entry("properties").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    {
        for (field, declared) in [
            (
                "apiVersion",
                json!({"type": "string", "description": "The versioned schema of this representation of an object."}),
            ),
            (
                "kind",
                json!({"type": "string", "description": "The REST resource this object represents."}),
            ),
            (
                "metadata",
                json!({"type": "object", "description": "Standard object's metadata."}),
            ),
        ] {
            properties.entry(field).or_insert(declared);
        }
    }
    schema
}

/// `/openapi/v3`: where each group-version's document is.
pub fn root(registry: &Registry) -> Value {
    let mut paths = BTreeMap::new();
    for rt in registry.all() {
        let path = gv_path(&rt.group, &rt.version);
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}")}),
        );
    }
    json!({"paths": paths})
}

fn parameter(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
}

fn operation(rt: &ResourceType, verb: &str, definition: &str, writes: bool) -> Value {
    let mut parameters = vec![];
    if writes {
        parameters.push(parameter(
            "fieldValidation",
            "How the server treats unknown fields: Ignore, Warn or Strict.",
        ));
        parameters.push(parameter("fieldManager", "The name of the writer."));
        parameters.push(parameter("dryRun", "All: do not persist."));
    }
    json!({
        "operationId": format!("{verb}{}", rt.kind),
        "parameters": parameters,
        "responses": {"200": {"description": "OK", "content": {"application/json": {
            "schema": {"$ref": format!("#/components/schemas/{definition}")}}}}},
        "x-kubernetes-action": verb,
        "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
    })
}

/// The document of one group-version, if it is served.
pub fn document(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types: Vec<&ResourceType> = registry
        .all()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for rt in types {
        let name = definition(rt);
        let mut schema = published(rt);
        schema["x-kubernetes-group-version-kind"] =
            json!([{"group": rt.group, "version": rt.version, "kind": rt.kind}]);
        schemas.insert(name.clone(), schema);
        let base = format!("/{}", gv_path(&rt.group, &rt.version));
        let collection = if rt.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", rt.plural)
        } else {
            format!("{base}/{}", rt.plural)
        };
        paths.insert(
            collection.clone(),
            json!({"get": operation(rt, "list", &name, false), "post": operation(rt, "post", &name, true)}),
        );
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({
                "get": operation(rt, "get", &name, false),
                "put": operation(rt, "put", &name, true),
                "patch": operation(rt, "patch", &name, true),
                "delete": operation(rt, "delete", &name, false),
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.36.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}
