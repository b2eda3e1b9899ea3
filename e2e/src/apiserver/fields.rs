//! Field ownership for server-side apply: which manager set which fields. Paths are leaves of
//! the JSON tree; lists are atomic (one leaf), which is what Kubernetes does for lists without
//! `x-kubernetes-list-type: map` — knowingly simpler for the map-lists it merges by key.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

pub type Path = Vec<String>;

/// Who set what: manager → (operation, paths).
#[derive(Clone, Debug, Default)]
pub struct Owners(BTreeMap<String, (&'static str, BTreeSet<Path>)>);

/// Fields the server sets, never owned by a client.
fn server_owned(path: &[String]) -> bool {
    matches!(
        path.first().map(String::as_str),
        Some("apiVersion" | "kind")
    ) || (path.first().map(String::as_str) == Some("metadata")
        && !matches!(
            path.get(1).map(String::as_str),
            Some("labels" | "annotations" | "finalizers" | "ownerReferences")
        ))
}

/// The leaf paths of `value` (objects recurse; lists, scalars and empty objects are leaves).
pub fn leaves(value: &Value) -> BTreeSet<Path> {
    fn walk(value: &Value, prefix: &mut Path, out: &mut BTreeSet<Path>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (key, child) in map {
                    prefix.push(key.clone());
                    walk(child, prefix, out);
                    prefix.pop();
                }
            }
            _ if !prefix.is_empty() && !server_owned(prefix) => {
                out.insert(prefix.clone());
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

fn overlaps(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

fn at<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, k| v.get(k))
}

/// Removes the field at `path`, if there.
fn remove(value: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = value;
    for key in parents {
        match current.get_mut(key) {
            Some(next) => current = next,
            None => return,
        }
    }
    if let Some(map) = current.as_object_mut() {
        map.remove(last);
    }
}

/// Deep merge: objects merge key by key, everything else replaces.
pub fn merge(target: &mut Value, applied: &Value) {
    match (target, applied) {
        (Value::Object(t), Value::Object(a)) => {
            for (key, value) in a {
                merge(t.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (t, a) => *t = a.clone(),
    }
}

/// A conflict: another manager owns a field the apply would change.
#[derive(Debug, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    pub field: String,
}

impl Owners {
    /// Server-side apply of `applied` by `manager` onto `object`, restricted to `scope` (a
    /// predicate on paths: main resource or status). Returns conflicts unless `force`.
    pub fn apply(
        &mut self,
        object: &mut Value,
        manager: &str,
        applied: &Value,
        force: bool,
        scope: impl Fn(&Path) -> bool,
    ) -> Result<(), Vec<Conflict>> {
        let paths: BTreeSet<Path> = leaves(applied).into_iter().filter(|p| scope(p)).collect();
        let mut conflicts = Vec::new();
        for (other, (_, owned)) in &self.0 {
            if other == manager {
                continue;
            }
            for path in &paths {
                if owned.iter().any(|o| overlaps(o, path)) && at(object, path) != at(applied, path)
                {
                    conflicts.push(Conflict {
                        manager: other.clone(),
                        field: format!(".{}", path.join(".")),
                    });
                }
            }
        }
        if !conflicts.is_empty() && !force {
            return Err(conflicts);
        }
        // Fields this manager applied before and no longer applies are removed, unless
        // another manager also owns them.
        let previous = self
            .0
            .get(manager)
            .filter(|(op, _)| *op == "Apply")
            .map(|(_, p)| p.clone())
            .unwrap_or_default();
        for old in previous.difference(&paths) {
            let shared = self
                .0
                .iter()
                .any(|(m, (_, owned))| m != manager && owned.contains(old));
            if !shared {
                remove(object, old);
            }
        }
        let mut scoped = applied.clone();
        if let Value::Object(map) = &mut scoped {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                if !paths.iter().any(|p| p.first() == Some(&key)) {
                    map.remove(&key);
                }
            }
        }
        merge(object, &scoped);
        self.take(manager, "Apply", paths);
        Ok(())
    }

    /// Records a non-apply write: `manager` owns every field that changed from `old` to `new`.
    pub fn update(&mut self, manager: &str, old: &Value, new: &Value) {
        let before = leaves(old);
        let after = leaves(new);
        let changed: BTreeSet<Path> = after
            .iter()
            .filter(|p| at(old, p) != at(new, p))
            .cloned()
            .collect();
        // Fields that disappeared belong to nobody any more.
        for gone in before.difference(&after) {
            for (_, owned) in self.0.values_mut() {
                owned.retain(|o| !overlaps(o, gone) || after.contains(o));
            }
        }
        if !changed.is_empty() {
            let mut owned = self
                .0
                .get(manager)
                .map(|(_, p)| p.clone())
                .unwrap_or_default();
            owned.extend(changed.iter().cloned());
            self.take(manager, "Update", owned);
        }
    }

    fn take(&mut self, manager: &str, operation: &'static str, paths: BTreeSet<Path>) {
        for (other, (_, owned)) in self.0.iter_mut() {
            if other != manager {
                owned.retain(|o| !paths.iter().any(|p| overlaps(o, p)));
            }
        }
        self.0.retain(|_, (_, owned)| !owned.is_empty());
        if !paths.is_empty() {
            self.0.insert(manager.to_owned(), (operation, paths));
        }
    }

    /// `metadata.managedFields` in the FieldsV1 shape.
    pub fn render(&self, api_version: &str, time: &str) -> Value {
        let entries: Vec<Value> = self
            .0
            .iter()
            .map(|(manager, (operation, paths))| {
                let mut tree = Map::new();
                for path in paths {
                    let mut node = &mut tree;
                    for key in path {
                        node = node
                            .entry(format!("f:{key}"))
                            .or_insert_with(|| Value::Object(Map::new()))
                            .as_object_mut()
                            .expect("tree nodes are objects");
                    }
                }
                json!({
                    "manager": manager, "operation": operation, "apiVersion": api_version,
                    "time": time, "fieldsType": "FieldsV1", "fieldsV1": tree,
                })
            })
            .collect();
        Value::Array(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn everything(_: &Path) -> bool {
        true
    }

    #[test]
    fn apply_merges_records_and_conflicts() {
        let mut owners = Owners::default();
        let mut object = json!({"spec": {"a": 1}});
        owners.update("kubectl", &json!({}), &object);
        owners
            .apply(
                &mut object,
                "ctl",
                &json!({"spec": {"b": 2}}),
                false,
                everything,
            )
            .unwrap();
        assert_eq!(object, json!({"spec": {"a": 1, "b": 2}}));
        let conflicts = owners
            .apply(
                &mut object,
                "ctl",
                &json!({"spec": {"a": 5}}),
                false,
                everything,
            )
            .unwrap_err();
        assert_eq!(
            conflicts,
            [Conflict {
                manager: "kubectl".into(),
                field: ".spec.a".into()
            }]
        );
        // Same value is no conflict; force takes ownership.
        owners
            .apply(
                &mut object,
                "ctl",
                &json!({"spec": {"a": 1, "b": 2}}),
                false,
                everything,
            )
            .unwrap();
        owners
            .apply(
                &mut object,
                "ctl",
                &json!({"spec": {"a": 5, "b": 2}}),
                true,
                everything,
            )
            .unwrap();
        assert_eq!(object["spec"]["a"], 5);
        // Dropping a field from the apply removes it.
        owners
            .apply(
                &mut object,
                "ctl",
                &json!({"spec": {"a": 5}}),
                false,
                everything,
            )
            .unwrap();
        assert_eq!(object, json!({"spec": {"a": 5}}));
        let rendered = owners.render("v1", "t");
        assert_eq!(rendered[0]["manager"], "ctl");
        assert_eq!(rendered[0]["fieldsV1"], json!({"f:spec": {"f:a": {}}}));
    }
}
