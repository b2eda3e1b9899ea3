//! HTTP: routing Kubernetes API paths to the store, and chunked watch streams.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::discovery;
use super::error::ApiError;
use super::ops::{self, PatchType};
use super::selectors::Selector;
use super::store::{Change, Store};
use super::table;
use super::types::ResourceType;
use super::{openapi, openapi_v2};

pub type Body = BoxBody<Bytes, Infallible>;

pub struct Shared {
    pub store: Mutex<Store>,
    pub address: String,
    pub bookmark_interval: Duration,
    /// Writes served, by "VERB resource[/status]", for benchmarks (`GET /debug/writes`).
    pub writes: Mutex<std::collections::BTreeMap<String, u64>>,
    /// GETs of one named object served, by "GET resource[/subresource]" (`GET /debug/reads`):
    /// what a watch cache could have answered.
    pub reads: Mutex<std::collections::BTreeMap<String, u64>>,
    /// Every distinct request, by client `User-Agent`, as RBAC sees it (`GET /debug/access`):
    /// lets a test check a controller only does what its declared RBAC rules allow.
    pub access: Mutex<std::collections::BTreeSet<Access>>,
    /// Where the node's container logs are (`<namespace>/<pod>/<container>.log`), served as
    /// `pods/log` the way the API server proxies a kubelet's; `None`: no kubelet.
    pub pod_logs: Option<std::path::PathBuf>,
}

/// One kind of request, in RBAC's terms.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Access {
    pub agent: String,
    pub verb: String,
    pub group: String,
    /// The plural, with `/status` for the status subresource.
    pub resource: String,
    /// `None` for cluster-scoped resources and requests across all namespaces.
    pub namespace: Option<String>,
    pub name: Option<String>,
}

/// RBAC's verb for a request.
fn rbac_verb(method: &Method, named: bool, watch: bool) -> &'static str {
    match (method, named) {
        (&Method::GET, true) => "get",
        (&Method::GET, false) if watch => "watch",
        (&Method::GET, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => "unknown",
    }
}

fn json_response(status: u16, value: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(value.to_string())).boxed())
        .expect("valid response")
}

fn accepts(request: &Request<Incoming>, media_type: &str) -> bool {
    request
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains(media_type))
}

fn error_response(error: &ApiError) -> Response<Body> {
    json_response(error.code, &error.to_status())
}

/// What a path names.
enum Route {
    Static(Value),
    /// The OpenAPI v2 document, served as JSON or protobuf by `Accept`.
    OpenApiV2(Value),
    Resource {
        rt: Box<ResourceType>,
        namespace: Option<String>,
        name: Option<String>,
        subresource: Option<String>,
    },
}

fn route(shared: &Shared, path: &str) -> Result<Route, ApiError> {
    let store = shared.store.lock().expect("store lock");
    let registry = &store.registry;
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let not_found = || {
        ApiError::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
    };
    let (group, version, rest) = match segments.as_slice() {
        ["api"] => return Ok(Route::Static(discovery::api_versions(&shared.address))),
        ["apis"] => return Ok(Route::Static(discovery::group_list(registry))),
        ["version"] => return Ok(Route::Static(discovery::version())),
        ["openapi", "v2"] => return Ok(Route::OpenApiV2(openapi_v2::document(registry))),
        ["openapi", "v3"] => return Ok(Route::Static(openapi::root(registry))),
        ["openapi", "v3", "api", version] => {
            return openapi::document(registry, "", version)
                .map(Route::Static)
                .ok_or_else(not_found);
        }
        ["openapi", "v3", "apis", group, version] => {
            return openapi::document(registry, group, version)
                .map(Route::Static)
                .ok_or_else(not_found);
        }
        ["healthz" | "readyz" | "livez"] => return Ok(Route::Static(json!("ok"))),
        ["debug", "writes"] => {
            let writes = shared.writes.lock().expect("writes lock").clone();
            return Ok(Route::Static(json!(writes)));
        }
        ["debug", "reads"] => {
            let reads = shared.reads.lock().expect("reads lock").clone();
            return Ok(Route::Static(json!(reads)));
        }
        ["debug", "access"] => {
            let access = shared.access.lock().expect("access lock").clone();
            return Ok(Route::Static(json!(access)));
        }
        ["apis", group] => {
            return discovery::group(registry, group)
                .map(Route::Static)
                .ok_or_else(not_found);
        }
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(not_found()),
    };
    if rest.is_empty() {
        return discovery::resource_list(registry, group, version)
            .map(Route::Static)
            .ok_or_else(not_found);
    }
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, rest @ ..] if !matches!(*plural, "status" | "finalize") => {
            (Some(ns.to_string()), {
                let mut v = vec![*plural];
                v.extend_from_slice(rest);
                v
            })
        }
        _ => (None, rest.to_vec()),
    };
    let rt = registry
        .get(group, version, rest[0])
        .cloned()
        .ok_or_else(not_found)?;
    if namespace.is_some() && !rt.namespaced {
        return Err(not_found());
    }
    Ok(Route::Resource {
        rt: Box::new(rt),
        namespace,
        name: rest.get(1).map(|s| s.to_string()),
        subresource: rest.get(2).map(|s| s.to_string()),
    })
}

