//! The `meta.k8s.io/v1` Table format (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`),
//! which `kubectl get` asks for: for a custom resource the CRD version's
//! `additionalPrinterColumns` (JSONPath cells, `date` columns shown as ages), for the built-in
//! kinds people look at here the columns kube-apiserver prints, and for anything else Name and
//! Age. Rows carry the object's metadata (`PartialObjectMetadata`), or the whole object with
//! `includeObject=Object`.

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

/// How a column's cell is computed from an object.
#[derive(Clone, Debug)]
pub enum Cell {
    /// A JSONPath as CRDs write them (`.status.state`, `.a[0].b`, `.c[?(@.type=="X")].d`).
    Path(String),
    /// A built-in kind's column.
    Computed(fn(&Value) -> Value),
}

#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub cell: Cell,
}

impl Column {
    fn path(name: &str, type_: &str, path: &str) -> Self {
        Column {
            name: name.into(),
            type_: type_.into(),
            format: String::new(),
            description: String::new(),
            priority: 0,
            cell: Cell::Path(path.into()),
        }
    }

    fn computed(name: &str, cell: fn(&Value) -> Value) -> Self {
        Column {
            name: name.into(),
            type_: "string".into(),
            format: String::new(),
            description: String::new(),
            priority: 0,
            cell: Cell::Computed(cell),
        }
    }

    /// A string column read at `path`.
    fn field(name: &str, path: &str) -> Self {
        Column::path(name, "string", path)
    }

    /// Shown only with `-o wide`.
    fn wide(mut self) -> Self {
        self.priority = 1;
        self
    }

    fn age() -> Self {
        Column::path("Age", "date", ".metadata.creationTimestamp")
    }
}

/// A CRD version's `additionalPrinterColumns`; without any, the Age column (as the API
/// server does).
pub fn crd_columns(version: &Value) -> Vec<Column> {
    let declared: Vec<Column> = version["additionalPrinterColumns"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| Column {
            name: c["name"].as_str().unwrap_or_default().into(),
            type_: c["type"].as_str().unwrap_or("string").into(),
            format: c["format"].as_str().unwrap_or_default().into(),
            description: c["description"].as_str().unwrap_or_default().into(),
            priority: c["priority"].as_i64().unwrap_or(0),
            cell: Cell::Path(c["jsonPath"].as_str().unwrap_or_default().into()),
        })
        .collect();
    if declared.is_empty() {
        vec![Column::age()]
    } else {
        declared
    }
}

/// `ReadWriteOnce` → `RWO`, as kubectl shows access modes.
fn access_modes(modes: &Value) -> Value {
    let short: Vec<&str> = modes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|m| match m {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect();
    json!(short.join(","))
}

fn or_unset(value: &Value) -> Value {
    match value.as_str() {
        Some(s) if !s.is_empty() => json!(s),
        _ => json!("<unset>"),
    }
}

/// The columns kube-apiserver prints for the built-in kinds the harness shows people.
pub fn builtin_columns(group: &str, kind: &str) -> Vec<Column> {
    match (group, kind) {
        ("", "PersistentVolumeClaim") => vec![
            Column::field("Status", ".status.phase"),
            Column::field("Volume", ".spec.volumeName"),
            Column::field("Capacity", ".status.capacity.storage"),
            Column::computed("Access Modes", |o| {
                access_modes(&o["status"]["accessModes"])
            }),
            Column::field("StorageClass", ".spec.storageClassName"),
            Column::computed("VolumeAttributesClass", |o| {
                or_unset(&o["spec"]["volumeAttributesClassName"])
            }),
            Column::age(),
            Column::field("VolumeMode", ".spec.volumeMode").wide(),
        ],
        ("", "PersistentVolume") => vec![
            Column::field("Capacity", ".spec.capacity.storage"),
            Column::computed("Access Modes", |o| access_modes(&o["spec"]["accessModes"])),
            Column::field("Reclaim Policy", ".spec.persistentVolumeReclaimPolicy"),
            Column::field("Status", ".status.phase"),
            Column::computed("Claim", |o| {
                let claim = &o["spec"]["claimRef"];
                match (claim["namespace"].as_str(), claim["name"].as_str()) {
                    (Some(ns), Some(name)) => json!(format!("{ns}/{name}")),
                    _ => json!(""),
                }
            }),
            Column::field("StorageClass", ".spec.storageClassName"),
            Column::computed("VolumeAttributesClass", |o| {
                or_unset(&o["spec"]["volumeAttributesClassName"])
            }),
            Column::field("Reason", ".status.reason"),
            Column::age(),
            Column::field("VolumeMode", ".spec.volumeMode").wide(),
        ],
        ("", "Namespace") => vec![Column::field("Status", ".status.phase"), Column::age()],
        ("coordination.k8s.io", "Lease") => vec![
            Column::field("Holder", ".spec.holderIdentity"),
            Column::age(),
        ],
        ("", "Event") | ("events.k8s.io", "Event") => vec![
            Column::computed("Last Seen", |o| {
                let last = ["lastTimestamp", "eventTime", "deprecatedLastTimestamp"]
                    .iter()
                    .find_map(|k| o[*k].as_str())
                    .or(o["series"]["lastObservedTime"].as_str())
                    .or(o["metadata"]["creationTimestamp"].as_str());
                last.map(age).map(Value::from).unwrap_or(Value::Null)
            }),
            Column::field("Type", ".type"),
            Column::field("Reason", ".reason"),
            Column::computed("Object", |o| {
                let regarding = if o["regarding"].is_object() {
                    &o["regarding"]
                } else {
                    &o["involvedObject"]
                };
                let kind = regarding["kind"]
                    .as_str()
                    .unwrap_or_default()
                    .to_lowercase();
                json!(format!(
                    "{kind}/{}",
                    regarding["name"].as_str().unwrap_or_default()
                ))
            }),
            Column::computed("Message", |o| {
                if o["note"].is_string() {
                    o["note"].clone()
                } else {
                    o["message"].clone()
                }
            }),
        ],
        _ => vec![Column::age()],
    }
}

/// How long ago `timestamp` was, as kubectl and the API server show ages: `45s`, `3m12s`,
/// `5h`, `2d3h`, `400d`.
pub fn age(timestamp: &str) -> String {
    let Ok(then) = timestamp.parse::<Timestamp>() else {
        return "<invalid>".into();
    };
    let seconds = Timestamp::now().as_second() - then.as_second();
    if seconds < 0 {
        return "0s".into();
    }
    human(seconds as u64)
}

/// Kubernetes' `duration.HumanDuration`.
pub fn human(seconds: u64) -> String {
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86_400);
    if seconds < 120 {
        format!("{seconds}s")
    } else if minutes < 10 {
        match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        }
    } else if minutes < 180 {
        format!("{minutes}m")
    } else if hours < 8 {
        match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        }
    } else if days < 365 * 2 {
        format!("{days}d")
    } else if days < 365 * 8 {
        match days % 365 {
            0 => format!("{}y", days / 365),
            d => format!("{}y{d}d", days / 365),
        }
    } else {
        format!("{}y", days / 365)
    }
}

