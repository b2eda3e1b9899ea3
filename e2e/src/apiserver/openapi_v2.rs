//! The OpenAPI v2 document (`/openapi/v2`), in JSON and in the protobuf form kubectl ≤ 1.26
//! downloads (gnostic's `openapi_v2.Document`). Those kubectl versions validate `apply` and
//! `create` on the client against it and read `kubectl explain` from it; newer ones use v3.
//!
//! Each kind's definition is its v3 schema turned into what a real API server publishes in v2:
//! nodes v2 cannot express (nullable, preserved unknown fields, int-or-string) become untyped,
//! so kubectl's validator accepts any value there instead of refusing valid objects; `oneOf`,
//! `anyOf`, `allOf`, `not` and the `x-kubernetes-*` extensions are dropped.

use serde_json::{Map, Value, json};

use super::openapi::{definition, published};
use super::types::Registry;

/// The media type kubectl asks for.
pub const PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
/// What the answer says it is (the `@` is not valid in a Content-Type, which Go's parser checks).
pub const PROTOBUF_CONTENT_TYPE: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// The whole v2 document, as JSON.
pub fn document(registry: &Registry) -> Value {
    let mut definitions = Map::new();
    for rt in registry.all() {
        let mut schema = v2_schema(&published(rt));
        schema["x-kubernetes-group-version-kind"] =
            json!([{"group": rt.group, "version": rt.version, "kind": rt.kind}]);
        definitions.insert(definition(rt), schema);
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.36.0"},
        "paths": {},
        "definitions": definitions,
    })
}