fn query(request: &Request<Incoming>) -> HashMap<String, String> {
    request
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `limit` and `continue` of a list request (`limit=0` or none: everything).
fn page(params: &HashMap<String, String>) -> Result<ops::Page, ApiError> {
    let limit = match params.get("limit").map(|l| l.parse::<usize>()) {
        None | Some(Ok(0)) => None,
        Some(Ok(limit)) => Some(limit),
        Some(Err(_)) => return Err(ApiError::bad_request("limit must be a number")),
    };
    let after = match params.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => Some(ops::Continue::parse(token)?),
        None => None,
    };
    Ok(ops::Page { limit, after })
}

fn parse_body(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes)
        .or_else(|_| serde_saphyr::from_slice::<Value>(bytes))
        .map_err(|e| ApiError::bad_request(format!("cannot parse the request body: {e}")))
}

pub async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let route = match route(&shared, &path) {
        Ok(route) => route,
        Err(e) => return error_response(&e),
    };
    let Route::Resource {
        rt,
        namespace,
        name,
        subresource,
    } = route
    else {
        return match route {
            Route::OpenApiV2(document) if accepts(&request, openapi_v2::PROTOBUF) => {
                Response::builder()
                    .status(200)
                    .header(
                        http::header::CONTENT_TYPE,
                        openapi_v2::PROTOBUF_CONTENT_TYPE,
                    )
                    .body(Full::new(Bytes::from(openapi_v2::protobuf(&document))).boxed())
                    .expect("valid response")
            }
            Route::Static(value) | Route::OpenApiV2(value) => json_response(200, &value),
            Route::Resource { .. } => unreachable!("handled above"),
        };
    };
    let rt = *rt;
    let params = query(&request);
    let method = request.method().clone();
    let watch = params.get("watch").is_some_and(|w| w == "true" || w == "1");
    let agent = request
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    shared.access.lock().expect("access lock").insert(Access {
        agent,
        verb: rbac_verb(&method, name.is_some(), watch).to_owned(),
        group: rt.group.clone(),
        resource: match &subresource {
            Some(sub) => format!("{}/{sub}", rt.plural),
            None => rt.plural.clone(),
        },
        namespace: namespace.clone(),
        name: name.clone(),
    });
    let content_type = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let wants_table = accepts(&request, "as=Table");
    if content_type.starts_with("application/vnd.kubernetes.protobuf") {
        // Clients fall back to JSON on 415; this server speaks JSON only.
        return error_response(&ApiError::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
        ));
    }
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return error_response(&ApiError::bad_request(e.to_string())),
    };
    if subresource.as_deref() == Some("log") && rt.plural == "pods" && rt.group.is_empty() {
        return match (&method, name.as_deref()) {
            (&Method::GET, Some(name)) => {
                let store = shared.store.lock().expect("store lock");
                match super::logs::serve(
                    &store,
                    &rt,
                    namespace.as_deref(),
                    name,
                    &params,
                    shared.pod_logs.as_deref(),
                ) {
                    Ok(text) => Response::builder()
                        .status(200)
                        .header(http::header::CONTENT_TYPE, "text/plain")
                        .body(Full::new(Bytes::from(text)).boxed())
                        .expect("valid response"),
                    Err(e) => error_response(&e),
                }
            }
            _ => error_response(&ApiError::new(
                405,
                "MethodNotAllowed",
                "pods/log is read with GET",
            )),
        };
    }
    let status_only = match subresource.as_deref() {
        None => false,
        Some("status") if rt.status_subresource => true,
        Some(other) => {
            return error_response(&ApiError::new(
                404,
                "NotFound",
                format!("subresource {other:?} of {} is not served", rt.plural),
            ));
        }
    };
    let labels = match Selector::parse(
        params
            .get("labelSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    ) {
        Ok(s) => s,
        Err(e) => return error_response(&ApiError::bad_request(e)),
    };
    let fields = match Selector::parse(
        params
            .get("fieldSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )
    .and_then(|s| s.check_fields().map(|()| s))
    {
        Ok(s) => s,
        Err(e) => return error_response(&ApiError::bad_request(e)),
    };
    let manager = params.get("fieldManager").cloned().unwrap_or_default();
    let ns = namespace.as_deref();
    if method == Method::GET && name.is_none() && watch {
        return watch_response(&shared, rt, namespace, labels, fields, &params, wants_table);
    }
    let parsed = match parse_body(&body) {
        Ok(v) => v,
        Err(e) => return error_response(&e),
    };
    if method == Method::GET && name.is_some() {
        let resource = match &subresource {
            Some(sub) => format!("{}/{sub}", rt.plural),
            None => rt.plural.clone(),
        };
        *shared
            .reads
            .lock()
            .expect("reads lock")
            .entry(format!("GET {resource}"))
            .or_default() += 1;
    }
    if method != Method::GET {
        let resource = if status_only {
            format!("{}/status", rt.plural)
        } else {
            rt.plural.clone()
        };
        *shared
            .writes
            .lock()
            .expect("writes lock")
            .entry(format!("{method} {resource}"))
            .or_default() += 1;
    }
    // fieldValidation=Strict (what kubectl sends): a custom resource with fields its schema
    // does not declare is refused instead of pruned.
    let writes = matches!(method, Method::POST | Method::PUT | Method::PATCH);
    let json_patch = content_type.starts_with("application/json-patch+json");
    if writes
        && !json_patch
        && params.get("fieldValidation").map(String::as_str) == Some("Strict")
        && let Some(schema) = &rt.schema
    {
        let unknown = schema.unknown_fields(&parsed);
        if !unknown.is_empty() {
            let fields: Vec<String> = unknown
                .iter()
                .map(|f| format!("unknown field \"{}\"", f.trim_start_matches('.')))
                .collect();
            return error_response(&ApiError::bad_request(format!(
                "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
                fields.join(", "),
                kind = rt.kind,
                version = rt.version,
            )));
        }
    }
    let mut store = shared.store.lock().expect("store lock");
    let include = params.get("includeObject").map(String::as_str);
    let result = match (&method, name.as_deref()) {
        (&Method::GET, Some(name)) => ops::get(&store, &rt, ns, name).map(|object| {
            if wants_table {
                let version = object["metadata"]["resourceVersion"].clone();
                table::table(&rt.columns, &[object], &version, include)
            } else {
                object
            }
        }),
        (&Method::GET, None) => page(&params).and_then(|page| {
            let list = ops::list(&store, &rt, ns, &labels, &fields, &page)?;
            Ok(if wants_table {
                let items = list["items"].as_array().cloned().unwrap_or_default();
                let mut table = table::table(
                    &rt.columns,
                    &items,
                    &list["metadata"]["resourceVersion"],
                    include,
                );
                if let Some(next) = list["metadata"].get("continue") {
                    table["metadata"]["continue"] = next.clone();
                }
                table
            } else {
                list
            })
        }),
        (&Method::POST, None) => {
            let manager = if manager.is_empty() {
                "unknown".to_owned()
            } else {
                manager
            };
            ops::create(&mut store, &rt, ns, parsed, &manager)
        }
        (&Method::PUT, Some(name)) => {
            let manager = if manager.is_empty() {
                "unknown".to_owned()
            } else {
                manager
            };
            ops::update(&mut store, &rt, ns, name, parsed, status_only, &manager)
        }
        (&Method::PATCH, Some(name)) => match PatchType::from_content_type(&content_type) {
            Some(patch_type) => {
                let force = params.get("force").is_some_and(|f| f == "true");
                let manager = if manager.is_empty() && patch_type != PatchType::Apply {
                    "unknown".to_owned()
                } else {
                    manager
                };
                ops::patch(
                    &mut store,
                    &rt,
                    ns,
                    name,
                    patch_type,
                    parsed,
                    status_only,
                    &manager,
                    force,
                )
            }
            None => Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!("the patch content type {content_type:?} is not supported"),
            )),
        },
        (&Method::DELETE, Some(name)) => ops::delete(&mut store, &rt, ns, name),
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("{method} is not supported on {path}"),
        )),
    };
    drop(store);
    match result {
        Ok(value) => json_response(if method == Method::POST { 201 } else { 200 }, &value),
        Err(e) => error_response(&e),
    }
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn bookmark(rt: &ResourceType, version: u64, initial_end: bool) -> Value {
    let mut object = json!({
        "apiVersion": rt.api_version(), "kind": rt.kind,
        "metadata": {"resourceVersion": version.to_string()},
    });
    if initial_end {
        object["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    object
}

/// A watch: replays from `resourceVersion` (410 Gone if too old), or lists first when asked
/// for initial events, then streams changes, with BOOKMARKs if allowed, until `timeoutSeconds`.
fn watch_response(
    shared: &Arc<Shared>,
    rt: ResourceType,
    namespace: Option<String>,
    labels: Selector,
    fields: Selector,
    params: &HashMap<String, String>,
    as_table: bool,
) -> Response<Body> {
    // `kubectl get -w` watches in the Table format: each event's object is a one-row Table.
    let render = {
        let columns = rt.columns.clone();
        let include = params.get("includeObject").cloned();
        move |kind: &str, object: &Value| {
            if as_table {
                let version = object["metadata"]["resourceVersion"].clone();
                let one = table::table(
                    &columns,
                    std::slice::from_ref(object),
                    &version,
                    include.as_deref(),
                );
                event_line(kind, &one)
            } else {
                event_line(kind, object)
            }
        }
    };
    let bookmarks = params
        .get("allowWatchBookmarks")
        .is_some_and(|b| b == "true");
    let initial_events = params.get("sendInitialEvents").is_some_and(|b| b == "true");
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let from: Option<u64> = params
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0);
    let type_key = rt.key();
    let relevant = {
        let type_key = type_key.clone();
        let namespace = namespace.clone();
        move |change: &Change| {
            change.type_key == type_key
                && namespace.as_ref().is_none_or(|ns| *ns == change.namespace)
                && ops::matches(&change.object, &labels, &fields)
        }
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let mut first: Vec<Bytes> = Vec::new();
    let (mut live, mut last_sent) = {
        let store = shared.store.lock().expect("store lock");
        let live = store.changes.subscribe();
        let mut last = store.version;
        match from {
            Some(version) if version < store.oldest_watchable() => {
                let gone = ApiError::gone(format!(
                    "too old resource version: {version} ({})",
                    store.oldest_watchable()
                ));
                first.push(event_line("ERROR", &gone.to_status()));
                drop(tx);
                let stream = ReceiverStream::new(rx);
                return stream_response(first, stream);
            }
            Some(version) => {
                for change in store.history.iter().filter(|c| c.version > version) {
                    if relevant(change) {
                        first.push(render(change.kind, &change.object));
                    }
                }
            }
            None => {
                let list = ops::list(
                    &store,
                    &rt,
                    namespace.as_deref(),
                    &Selector::default(),
                    &Selector::default(),
                    &ops::Page::default(),
                )
                .expect("an unpaged list of the current version");
                for item in list["items"].as_array().into_iter().flatten() {
                    let change = Change {
                        version: 0,
                        type_key: type_key.clone(),
                        namespace: item["metadata"]["namespace"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        kind: "ADDED",
                        object: item.clone(),
                    };
                    if relevant(&change) {
                        first.push(render("ADDED", item));
                    }
                }
                if initial_events {
                    first.push(event_line("BOOKMARK", &bookmark(&rt, store.version, true)));
                }
            }
        }
        last = last.max(from.unwrap_or(0));
        (live, last)
    };
    let shared = Arc::clone(shared);
    let interval = shared.bookmark_interval;
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = ticker.tick(), if bookmarks => {
                    let version = shared.store.lock().expect("store lock").version;
                    if tx.send(event_line("BOOKMARK", &bookmark(&rt, version, false))).await.is_err() {
                        return;
                    }
                }
                change = live.recv() => match change {
                    Ok(change) => {
                        if change.version <= last_sent || !relevant(&change) {
                            continue;
                        }
                        last_sent = change.version;
                        if tx.send(render(change.kind, &change.object)).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let gone = ApiError::gone("the watch fell behind; list again");
                        let _ = tx.send(event_line("ERROR", &gone.to_status())).await;
                        return;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    stream_response(first, ReceiverStream::new(rx))
}

fn stream_response(first: Vec<Bytes>, rest: ReceiverStream<Bytes>) -> Response<Body> {
    let stream = futures::stream::iter(first)
        .chain(rest)
        .map(|chunk| Ok::<_, Infallible>(Frame::data(chunk)));
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::TRANSFER_ENCODING, "chunked")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .expect("valid response")
}
