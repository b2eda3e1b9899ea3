//! What each verb does to the store: the Kubernetes object semantics (resourceVersion,
//! generation, status subresource, finalizers, schema, field ownership, garbage collection).

use serde_json::{Value, json};

use super::error::ApiError;
use super::fields::{Owners, Path};
use super::schema::Cause;
use super::selectors::Selector;
use super::store::{Entry, Key, Store};
use super::types::{self, ResourceType};

/// The current time as the API writes it.
pub fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn key(rt: &ResourceType, namespace: Option<&str>, name: &str) -> Key {
    (
        rt.key(),
        namespace.unwrap_or_default().to_owned(),
        name.to_owned(),
    )
}

/// The object as a client sees it through `rt`: its apiVersion, kind and managedFields.
pub fn present(rt: &ResourceType, entry: &Entry) -> Value {
    let mut object = entry.object.clone();
    object["apiVersion"] = json!(rt.api_version());
    object["kind"] = json!(rt.kind);
    let time = object["metadata"]["creationTimestamp"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let managed = entry.owners.render(&rt.api_version(), &time);
    if managed.as_array().is_some_and(|a| !a.is_empty()) {
        object["metadata"]["managedFields"] = managed;
    }
    object
}

pub fn get(
    store: &Store,
    rt: &ResourceType,
    namespace: Option<&str>,
    name: &str,
) -> Result<Value, ApiError> {
    store
        .objects
        .get(&key(rt, namespace, name))
        .map(|e| present(rt, e))
        .ok_or_else(|| ApiError::not_found(&rt.plural, name))
}

pub fn matches(object: &Value, labels: &Selector, fields: &Selector) -> bool {
    labels.matches_labels(&object["metadata"]["labels"]) && fields.matches_fields(object)
}

/// Where a list page starts and how many items it holds (`limit` / `continue`).
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub limit: Option<usize>,
    pub after: Option<Continue>,
}

/// A `continue` token: the version of the list's first page and the last key served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Continue {
    version: u64,
    namespace: String,
    name: String,
}