/// Evaluates the JSONPath forms CRD printer columns use.
pub fn jsonpath(object: &Value, path: &str) -> Value {
    let mut current = vec![object.clone()];
    let mut rest = path.trim().trim_start_matches('{').trim_end_matches('}');
    rest = rest.strip_prefix('$').unwrap_or(rest);
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let key = &after[..end];
            current = current.iter().filter_map(|v| v.get(key).cloned()).collect();
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let Some(end) = after.find(']') else {
                return Value::Null;
            };
            let selector = &after[..end];
            current = select(&current, selector);
            rest = &after[end + 1..];
        } else {
            return Value::Null;
        }
    }
    match current.len() {
        0 => Value::Null,
        1 => current.remove(0),
        _ => json!(
            current
                .iter()
                .map(|v| v
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string()))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// `[n]`, `[*]` and `[?(@.field=="value")]` over every current value.
fn select(current: &[Value], selector: &str) -> Vec<Value> {
    let items = || current.iter().filter_map(Value::as_array).flatten();
    if selector == "*" {
        return items().cloned().collect();
    }
    if let Ok(index) = selector.parse::<usize>() {
        return current
            .iter()
            .filter_map(|v| v.as_array().and_then(|a| a.get(index)).cloned())
            .collect();
    }
    let filter = selector
        .strip_prefix("?(@.")
        .and_then(|f| f.strip_suffix(')'))
        .and_then(|f| f.split_once("=="));
    let Some((field, wanted)) = filter else {
        return Vec::new();
    };
    let wanted = wanted.trim().trim_matches(|c| c == '"' || c == '\'');
    items()
        .filter(|item| jsonpath(item, &format!(".{}", field.trim())).as_str() == Some(wanted))
        .cloned()
        .collect()
}

/// A cell as the API server renders it: `date` columns as ages, absent values as null.
fn cell(column: &Column, object: &Value) -> Value {
    let value = match &column.cell {
        Cell::Path(path) => jsonpath(object, path),
        Cell::Computed(compute) => compute(object),
    };
    match (column.type_.as_str(), value.as_str()) {
        ("date", Some(time)) => json!(age(time)),
        _ => value,
    }
}

/// A Table of `objects` with `columns`; `include_object` is the `includeObject` parameter.
pub fn table(
    columns: &[Column],
    objects: &[Value],
    resource_version: &Value,
    include_object: Option<&str>,
) -> Value {
    let mut definitions = vec![json!({"name": "Name", "type": "string", "format": "name",
        "description": "Name must be unique within a namespace.", "priority": 0})];
    definitions.extend(columns.iter().map(|c| {
        json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority})
    }));
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let mut cells = vec![object["metadata"]["name"].clone()];
            cells.extend(columns.iter().map(|c| cell(c, object)));
            let embedded = match include_object {
                Some("Object") => object.clone(),
                Some("None") => Value::Null,
                _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                    "metadata": object["metadata"]}),
            };
            json!({"cells": cells, "object": embedded})
        })
        .collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_kubectl_prints_them() {
        for (seconds, shown) in [
            (5, "5s"),
            (119, "119s"),
            (192, "3m12s"),
            (600, "10m"),
            (3 * 3600 + 60 * 5, "3h5m"),
            (30 * 3600, "30h"),
            (3 * 86_400 + 3600 * 4, "3d4h"),
            (40 * 86_400, "40d"),
            (3 * 365 * 86_400, "3y"),
        ] {
            assert_eq!(human(seconds), shown, "{seconds}");
        }
    }

    #[test]
    fn jsonpath_forms_of_printer_columns() {
        let object = json!({"status": {"state": "Primary", "conditions": [
            {"type": "Completed", "status": "True"}, {"type": "Degraded", "status": "False"}]},
            "spec": {"list": ["a", "b"]}});
        assert_eq!(jsonpath(&object, ".status.state"), json!("Primary"));
        assert_eq!(jsonpath(&object, ".spec.list[1]"), json!("b"));
        assert_eq!(jsonpath(&object, ".spec.list[*]"), json!("a,b"));
        assert_eq!(
            jsonpath(
                &object,
                ".status.conditions[?(@.type==\"Degraded\")].status"
            ),
            json!("False")
        );
        assert_eq!(jsonpath(&object, ".status.missing"), Value::Null);
        assert_eq!(jsonpath(&object, "nonsense"), Value::Null);
    }
}