/// One v3 structural schema node as the v2 document shows it.
fn v2_schema(v3: &Value) -> Value {
    let Some(node) = v3.as_object() else {
        return json!({});
    };
    let flag = |key: &str| node.get(key).and_then(Value::as_bool).unwrap_or(false);
    let untyped = flag("nullable")
        || flag("x-kubernetes-preserve-unknown-fields")
        || flag("x-kubernetes-int-or-string");
    let mut out = Map::new();
    for (key, value) in node {
        match key.as_str() {
            "nullable" | "oneOf" | "anyOf" | "allOf" | "not" => {}
            k if k.starts_with("x-kubernetes-") => {}
            "type" | "properties" | "items" | "additionalProperties" | "required" if untyped => {}
            "properties" => {
                let properties = value
                    .as_object()
                    .map(|p| {
                        p.iter()
                            .map(|(name, s)| (name.clone(), v2_schema(s)))
                            .collect::<Map<_, _>>()
                    })
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Object(properties));
            }
            "items" | "additionalProperties" if value.is_object() => {
                out.insert(key.clone(), v2_schema(value));
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(out)
}

/// Protobuf encoding of the document (field numbers of gnostic's `OpenAPIv2.proto`).
pub fn protobuf(document: &Value) -> Vec<u8> {
    let mut out = Writer::default();
    out.string(1, field_str(document, "swagger"));
    let mut info = Writer::default();
    info.string(1, field_str(&document["info"], "title"));
    info.string(2, field_str(&document["info"], "version"));
    out.message(2, info);
    // Paths (8) present and empty: kubectl reads only the definitions.
    out.message(8, Writer::default());
    let mut definitions = Writer::default();
    if let Some(defs) = document["definitions"].as_object() {
        for (name, schema) in defs {
            definitions.message(1, named(name, encode_schema(schema)));
        }
    }
    out.message(9, definitions);
    out.bytes
}

fn field_str<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// `NamedSchema` / `NamedAny`: a name (1) and a value (2).
fn named(name: &str, value: Writer) -> Writer {
    let mut out = Writer::default();
    out.string(1, name);
    out.message(2, value);
    out
}

/// gnostic's `Any`: the value as YAML text (2); JSON is YAML.
fn any(value: &Value) -> Writer {
    let mut out = Writer::default();
    out.string(2, &value.to_string());
    out
}

fn encode_schema(schema: &Value) -> Writer {
    let mut out = Writer::default();
    let Some(node) = schema.as_object() else {
        return out;
    };
    for (key, value) in node {
        match (key.as_str(), value) {
            ("$ref", Value::String(s)) => out.string(1, s),
            ("format", Value::String(s)) => out.string(2, s),
            ("title", Value::String(s)) => out.string(3, s),
            ("description", Value::String(s)) => out.string(4, s),
            ("default", v) => out.message(5, any(v)),
            ("multipleOf", Value::Number(n)) => out.double(6, n.as_f64().unwrap_or_default()),
            ("maximum", Value::Number(n)) => out.double(7, n.as_f64().unwrap_or_default()),
            ("exclusiveMaximum", Value::Bool(b)) => out.bool(8, *b),
            ("minimum", Value::Number(n)) => out.double(9, n.as_f64().unwrap_or_default()),
            ("exclusiveMinimum", Value::Bool(b)) => out.bool(10, *b),
            ("maxLength", Value::Number(n)) => out.int(11, n.as_i64().unwrap_or_default()),
            ("minLength", Value::Number(n)) => out.int(12, n.as_i64().unwrap_or_default()),
            ("pattern", Value::String(s)) => out.string(13, s),
            ("maxItems", Value::Number(n)) => out.int(14, n.as_i64().unwrap_or_default()),
            ("minItems", Value::Number(n)) => out.int(15, n.as_i64().unwrap_or_default()),
            ("uniqueItems", Value::Bool(b)) => out.bool(16, *b),
            ("maxProperties", Value::Number(n)) => out.int(17, n.as_i64().unwrap_or_default()),
            ("minProperties", Value::Number(n)) => out.int(18, n.as_i64().unwrap_or_default()),
            ("required", Value::Array(names)) => {
                for name in names.iter().filter_map(Value::as_str) {
                    out.string(19, name);
                }
            }
            ("enum", Value::Array(values)) => {
                for v in values {
                    out.message(20, any(v));
                }
            }
            ("additionalProperties", v) => {
                // AdditionalPropertiesItem: a schema (1) or a boolean (2).
                let mut item = Writer::default();
                match v {
                    Value::Bool(b) => item.bool(2, *b),
                    schema => item.message(1, encode_schema(schema)),
                }
                out.message(21, item);
            }
            ("type", v) => {
                let mut types = Writer::default();
                match v {
                    Value::String(s) => types.string(1, s),
                    Value::Array(list) => {
                        for t in list.iter().filter_map(Value::as_str) {
                            types.string(1, t);
                        }
                    }
                    _ => {}
                }
                out.message(22, types);
            }
            ("items", v) => {
                let mut items = Writer::default();
                match v {
                    Value::Array(list) => {
                        for s in list {
                            items.message(1, encode_schema(s));
                        }
                    }
                    schema => items.message(1, encode_schema(schema)),
                }
                out.message(23, items);
            }
            ("properties", Value::Object(properties)) => {
                let mut all = Writer::default();
                for (name, s) in properties {
                    all.message(1, named(name, encode_schema(s)));
                }
                out.message(25, all);
            }
            ("readOnly", Value::Bool(b)) => out.bool(27, *b),
            ("example", v) => out.message(30, any(v)),
            (k, v) if k.starts_with("x-") => out.message(31, named(k, any(v))),
            _ => {}
        }
    }
    out
}

/// Just enough of the protobuf wire format for one document.
#[derive(Default)]
struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.bytes.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.bytes.push(value as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire_type));
    }

    fn delimited(&mut self, field: u32, bytes: &[u8]) {
        self.key(field, 2);
        self.varint(bytes.len() as u64);
        self.bytes.extend_from_slice(bytes);
    }

    fn string(&mut self, field: u32, value: &str) {
        self.delimited(field, value.as_bytes());
    }

    fn message(&mut self, field: u32, value: Writer) {
        self.delimited(field, &value.bytes);
    }

    fn bool(&mut self, field: u32, value: bool) {
        self.key(field, 0);
        self.varint(u64::from(value));
    }

    fn int(&mut self, field: u32, value: i64) {
        self.key(field, 0);
        self.varint(value as u64);
    }

    fn double(&mut self, field: u32, value: f64) {
        self.key(field, 1);
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untyped_where_v2_cannot_say_what_v3_does() {
        let v3 = json!({"type": "object", "properties": {
            "a": {"type": "string", "nullable": true},
            "b": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                  "properties": {"c": {"type": "string"}}},
            "d": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "e": {"type": "array", "items": {"type": "string", "enum": ["x"]}},
        }, "required": ["e"], "x-kubernetes-validations": [{"rule": "true"}]});
        assert_eq!(
            v2_schema(&v3),
            json!({"type": "object", "properties": {
                "a": {}, "b": {}, "d": {},
                "e": {"type": "array", "items": {"type": "string", "enum": ["x"]}},
            }, "required": ["e"]})
        );
    }

    #[test]
    fn protobuf_fields_are_gnostics() {
        let doc = json!({"swagger": "2.0", "info": {"title": "T", "version": "v"},
            "definitions": {"k": {"type": "string", "maxLength": 300}}});
        let bytes = protobuf(&doc);
        // swagger = 1 ("2.0"), then info = 2 { title = 1, version = 2 }.
        assert_eq!(&bytes[..5], b"\x0a\x032.0");
        assert_eq!(&bytes[5..13], b"\x12\x06\x0a\x01T\x12\x01v");
        // ... paths = 8 (empty), definitions = 9 { NamedSchema { name "k", Schema {
        //   max_length = 11 (300 as a varint), type = 22 { "string" } } } }.
        assert_eq!(&bytes[13..15], b"\x42\x00");
        let schema = b"\x58\xac\x02\xb2\x01\x08\x0a\x06string";
        let mut named = vec![0x0a, 0x01, b'k', 0x12, schema.len() as u8];
        named.extend_from_slice(schema);
        let mut defs = vec![0x4a, named.len() as u8 + 2, 0x0a, named.len() as u8];
        defs.extend_from_slice(&named);
        assert_eq!(&bytes[15..], defs.as_slice());
    }
}