impl Continue {
    // Neither namespaces nor names may contain ':'.
    pub fn parse(token: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::bad_request(format!("invalid continue token {token:?}"));
        let mut parts = token.splitn(4, ':');
        let (Some("v1"), Some(version), Some(namespace), Some(name)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        Ok(Self {
            version: version.parse().map_err(|_| bad())?,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }

    fn token(&self) -> String {
        format!("v1:{}:{}:{}", self.version, self.namespace, self.name)
    }
}

/// One page of a list, in key order. Every page carries the first page's resourceVersion, so
/// a watch from it replays whatever changed while the pages were read.
pub fn list(
    store: &Store,
    rt: &ResourceType,
    namespace: Option<&str>,
    labels: &Selector,
    fields: &Selector,
    page: &Page,
) -> Result<Value, ApiError> {
    let type_key = rt.key();
    let version = match &page.after {
        Some(after) if after.version < store.oldest_watchable() => {
            return Err(ApiError::gone(format!(
                "the provided continue parameter is too old ({}); list again from the start",
                after.version
            )));
        }
        Some(after) => after.version,
        None => store.version,
    };
    let start: Key = match &page.after {
        Some(after) => (
            type_key.clone(),
            after.namespace.clone(),
            after.name.clone(),
        ),
        None => (
            type_key.clone(),
            namespace.unwrap_or_default().to_owned(),
            String::new(),
        ),
    };
    let mut items = Vec::new();
    let mut last: Option<(&str, &str)> = None;
    let mut more = false;
    for ((t, ns, name), entry) in store.objects.range(start..) {
        if *t != type_key || namespace.is_some_and(|n| n != ns) {
            break;
        }
        let served = page
            .after
            .as_ref()
            .is_some_and(|a| a.namespace == *ns && a.name == *name);
        if served {
            continue;
        }
        let object = present(rt, entry);
        if !matches(&object, labels, fields) {
            continue;
        }
        if page.limit.is_some_and(|limit| items.len() >= limit) {
            more = true;
            break;
        }
        last = Some((ns, name));
        items.push(object);
    }
    let mut metadata = json!({"resourceVersion": version.to_string()});
    if let (true, Some((namespace, name))) = (more, last) {
        let next = Continue {
            version,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        };
        metadata["continue"] = json!(next.token());
    }
    Ok(json!({
        "apiVersion": rt.api_version(),
        "kind": format!("{}List", rt.kind),
        "metadata": metadata,
        "items": items,
    }))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn status_scope(status_only: bool) -> impl Fn(&Path) -> bool {
    move |p: &Path| (p.first().map(String::as_str) == Some("status")) == status_only
}

fn deleting(object: &Value) -> bool {
    !object["metadata"]["deletionTimestamp"].is_null()
}

fn finalizers(object: &Value) -> Vec<String> {
    object["metadata"]["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A Secret's `stringData` merged into `data` (base64) and dropped, as kube-apiserver does on
/// every write: `stringData` is write-only and never read back.
fn fold_string_data(object: &mut Value) {
    let Some(Value::Object(text)) = object.as_object_mut().and_then(|o| o.remove("stringData"))
    else {
        return;
    };
    if !object["data"].is_object() {
        object["data"] = json!({});
    }
    for (key, value) in text {
        let bytes = value.as_str().unwrap_or_default().as_bytes().to_vec();
        object["data"][key] =
            serde_json::to_value(k8s_openapi::ByteString(bytes)).expect("base64 of bytes");
    }
}

/// Schema pruning, defaults, validation and (on update) transition rules.
fn admit(rt: &ResourceType, old: Option<&Value>, object: &mut Value) -> Result<(), ApiError> {
    if rt.group.is_empty() && rt.kind == "Secret" {
        fold_string_data(object);
    }
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if let Some(schema) = &rt.schema {
        schema.prune(object);
        schema.apply_defaults(object);
        let mut causes = schema.validate(object);
        causes.extend(schema.check_rules(object, old));
        if !causes.is_empty() {
            return Err(ApiError::invalid(
                &format!("{}.{}", rt.kind, rt.group),
                &name,
                causes,
            ));
        }
    }
    Ok(())
}

pub fn create(
    store: &mut Store,
    rt: &ResourceType,
    namespace: Option<&str>,
    mut object: Value,
    manager: &str,
) -> Result<Value, ApiError> {
    if !object.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    let mut name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if name.is_empty() {
        let Some(prefix) = object["metadata"]["generateName"]
            .as_str()
            .filter(|p| !p.is_empty())
        else {
            return Err(ApiError::invalid(
                &rt.kind,
                "",
                vec![Cause {
                    field: "metadata.name".into(),
                    message: "Required value: name or generateName is required".into(),
                }],
            ));
        };
        let suffix = format!("{:05x}", store.next_version() % 0xfffff);
        name = format!("{prefix}{suffix}");
    }
    if !valid_name(&name) {
        return Err(ApiError::invalid(
            &rt.kind,
            &name,
            vec![Cause {
                field: "metadata.name".into(),
                message: format!(
                    "Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"
                ),
            }],
        ));
    }
    let namespace = if rt.namespaced {
        let ns = namespace
            .or(object["metadata"]["namespace"].as_str())
            .unwrap_or("default")
            .to_owned();
        let ns_key = ("/namespaces".to_owned(), String::new(), ns.clone());
        if !store.objects.contains_key(&ns_key) {
            return Err(ApiError::not_found("namespaces", &ns));
        }
        if store
            .objects
            .get(&ns_key)
            .is_some_and(|e| deleting(&e.object))
        {
            return Err(ApiError::new(
                403,
                "Forbidden",
                format!("namespace {ns} is being terminated"),
            ));
        }
        Some(ns)
    } else {
        None
    };
    let key = key(rt, namespace.as_deref(), &name);
    if store.objects.contains_key(&key) {
        return Err(ApiError::already_exists(&rt.plural, &name));
    }
    if rt.status_subresource {
        // A create never sets status where status is a subresource.
        if let Some(map) = object.as_object_mut() {
            map.remove("status");
        }
    }
    admit(rt, None, &mut object)?;
    let version = store.next_version();
    let uid = store.next_uid();
    let metadata = &mut object["metadata"];
    metadata["name"] = json!(name);
    if let Some(ns) = &namespace {
        metadata["namespace"] = json!(ns);
    } else if let Some(map) = metadata.as_object_mut() {
        map.remove("namespace");
    }
    metadata["uid"] = json!(uid);
    metadata["creationTimestamp"] = json!(now());
    metadata["resourceVersion"] = json!(version.to_string());
    if let Some(map) = metadata.as_object_mut() {
        map.remove("deletionTimestamp");
        map.remove("managedFields");
        map.remove("generation");
    }
    if rt.tracks_generation() {
        object["metadata"]["generation"] = json!(1);
    }
    object["apiVersion"] = json!(rt.api_version());
    object["kind"] = json!(rt.kind);
    if rt.kind == "CustomResourceDefinition" && rt.group == "apiextensions.k8s.io" {
        register_crd(store, &mut object)?;
    }
    if rt.kind == "Namespace" && rt.group.is_empty() {
        object["status"] = json!({"phase": "Active"});
    }
    admit_storage(rt, &mut object);
    let mut owners = Owners::default();
    owners.update(manager, &Value::Null, &object);
    let entry = Entry { object, owners };
    let shown = present(rt, &entry);
    store.objects.insert(key.clone(), entry);
    store.publish("ADDED", &key, shown.clone(), version);
    Ok(shown)
}

/// Groups under `k8s.io` and `kubernetes.io` are Kubernetes' own: a CRD there needs an API
/// review, named by the `api-approved.kubernetes.io` annotation (a URL, or "unapproved…").
fn approval_problem(crd: &Value) -> Option<Cause> {
    const ANNOTATION: &str = "api-approved.kubernetes.io";
    let group = crd["spec"]["group"].as_str().unwrap_or_default();
    let protected = ["k8s.io", "kubernetes.io"]
        .iter()
        .any(|g| group == *g || group.ends_with(&format!(".{g}")));
    if !protected {
        return None;
    }
    let field = format!("metadata.annotations[{ANNOTATION}]");
    match crd["metadata"]["annotations"][ANNOTATION].as_str() {
        None => Some(Cause {
            field,
            message: "Required value: protected groups must have approval annotation".into(),
        }),
        Some(value)
            if !(value.starts_with("unapproved")
                || value.starts_with("https://")
                || value.starts_with("http://")) =>
        {
            Some(Cause {
                field,
                message: format!(
                    "Invalid value: {value:?}: protected groups must have approval annotation with an URL or a value starting with \"unapproved\""
                ),
            })
        }
        Some(_) => None,
    }
}

/// What a real API server does to a new claim or volume: the StorageObjectInUseProtection
/// admission plugin adds its protection finalizer, which kube-controller-manager (the
/// harness's stand-in of it, on backends without one) removes once the object is no longer in
/// use; defaulting makes it Pending until bound.
fn admit_storage(rt: &ResourceType, object: &mut Value) {
    let finalizer = match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "PersistentVolumeClaim") => "kubernetes.io/pvc-protection",
        ("", "PersistentVolume") => "kubernetes.io/pv-protection",
        _ => return,
    };
    if !finalizers(object).iter().any(|f| f == finalizer) {
        let mut all = finalizers(object);
        all.push(finalizer.to_owned());
        object["metadata"]["finalizers"] = json!(all);
    }
    if object["status"]["phase"].is_null() {
        object["status"]["phase"] = json!("Pending");
    }
}

fn register_crd(store: &mut Store, crd: &mut Value) -> Result<(), ApiError> {
    let name = crd["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if let Some(cause) = approval_problem(crd) {
        return Err(ApiError::invalid(
            "CustomResourceDefinition.apiextensions.k8s.io",
            &name,
            vec![cause],
        ));
    }
    let types = types::from_crd(crd).map_err(|message| {
        ApiError::invalid(
            "CustomResourceDefinition.apiextensions.k8s.io",
            &name,
            vec![Cause {
                field: "spec".into(),
                message,
            }],
        )
    })?;
    let group = crd["spec"]["group"].as_str().unwrap_or_default().to_owned();
    let plural = crd["spec"]["names"]["plural"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    store.registry.remove(&group, &plural);
    for t in types {
        store.registry.insert(t);
    }
    let stored: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .map(|v| v["name"].clone())
        .collect();
    let time = now();
    crd["status"] = json!({
        "acceptedNames": crd["spec"]["names"],
        "storedVersions": stored,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": time},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": time},
        ],
    });
    Ok(())
}

/// The shared tail of update and patch: `next` is the whole object the client wants.
#[allow(clippy::too_many_arguments)]
fn commit(
    store: &mut Store,
    rt: &ResourceType,
    key: Key,
    current: Entry,
    mut next: Value,
    owners: Owners,
    status_only: bool,
    precondition: Option<String>,
) -> Result<Value, ApiError> {
    let name = key.2.clone();
    let old = &current.object;
    if let Some(wanted) = precondition.filter(|v| !v.is_empty())
        && Some(wanted.as_str()) != old["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::conflict(&rt.plural, &name));
    }
    if !next.is_object() {
        return Err(ApiError::bad_request("the object must be a JSON object"));
    }
    // The status subresource changes only status; the main resource never changes status.
    if rt.status_subresource {
        if status_only {
            let status = next.get("status").cloned().unwrap_or(Value::Null);
            next = old.clone();
            set_or_remove(&mut next, "status", status);
        } else {
            let status = old.get("status").cloned().unwrap_or(Value::Null);
            set_or_remove(&mut next, "status", status);
        }
    }
    // Server-owned metadata cannot be changed by clients.
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "name",
        "namespace",
        "generation",
    ] {
        let value = old["metadata"].get(field).cloned().unwrap_or(Value::Null);
        set_or_remove(&mut next["metadata"], field, value);
    }
    if let Some(map) = next["metadata"].as_object_mut() {
        map.remove("managedFields");
    }
    if deleting(old) {
        let before = finalizers(old);
        if let Some(added) = finalizers(&next).into_iter().find(|f| !before.contains(f)) {
            return Err(ApiError::invalid(
                &rt.kind,
                &name,
                vec![Cause {
                    field: "metadata.finalizers".into(),
                    message: format!(
                        "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers [{added:?}]"
                    ),
                }],
            ));
        }
    }
    admit(rt, Some(old), &mut next)?;
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(map) = v.as_object_mut() {
            map.remove("metadata");
            map.remove("status");
        }
        v
    };
    if rt.tracks_generation() && strip(old) != strip(&next) {
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
        next["metadata"]["generation"] = json!(generation + 1);
    }
    next["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
    if next == *old {
        // A no-op write does not change the resourceVersion and sends no watch event.
        return Ok(present(rt, &current));
    }
    if rt.kind == "CustomResourceDefinition" && rt.group == "apiextensions.k8s.io" && !status_only {
        register_crd(store, &mut next)?;
    }
    let version = store.next_version();
    next["metadata"]["resourceVersion"] = json!(version.to_string());
    let entry = Entry {
        object: next,
        owners,
    };
    let shown = present(rt, &entry);
    if deleting(&entry.object) && finalizers(&entry.object).is_empty() {
        store.objects.remove(&key);
        store.publish("DELETED", &key, shown.clone(), version);
    } else {
        store.objects.insert(key.clone(), entry);
        store.publish("MODIFIED", &key, shown.clone(), version);
    }
    Ok(shown)
}

fn set_or_remove(target: &mut Value, field: &str, value: Value) {
    if let Some(map) = target.as_object_mut() {
        if value.is_null() {
            map.remove(field);
        } else {
            map.insert(field.to_owned(), value);
        }
    }
}

pub fn update(
    store: &mut Store,
    rt: &ResourceType,
    namespace: Option<&str>,
    name: &str,
    body: Value,
    status_only: bool,
    manager: &str,
) -> Result<Value, ApiError> {
    let key = key(rt, namespace, name);
    let Some(current) = store.objects.get(&key).cloned() else {
        return Err(ApiError::not_found(&rt.plural, name));
    };
    let precondition = body["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_owned);
    if precondition.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::invalid(
            &rt.kind,
            name,
            vec![Cause {
                field: "metadata.resourceVersion".into(),
                message: "Invalid value: 0: must be specified for an update".into(),
            }],
        ));
    }
    let mut owners = current.owners.clone();
    owners.update(manager, &current.object, &body);
    commit(
        store,
        rt,
        key,
        current,
        body,
        owners,
        status_only,
        precondition,
    )
}

/// The patch formats a client may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let mime = content_type.split(';').next().unwrap_or_default().trim();
        match mime {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub fn patch(
    store: &mut Store,
    rt: &ResourceType,
    namespace: Option<&str>,
    name: &str,
    patch_type: PatchType,
    body: Value,
    status_only: bool,
    manager: &str,
    force: bool,
) -> Result<Value, ApiError> {
    let key = key(rt, namespace, name);
    let Some(current) = store.objects.get(&key).cloned() else {
        if patch_type == PatchType::Apply && !status_only {
            // Apply creates what does not exist.
            let mut object = Value::Object(Default::default());
            let mut owners = Owners::default();
            owners
                .apply(&mut object, manager, &body, force, status_scope(false))
                .map_err(|_| ApiError::bad_request("conflict on create"))?;
            object["metadata"]["name"] = json!(name);
            let created = create(store, rt, namespace, object, manager)?;
            if let Some(entry) = store.objects.get_mut(&key) {
                entry.owners = owners;
            }
            return Ok(created);
        }
        return Err(ApiError::not_found(&rt.plural, name));
    };
    let mut next = current.object.clone();
    let mut owners = current.owners.clone();
    let mut precondition = None;
    match patch_type {
        PatchType::Merge | PatchType::Strategic => {
            precondition = body["metadata"]["resourceVersion"]
                .as_str()
                .map(str::to_owned);
            if patch_type == PatchType::Strategic {
                strategic_merge(&mut next, &body);
            } else {
                json_patch::merge(&mut next, &body);
            }
            owners.update(manager, &current.object, &next);
        }
        PatchType::Json => {
            let operations: json_patch::Patch = serde_json::from_value(body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut next, &operations).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the JSON patch cannot be applied: {e}"),
                )
            })?;
            owners.update(manager, &current.object, &next);
        }
        PatchType::Apply => {
            if manager.is_empty() {
                return Err(ApiError::bad_request(
                    "fieldManager is required for apply patches",
                ));
            }
            owners
                .apply(&mut next, manager, &body, force, status_scope(status_only))
                .map_err(|conflicts| {
                    let fields: Vec<String> = conflicts
                        .iter()
                        .map(|c| format!("conflict with \"{}\": {}", c.manager, c.field))
                        .collect();
                    ApiError::new(
                        409,
                        "Conflict",
                        format!(
                            "Apply failed with {} conflict(s): {}",
                            conflicts.len(),
                            fields.join(", ")
                        ),
                    )
                })?;
        }
    }
    commit(
        store,
        rt,
        key,
        current,
        next,
        owners,
        status_only,
        precondition,
    )
}

