//! What the real API server says of an object: created — or updated from `old` — as a
//! server-side dry run with strict field validation, so the schema, the defaults and every CEL
//! rule (transition rules included) are the server's own, not a copy of them. A `status` is
//! judged through the status subresource, as a controller writes it.

use std::sync::atomic::{AtomicU32, Ordering};

use kube::Client;
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use serde_json::Value;

static CASES: AtomicU32 = AtomicU32::new(0);

/// The API server's objections to `object` (none: it would be accepted). Namespaced kinds go
/// to `namespace`; each call renames the object so that calls never collide. An `old` object
/// must itself be valid: it is created for real, and deleted again after the verdict.
pub async fn problems(
    client: &Client,
    namespace: &str,
    object: &Value,
    old: Option<&Value>,
) -> anyhow::Result<Vec<String>> {
    let (group, version) = match object["apiVersion"].as_str().unwrap_or_default() {
        v if v.contains('/') => v.split_once('/').expect("has a slash"),
        v => ("", v),
    };
    let kind = object["kind"].as_str().unwrap_or_default();
    let (resource, capabilities) =
        kube::discovery::pinned_kind(client, &GroupVersionKind::gvk(group, version, kind)).await?;
    let base = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let namespaced = capabilities.scope == Scope::Namespaced;
    let collection = if namespaced {
        format!("{base}/namespaces/{namespace}/{}", resource.plural)
    } else {
        format!("{base}/{}", resource.plural)
    };
    let name = format!(
        "{}-{}",
        object["metadata"]["name"].as_str().unwrap_or("case"),
        CASES.fetch_add(1, Ordering::Relaxed)
    );
    let prepare = |object: &Value| {
        let mut object = object.clone();
        object["metadata"]["name"] = name.clone().into();
        if namespaced {
            object["metadata"]["namespace"] = namespace.into();
        }
        object
    };
    let object = prepare(object);
    const DRY: &str = "dryRun=All&fieldValidation=Strict";
    let has_status = object.get("status").is_some();
    let item = format!("{collection}/{name}");
    let verdict = match old {
        None if !has_status => send(client, "POST", &format!("{collection}?{DRY}"), &object).await,
        // A status is only written through its subresource: the object is created without
        // it, then the status is judged there.
        None => {
            let mut spec_only = object.clone();
            spec_only
                .as_object_mut()
                .expect("an object")
                .remove("status");
            match send(client, "POST", &collection, &spec_only).await {
                Err(problem) => Err(problem),
                Ok(created) => {
                    let mut update = object.clone();
                    update["metadata"]["resourceVersion"] =
                        created["metadata"]["resourceVersion"].clone();
                    let verdict =
                        send(client, "PUT", &format!("{item}/status?{DRY}"), &update).await;
                    delete(client, &item).await;
                    verdict
                }
            }
        }
        Some(old) => {
            let created = send(client, "POST", &collection, &prepare(old))
                .await
                .map_err(|p| anyhow::anyhow!("the old object is refused: {p}"))?;
            let mut update = object.clone();
            update["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"].clone();
            let verdict = send(client, "PUT", &format!("{item}?{DRY}"), &update).await;
            delete(client, &item).await;
            verdict
        }
    };
    Ok(match verdict {
        Ok(_) => Vec::new(),
        Err(problem) => vec![problem],
    })
}

/// One request; `Err` with the server's message when it refuses (any 4xx).
async fn send(client: &Client, method: &str, path: &str, body: &Value) -> Result<Value, String> {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).expect("JSON"))
        .expect("a request");
    match client.request::<Value>(request).await {
        Ok(value) => Ok(value),
        Err(kube::Error::Api(status)) => Err(status.message),
        Err(other) => Err(format!("no answer: {other}")),
    }
}

async fn delete(client: &Client, path: &str) {
    if let Ok(request) = http::Request::delete(path).body(Vec::new()) {
        let _ = client.request_text(request).await;
    }
}
