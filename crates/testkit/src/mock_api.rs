//! An in-memory Kubernetes API for reconcile tests, served to `kube::Client` as a tower
//! service (the tower-test pattern, with a store instead of scripted exchanges): get, create,
//! replace, merge/apply/JSON patch (status subresource kept apart), delete with finalizers.
//! It records every write and read so tests can count them. Deliberately small: the full local API
//! server of the e2e harness is where Kubernetes semantics are tested.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use kube::Resource;
use kube::client::Body;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    writes: Vec<String>,
    reads: Vec<String>,
    version: u64,
    /// Collection paths of kinds with no status subresource (Velero's): a write to the object
    /// writes its status too, as the API server does for them.
    whole: Vec<String>,
}

#[derive(Clone, Default)]
pub struct MockApi {
    state: Arc<Mutex<State>>,
    /// Every request hangs (an API server that stopped answering) while set.
    hung: Arc<std::sync::atomic::AtomicBool>,
}

fn object_path<K: Resource<DynamicType = ()>>(namespace: Option<&str>, name: &str) -> String {
    format!("{}/{name}", K::url_path(&(), namespace))
}

impl MockApi {
    pub fn client(&self) -> kube::Client {
        let api = self.clone();
        let service = tower::service_fn(move |request: Request<Body>| {
            let api = api.clone();
            async move { Ok::<_, Infallible>(api.handle(request).await) }
        });
        kube::Client::new(service, "default")
    }

    /// Stores `object` as if created (resourceVersion, uid, generation set).
    pub fn put<K: Resource<DynamicType = ()> + Serialize>(&self, object: &K) {
        let meta = object.meta();
        let path = object_path::<K>(
            meta.namespace.as_deref(),
            meta.name.as_deref().expect("named"),
        );
        let mut value = serde_json::to_value(object).expect("serializable");
        value["apiVersion"] = json!(K::api_version(&()));
        value["kind"] = json!(K::kind(&()));
        let mut state = self.state.lock().unwrap();
        state.version += 1;
        let version = state.version;
        let metadata = &mut value["metadata"];
        metadata["resourceVersion"] = json!(version.to_string());
        if metadata.get("uid").is_none() {
            metadata["uid"] = json!(format!("uid-{version}"));
        }
        if metadata.get("generation").is_none() {
            metadata["generation"] = json!(1);
        }
        state.objects.insert(path, value);
    }

    pub fn get<K: Resource<DynamicType = ()> + DeserializeOwned>(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<K> {
        let state = self.state.lock().unwrap();
        state
            .objects
            .get(&object_path::<K>(namespace, name))
            .map(|v| serde_json::from_value(v.clone()).expect("stored objects deserialize"))
    }

    pub fn remove<K: Resource<DynamicType = ()>>(&self, namespace: Option<&str>, name: &str) {
        self.state
            .lock()
            .unwrap()
            .objects
            .remove(&object_path::<K>(namespace, name));
    }

    /// From now on every request hangs without an answer (`false`: answers again).
    pub fn hang(&self, hung: bool) {
        self.hung.store(hung, std::sync::atomic::Ordering::SeqCst);
    }

    /// Serves `K` as a kind without a status subresource: status is written with the object.
    pub fn without_status_subresource<K: Resource<DynamicType = ()>>(&self) {
        let path = K::url_path(&(), None);
        let plural = path.rsplit('/').next().unwrap_or_default().to_owned();
        self.state.lock().unwrap().whole.push(plural);
    }

    /// Writes so far, as "VERB /path" (Events excluded), and forgets them.
    pub fn take_writes(&self) -> Vec<String> {
        let mut state = self.state.lock().unwrap();
        std::mem::take(&mut state.writes)
            .into_iter()
            .filter(|w| !w.contains("/events"))
            .collect()
    }

    /// The paths read (GET) so far, and forgets them.
    pub fn take_reads(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().unwrap().reads)
    }

    /// Events published so far: (type, reason, note).
    pub fn events(&self) -> Vec<(String, String, String)> {
        let state = self.state.lock().unwrap();
        state
            .objects
            .iter()
            .filter(|(path, _)| path.starts_with("/apis/events.k8s.io/"))
            .map(|(_, e)| {
                let text = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
                (text("type"), text("reason"), text("note"))
            })
            .collect()
    }