/// Lists merged by key, the way strategic merge patch treats the fields Lifeline and kubectl
/// touch: conditions by type, ownerReferences by uid, finalizers as a set. Everything else is
/// a JSON merge patch. `$deleteFromPrimitiveList/<f>` and `$setElementOrder/<f>` are honoured
/// and ignored respectively.
fn strategic_merge(target: &mut Value, patch: &Value) {
    let (Value::Object(t), Value::Object(p)) = (&mut *target, patch) else {
        *target = patch.clone();
        return;
    };
    for (key, value) in p {
        if key.starts_with("$setElementOrder/") || key == "$retainKeys" {
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(remove)) = (t.get_mut(field), value) {
                list.retain(|v| !remove.contains(v));
            }
            continue;
        }
        if value.is_null() {
            t.remove(key);
            continue;
        }
        let merge_key = match key.as_str() {
            "conditions" => Some("type"),
            "ownerReferences" => Some("uid"),
            "containers" | "volumes" | "env" => Some("name"),
            _ => None,
        };
        match (t.get_mut(key), value) {
            (Some(Value::Array(existing)), Value::Array(items)) if merge_key.is_some() => {
                let k = merge_key.unwrap_or_default();
                for item in items {
                    match existing
                        .iter_mut()
                        .find(|e| e.get(k).is_some() && e.get(k) == item.get(k))
                    {
                        Some(e) => strategic_merge(e, item),
                        None => existing.push(item.clone()),
                    }
                }
            }
            (Some(Value::Array(existing)), Value::Array(items)) if key == "finalizers" => {
                for item in items {
                    if !existing.contains(item) {
                        existing.push(item.clone());
                    }
                }
            }
            (Some(existing @ Value::Object(_)), Value::Object(_)) => {
                strategic_merge(existing, value)
            }
            _ => {
                t.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Delete: with finalizers the object is only marked; without, it goes and its dependents
/// are collected.
pub fn delete(
    store: &mut Store,
    rt: &ResourceType,
    namespace: Option<&str>,
    name: &str,
) -> Result<Value, ApiError> {
    let key = key(rt, namespace, name);
    let Some(current) = store.objects.get(&key).cloned() else {
        return Err(ApiError::not_found(&rt.plural, name));
    };
    if rt.kind == "Namespace" && rt.group.is_empty() {
        delete_namespace_contents(store, name);
    }
    if !finalizers(&current.object).is_empty() {
        if deleting(&current.object) {
            return Ok(present(rt, &current));
        }
        let mut next = current.object.clone();
        next["metadata"]["deletionTimestamp"] = json!(now());
        next["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        if rt.tracks_generation() {
            let generation = next["metadata"]["generation"].as_i64().unwrap_or(1);
            next["metadata"]["generation"] = json!(generation + 1);
        }
        let version = store.next_version();
        next["metadata"]["resourceVersion"] = json!(version.to_string());
        let entry = Entry {
            object: next,
            owners: current.owners,
        };
        let shown = present(rt, &entry);
        store.objects.insert(key.clone(), entry);
        store.publish("MODIFIED", &key, shown.clone(), version);
        return Ok(shown);
    }
    let version = store.next_version();
    let mut gone = current.object.clone();
    gone["metadata"]["resourceVersion"] = json!(version.to_string());
    store.objects.remove(&key);
    let shown = present(
        rt,
        &Entry {
            object: gone,
            owners: current.owners,
        },
    );
    store.publish("DELETED", &key, shown.clone(), version);
    if rt.kind == "CustomResourceDefinition" && rt.group == "apiextensions.k8s.io" {
        let group = current.object["spec"]["group"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let plural = current.object["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        store.registry.remove(&group, &plural);
    }
    Ok(shown)
}

fn delete_namespace_contents(store: &mut Store, namespace: &str) {
    let keys: Vec<Key> = store
        .objects
        .keys()
        .filter(|(_, ns, _)| ns == namespace)
        .cloned()
        .collect();
    for (type_key, ns, name) in keys {
        if let Some(rt) = type_for_key(store, &type_key) {
            let _ = delete(store, &rt, Some(&ns), &name);
        }
    }
}

fn type_for_key(store: &Store, type_key: &str) -> Option<ResourceType> {
    store.registry.all().find(|t| t.key() == type_key).cloned()
}
