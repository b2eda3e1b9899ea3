//! `GET pods/{name}/log`: what a real API server proxies to the Pod's kubelet, here read from
//! the node's log directory (`<namespace>/<pod>/<container>.log`, written by the harness's
//! actors as a container runtime would). Honours `container`, `tailLines` and `limitBytes`,
//! and refuses as kube-apiserver and the kubelet do (no node, unknown container, not started).

use std::collections::HashMap;
use std::path::Path;

use super::error::ApiError;
use super::ops;
use super::store::Store;
use super::types::ResourceType;

pub fn serve(
    store: &Store,
    rt: &ResourceType,
    namespace: Option<&str>,
    name: &str,
    params: &HashMap<String, String>,
    dir: Option<&Path>,
) -> Result<String, ApiError> {
    let pod = ops::get(store, rt, namespace, name)?;
    if pod["spec"]["nodeName"].as_str().is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let containers: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let container = match params.get("container") {
        Some(c) if containers.contains(&c.as_str()) => c.clone(),
        Some(c) => {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {name}"
            )));
        }
        None if containers.len() == 1 => containers[0].to_owned(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            )));
        }
    };
    let number = |key: &str| -> Result<Option<usize>, ApiError> {
        params
            .get(key)
            .map(|v| {
                v.parse::<usize>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "{key}: invalid value {v:?}: must be a non-negative integer"
                    ))
                })
            })
            .transpose()
    };
    let tail = number("tailLines")?;
    let limit = number("limitBytes")?;
    if limit == Some(0) {
        return Err(ApiError::bad_request("limitBytes: must be greater than 0"));
    }
    let Some(dir) = dir else {
        return Err(ApiError::new(
            500,
            "InternalError",
            format!("no kubelet answers for pod {name}"),
        ));
    };
    let path = dir
        .join(namespace.unwrap_or_default())
        .join(name)
        .join(format!("{container}.log"));
    let Ok(bytes) = std::fs::read(&path) else {
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
        )));
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut out: &str = &text;
    if let Some(n) = tail {
        // The last n lines: cut after the (n+1)-th newline from the end (a trailing newline
        // ends the last line rather than starting another).
        let body = text.strip_suffix('\n').unwrap_or(&text);
        let start = if n == 0 {
            text.len()
        } else {
            body.rmatch_indices('\n')
                .nth(n - 1)
                .map(|(i, _)| i + 1)
                .unwrap_or(0)
        };
        out = &text[start..];
    }
    let mut out = out.to_owned();
    if let Some(limit) = limit
        && out.len() > limit
    {
        let mut end = limit;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    Ok(out)
}