    async fn handle(&self, request: Request<Body>) -> Response<Full<Bytes>> {
        if self.hung.load(std::sync::atomic::Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        let (parts, body) = request.into_parts();
        let body = body.collect_bytes().await.unwrap_or_default();
        let path = parts.uri.path().to_owned();
        let query = parts.uri.query().unwrap_or_default().to_owned();
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut state = self.state.lock().unwrap();
        if parts.method != Method::GET {
            state.writes.push(format!("{} {path}", parts.method));
        } else {
            state.reads.push(path.clone());
        }
        let (key, status_only) = match path.strip_suffix("/status") {
            Some(key) => (key.to_owned(), true),
            None => (path.clone(), false),
        };
        let body: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).expect("JSON body")
        };
        match parts.method {
            Method::GET => match state.objects.get(&key) {
                Some(object) => ok(object.clone()),
                None if is_collection(&key) => {
                    let selector = query_param(&query, "labelSelector");
                    let items: Vec<Value> = state
                        .objects
                        .iter()
                        .filter(|(k, _)| in_collection(&key, k))
                        .map(|(_, v)| v.clone())
                        .filter(|v| {
                            selector
                                .as_deref()
                                .is_none_or(|s| labels_match(s, &v["metadata"]["labels"]))
                        })
                        .collect();
                    let version = state.version.to_string();
                    ok(
                        json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": version}, "items": items}),
                    )
                }
                None => status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    &format!("{key} not found"),
                ),
            },
            Method::POST => {
                let name = body["metadata"]["name"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| {
                        format!(
                            "{}{}",
                            body["metadata"]["generateName"].as_str().unwrap_or("obj-"),
                            state.version + 1
                        )
                    });
                let key = format!("{key}/{name}");
                if state.objects.contains_key(&key) {
                    return status(
                        StatusCode::CONFLICT,
                        "AlreadyExists",
                        &format!("{key} already exists"),
                    );
                }
                let mut object = body;
                object["metadata"]["name"] = json!(name);
                if let Some((_, rest)) = key.split_once("/namespaces/") {
                    let namespace = rest.split('/').next().unwrap_or_default();
                    object["metadata"]["namespace"] = json!(namespace);
                }
                state.version += 1;
                object["metadata"]["resourceVersion"] = json!(state.version.to_string());
                state.objects.insert(key, object.clone());
                ok(object)
            }
            Method::PUT | Method::PATCH => {
                let Some(current) = state.objects.get(&key).cloned() else {
                    return status(
                        StatusCode::NOT_FOUND,
                        "NotFound",
                        &format!("{key} not found"),
                    );
                };
                let wanted_version = body["metadata"]["resourceVersion"].as_str();
                if wanted_version
                    .is_some_and(|v| Some(v) != current["metadata"]["resourceVersion"].as_str())
                {
                    return status(
                        StatusCode::CONFLICT,
                        "Conflict",
                        "the object has been modified",
                    );
                }
                let mut next = current.clone();
                if parts.method == Method::PUT {
                    next = body;
                } else if content_type.starts_with("application/json-patch+json") {
                    let patch: json_patch::Patch =
                        serde_json::from_value(body).expect("JSON patch");
                    if let Err(e) = json_patch::patch(&mut next, &patch) {
                        return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", &e.to_string());
                    }
                } else if content_type.starts_with("application/apply-patch") && status_only {
                    // One field manager owns all of status: applying replaces it.
                    next["status"] = body["status"].clone();
                } else {
                    json_patch::merge(&mut next, &body);
                }
                // The status subresource changes only status; the main resource never does.
                if status_only {
                    let status = next["status"].clone();
                    next = current.clone();
                    next["status"] = status;
                } else if !state
                    .whole
                    .iter()
                    .any(|plural| key.contains(&format!("/{plural}/")))
                {
                    next["status"] = current["status"].clone();
                }
                let spec_changed = next.get("spec") != current.get("spec");
                state.version += 1;
                next["metadata"]["resourceVersion"] = json!(state.version.to_string());
                if spec_changed {
                    let generation = current["metadata"]["generation"].as_i64().unwrap_or(1);
                    next["metadata"]["generation"] = json!(generation + 1);
                }
                let deleting = !next["metadata"]["deletionTimestamp"].is_null();
                let finalizers_left = next["metadata"]["finalizers"]
                    .as_array()
                    .is_some_and(|f| !f.is_empty());
                if deleting && !finalizers_left {
                    state.objects.remove(&key);
                } else {
                    state.objects.insert(key, next.clone());
                }
                ok(next)
            }
            Method::DELETE => {
                let Some(mut object) = state.objects.get(&key).cloned() else {
                    return status(
                        StatusCode::NOT_FOUND,
                        "NotFound",
                        &format!("{key} not found"),
                    );
                };
                if object["metadata"]["finalizers"]
                    .as_array()
                    .is_some_and(|f| !f.is_empty())
                {
                    object["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
                    state.objects.insert(key, object.clone());
                } else {
                    state.objects.remove(&key);
                }
                ok(object)
            }
            _ => status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "unsupported",
            ),
        }
    }
}

fn ok(value: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(value.to_string())))
        .unwrap()
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response<Full<Bytes>> {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16(),
    });
    Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// A collection path ends in a plural, e.g. `/api/v1/namespaces/x/secrets` or
/// `/apis/g/v/things`.
fn is_collection(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let skip = if segments.first() == Some(&"api") {
        2
    } else {
        3
    };
    let rest = &segments[skip.min(segments.len())..];
    rest.len() == 1 || (rest.len() == 3 && rest[0] == "namespaces")
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| {
            v.replace("%3D", "=")
                .replace("%2C", ",")
                .replace("%2F", "/")
        })
    })
}

/// `a=b,c=d` equality selectors (and bare keys) only.
fn labels_match(selector: &str, labels: &Value) -> bool {
    selector
        .split(',')
        .filter(|t| !t.is_empty())
        .all(|term| match term.split_once('=') {
            Some((k, v)) => labels.get(k).and_then(Value::as_str) == Some(v),
            None => labels.get(term).is_some(),
        })
}

/// Whether the object at `object` belongs to the list at `collection`; a list without a
/// namespace covers the objects of every namespace.
fn in_collection(collection: &str, object: &str) -> bool {
    if let Some(rest) = object.strip_prefix(&format!("{collection}/")) {
        return !rest.contains('/');
    }
    let Some((prefix, plural)) = collection.rsplit_once('/') else {
        return false;
    };
    let Some(rest) = object.strip_prefix(&format!("{prefix}/namespaces/")) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    parts.len() == 3 && parts[1] == plural
}
