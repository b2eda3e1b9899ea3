//! What a Pod's containers get before they start, as a kubelet prepares it: each volume as a
//! host directory (a claim's CSI volume directory, an `emptyDir`, a Secret's or ConfigMap's
//! keys as files), each container's mounts, environment (`value`, `secretKeyRef`,
//! `configMapKeyRef`, `fieldRef`, `envFrom`) and command with `$(VAR)` expanded. Anything not
//! there yet (an unbound claim, a missing Secret) is a [`Waiting`] with the kubelet's reason,
//! retried; anything this stand-in cannot do is a [`Waiting`] that says so.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvVar, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Volume,
};
use kube::{Api, Client, ResourceExt};

use super::{Images, Storage};

/// A host path mounted into the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub host: PathBuf,
    /// Where the container sees it (absolute).
    pub path: String,
    pub read_only: bool,
}

/// One container, ready to run.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub name: String,
    pub image: String,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    pub working_dir: String,
    pub termination_message_path: String,
    pub termination_from_log: bool,
    /// The image's own `/usr` files, layered over the host's ([`Images::usr_layers`]).
    pub usr_layers: Option<String>,
}

/// Why a container cannot start yet: the kubelet's `waiting` reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub reason: &'static str,
    pub message: String,
}

fn waiting(reason: &'static str, message: impl Into<String>) -> Waiting {
    Waiting {
        reason,
        message: message.into(),
    }
}

/// Where a system folder of the host is: no volume may be mounted there (its mount point
/// would be made in the host's own folder).
const SYSTEM: &[&str] = &[
    "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sys",
];

/// Prepares every volume of `pod` under `dir` and resolves its init containers and containers.
pub async fn prepare(
    client: &Client,
    storage: &Storage,
    images: &Images,
    pod: &Pod,
    dir: &Path,
) -> anyhow::Result<Result<(Vec<Prepared>, Vec<Prepared>), Waiting>> {
    let namespace = pod.namespace().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let mut hosts = HashMap::new();
    for volume in spec.volumes.iter().flatten() {
        match volume_dir(client, storage, &namespace, volume, dir).await? {
            Ok(host) => hosts.insert(volume.name.clone(), host),
            Err(wait) => return Ok(Err(wait)),
        };
    }
    let mut sources = Sources::new(client, &namespace);
    let mut resolve =
        async |containers: &[Container]| -> anyhow::Result<Result<Vec<Prepared>, Waiting>> {
            let mut out = Vec::new();
            for container in containers {
                match container_plan(&mut sources, pod, container, &hosts, images).await? {
                    Ok(plan) => out.push(plan),
                    Err(wait) => return Ok(Err(wait)),
                }
            }
            Ok(Ok(out))
        };
    let init = match resolve(spec.init_containers.as_deref().unwrap_or_default()).await? {
        Ok(init) => init,
        Err(wait) => return Ok(Err(wait)),
    };
    Ok(resolve(&spec.containers).await?.map(|main| (init, main)))
}

/// The host directory of one volume, made ready.
async fn volume_dir(
    client: &Client,
    storage: &Storage,
    namespace: &str,
    volume: &Volume,
    dir: &Path,
) -> anyhow::Result<Result<PathBuf, Waiting>> {
    let own = dir.join("volumes").join(&volume.name);
    if let Some(claim) = &volume.persistent_volume_claim {
        let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace);
        let Some(pvc) = claims.get_opt(&claim.claim_name).await? else {
            return Ok(Err(waiting(
                "ContainerCreating",
                format!("persistentvolumeclaim \"{}\" not found", claim.claim_name),
            )));
        };
        let bound = pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
        let Some(name) = pvc
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .filter(|_| bound)
        else {
            return Ok(Err(waiting(
                "ContainerCreating",
                format!(
                    "persistentvolumeclaim \"{}\" is not bound yet",
                    claim.claim_name
                ),
            )));
        };
        let pv = Api::<PersistentVolume>::all(client.clone())
            .get(&name)
            .await?;
        let Some(csi) = pv.spec.and_then(|s| s.csi) else {
            return Ok(Err(waiting(
                "ContainerCreating",
                format!("volume {name} is not a CSI volume; the stand-in mounts CSI volumes only"),
            )));
        };
        // The driver's volume context names the directory (a volume it provisioned); else the
        // driver registered here knows it (a volume an admin pre-provisioned).
        let from_context = csi
            .volume_attributes
            .as_ref()
            .and_then(|a| a.get(lifeline_hostpath_driver::csi::VOLUME_PATH))
            .map(PathBuf::from);
        return Ok(
            match from_context
                .or_else(|| storage.volume_dir(&csi.driver, &csi.volume_handle))
                .filter(|d| d.is_dir())
            {
                Some(host) => Ok(host),
                None => Err(waiting(
                    "ContainerCreating",
                    format!(
                        "driver {} has no volume {} on this node",
                        csi.driver, csi.volume_handle
                    ),
                )),
            },
        );
    }
    if volume.empty_dir.is_some() {
        std::fs::create_dir_all(&own)?;
        return Ok(Ok(own));
    }
    if let Some(host) = &volume.host_path {
        return Ok(host_path_dir(
            &host.path,
            host.type_.as_deref().unwrap_or_default(),
        ));
    }
    // A Secret's or ConfigMap's keys: (what, its keys if it exists, optional, items).
    let source = if let Some(source) = &volume.secret {
        let name = source.secret_name.clone().unwrap_or_default();
        let secret = Api::<Secret>::namespaced(client.clone(), namespace)
            .get_opt(&name)
            .await?;
        Some((
            format!("secret \"{name}\""),
            secret.as_ref().map(secret_files),
            source.optional,
            source.items.clone(),
        ))
    } else if let Some(source) = &volume.config_map {
        let name = source.name.clone();
        let map = Api::<ConfigMap>::namespaced(client.clone(), namespace)
            .get_opt(&name)
            .await?;
        Some((
            format!("configmap \"{name}\""),
            map.as_ref().map(config_map_files),
            source.optional,
            source.items.clone(),
        ))
    } else {
        None
    };
    let files: Vec<(String, Vec<u8>)> = if let Some((what, keys, optional, items)) = source {
        let keys = match keys {
            Some(keys) => keys,
            None if optional == Some(true) => BTreeMap::new(),
            None => {
                return Ok(Err(waiting(
                    "ContainerCreating",
                    format!("{what} not found"),
                )));
            }
        };
        keys.into_iter()
            .filter_map(|(key, value)| item_path(items.as_deref(), &key).map(|p| (p, value)))
            .collect()
    } else {
        return Ok(Err(waiting(
            "ContainerCreating",
            format!(
                "volume {:?}: the kubelet stand-in mounts persistentVolumeClaim, emptyDir, hostPath, secret and configMap volumes only",
                volume.name
            ),
        )));
    };
    std::fs::create_dir_all(&own)?;
    for (path, value) in files {
        let file = own.join(&path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(file, value)?;
    }
    Ok(Ok(own))
}

/// A `hostPath` volume: the host's directory itself (a driver's socket directory shared with
/// its sidecars). Directories only — the stand-in bind-mounts directories.
fn host_path_dir(path: &str, kind: &str) -> Result<PathBuf, Waiting> {
    let dir = PathBuf::from(path);
    match kind {
        "DirectoryOrCreate" => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| waiting("ContainerCreating", format!("hostPath {path}: {e}")))?;
            Ok(dir)
        }
        "" | "Directory" if dir.is_dir() => Ok(dir),
        "" | "Directory" => Err(waiting(
            "ContainerCreating",
            format!("hostPath type check failed: {path} is not a directory"),
        )),
        other => Err(waiting(
            "ContainerCreating",
            format!(
                "hostPath {path}: type {other:?}: the kubelet stand-in mounts directories only"
            ),
        )),
    }
}

fn secret_files(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut files: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, ByteString(v))| (k.clone(), v.clone()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        files.insert(k.clone(), v.clone().into_bytes());
    }
    files
}

fn config_map_files(map: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut files: BTreeMap<String, Vec<u8>> = map
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    for (k, ByteString(v)) in map.binary_data.iter().flatten() {
        files.insert(k.clone(), v.clone());
    }
    files
}

/// Where a key goes: its `items` path when items are listed (keys not listed are left out),
/// else its own name. Paths are relative and never climb out (`..`).
fn item_path(items: Option<&[k8s_openapi::api::core::v1::KeyToPath]>, key: &str) -> Option<String> {
    let path = match items {
        Some(items) => items.iter().find(|i| i.key == key)?.path.clone(),
        None => key.to_owned(),
    };
    let safe = !path.starts_with('/') && path.split('/').all(|p| !p.is_empty() && p != "..");
    safe.then_some(path)
}

/// Secrets and ConfigMaps read once per Pod.
struct Sources<'a> {
    client: &'a Client,
    namespace: &'a str,
    secrets: HashMap<String, Option<BTreeMap<String, Vec<u8>>>>,
    maps: HashMap<String, Option<BTreeMap<String, Vec<u8>>>>,
}

impl<'a> Sources<'a> {
    fn new(client: &'a Client, namespace: &'a str) -> Self {
        Self {
            client,
            namespace,
            secrets: HashMap::new(),
            maps: HashMap::new(),
        }
    }

    async fn secret(&mut self, name: &str) -> anyhow::Result<Option<&BTreeMap<String, Vec<u8>>>> {
        if !self.secrets.contains_key(name) {
            let secret = Api::<Secret>::namespaced(self.client.clone(), self.namespace)
                .get_opt(name)
                .await?;
            self.secrets
                .insert(name.to_owned(), secret.as_ref().map(secret_files));
        }
        Ok(self.secrets[name].as_ref())
    }

    async fn config_map(
        &mut self,
        name: &str,
    ) -> anyhow::Result<Option<&BTreeMap<String, Vec<u8>>>> {
        if !self.maps.contains_key(name) {
            let map = Api::<ConfigMap>::namespaced(self.client.clone(), self.namespace)
                .get_opt(name)
                .await?;
            self.maps
                .insert(name.to_owned(), map.as_ref().map(config_map_files));
        }
        Ok(self.maps[name].as_ref())
    }
}

async fn container_plan(
    sources: &mut Sources<'_>,
    pod: &Pod,
    container: &Container,
    hosts: &HashMap<String, PathBuf>,
    images: &Images,
) -> anyhow::Result<Result<Prepared, Waiting>> {
    let config_error = |message: String| Ok(Err(waiting("CreateContainerConfigError", message)));
    let mut env: Vec<(String, String)> = Vec::new();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (values, optional, what) = if let Some(s) = &from.secret_ref {
            (
                sources.secret(&s.name).await?.cloned(),
                s.optional,
                format!("secret \"{}\"", s.name),
            )
        } else if let Some(c) = &from.config_map_ref {
            (
                sources.config_map(&c.name).await?.cloned(),
                c.optional,
                format!("configmap \"{}\"", c.name),
            )
        } else {
            continue;
        };
        match values {
            Some(values) => env.extend(
                values
                    .into_iter()
                    .map(|(k, v)| (format!("{prefix}{k}"), String::from_utf8_lossy(&v).into())),
            ),
            None if optional == Some(true) => {}
            None => return config_error(format!("{what} not found")),
        }
    }
    for var in container.env.iter().flatten() {
        match env_value(sources, pod, var, &env).await? {
            Ok(Some(value)) => {
                env.retain(|(k, _)| *k != var.name);
                env.push((var.name.clone(), value));
            }
            Ok(None) => {}
            Err(message) => return config_error(message),
        }
    }
    let vars: HashMap<String, String> = env.iter().cloned().collect();
    let argv: Vec<String> = container
        .command
        .iter()
        .flatten()
        .chain(container.args.iter().flatten())
        .map(|a| expand(a, &vars))
        .collect();
    if argv.is_empty() {
        return config_error(format!(
            "container {:?} names no command: the stand-in has no image to take an entrypoint from",
            container.name
        ));
    }
    let mut mounts = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        let Some(host) = hosts.get(&mount.name) else {
            return config_error(format!("volume {:?} not found", mount.name));
        };
        let host = match mount.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) if sub.split('/').any(|p| p == "..") || sub.starts_with('/') => {
                return config_error(format!("subPath {sub:?} climbs out of its volume"));
            }
            Some(sub) => host.join(sub),
            None => host.clone(),
        };
        if let Err(message) = mount_path_allowed(&mount.mount_path) {
            return config_error(message);
        }
        mounts.push(Mount {
            host,
            path: mount.mount_path.clone(),
            read_only: mount.read_only == Some(true),
        });
    }
    for (path, file) in &images.files {
        mounts.push(Mount {
            host: file.clone(),
            path: path.clone(),
            read_only: true,
        });
    }
    // Parents first, so a mount inside another lands in it.
    mounts.sort_by_key(|m| m.path.matches('/').count());
    Ok(Ok(Prepared {
        name: container.name.clone(),
        image: container.image.clone().unwrap_or_default(),
        argv,
        env,
        mounts,
        working_dir: container.working_dir.clone().unwrap_or_else(|| "/".into()),
        termination_message_path: container
            .termination_message_path
            .clone()
            .unwrap_or_else(|| "/dev/termination-log".into()),
        termination_from_log: container.termination_message_policy.as_deref()
            == Some("FallbackToLogsOnError"),
        usr_layers: images.usr_layers.clone(),
    }))
}

/// A mount path is absolute, climbs nowhere and is not in a system folder of the host.
pub fn mount_path_allowed(path: &str) -> Result<(), String> {
    if !path.starts_with('/') || path.split('/').any(|p| p == "..") || path == "/" {
        return Err(format!(
            "mountPath {path:?} must be an absolute path below /"
        ));
    }
    if SYSTEM
        .iter()
        .any(|s| path == *s || path.starts_with(&format!("{s}/")))
    {
        return Err(format!(
            "mountPath {path:?} is inside the host's system folders, which the stand-in shares read-only"
        ));
    }
    Ok(())
}

async fn env_value(
    sources: &mut Sources<'_>,
    pod: &Pod,
    var: &EnvVar,
    earlier: &[(String, String)],
) -> anyhow::Result<Result<Option<String>, String>> {
    let Some(from) = &var.value_from else {
        let vars: HashMap<String, String> = earlier.iter().cloned().collect();
        return Ok(Ok(Some(expand(
            var.value.as_deref().unwrap_or_default(),
            &vars,
        ))));
    };
    let lookup = |values: Option<&BTreeMap<String, Vec<u8>>>,
                  key: &str,
                  optional: Option<bool>,
                  what: String| {
        match values.map(|v| v.get(key)) {
            Some(Some(value)) => Ok(Some(String::from_utf8_lossy(value).into_owned())),
            _ if optional == Some(true) => Ok(None),
            None => Err(format!("{what} not found")),
            Some(None) => Err(format!("couldn't find key {key} in {what}")),
        }
    };
    if let Some(s) = &from.secret_key_ref {
        let values = sources.secret(&s.name).await?;
        return Ok(lookup(
            values,
            &s.key,
            s.optional,
            format!("secret \"{}\"", s.name),
        ));
    }
    if let Some(c) = &from.config_map_key_ref {
        let values = sources.config_map(&c.name).await?;
        return Ok(lookup(
            values,
            &c.key,
            c.optional,
            format!("configmap \"{}\"", c.name),
        ));
    }
    if let Some(field) = &from.field_ref {
        return Ok(field_value(pod, &field.field_path).map(Some));
    }
    Ok(Err(format!(
        "env {}: the stand-in resolves value, secretKeyRef, configMapKeyRef and fieldRef only",
        var.name
    )))
}

/// The downward API's fields the stand-in knows.
pub fn field_value(pod: &Pod, path: &str) -> Result<String, String> {
    let spec = pod.spec.as_ref();
    Ok(match path {
        "metadata.name" => pod.name_any(),
        "metadata.namespace" => pod.namespace().unwrap_or_default(),
        "metadata.uid" => pod.metadata.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.podIP" => "127.0.0.1".into(),
        other => {
            if let Some(key) = other
                .strip_prefix("metadata.labels['")
                .and_then(|k| k.strip_suffix("']"))
            {
                return Ok(pod.labels().get(key).cloned().unwrap_or_default());
            }
            if let Some(key) = other
                .strip_prefix("metadata.annotations['")
                .and_then(|k| k.strip_suffix("']"))
            {
                return Ok(pod.annotations().get(key).cloned().unwrap_or_default());
            }
            return Err(format!("fieldRef {other:?} is not known to the stand-in"));
        }
    })
}

/// Kubernetes' `$(VAR)` expansion: a defined variable is replaced, an undefined reference is
/// left as written, `$$` is a literal `$`.
pub fn expand(text: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            match vars.get(&inner[..end]) {
                Some(value) => out.push_str(value),
                None => out.push_str(&rest[i..i + 2 + end + 1]),
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_expand_as_kubernetes_expands_them() {
        let vars = HashMap::from([("A".to_owned(), "x".to_owned())]);
        assert_eq!(expand("$(A)/$(B)", &vars), "x/$(B)");
        assert_eq!(expand("$$(A) $ $", &vars), "$(A) $ $");
        assert_eq!(expand("$(A", &vars), "$(A");
        assert_eq!(expand("é$(A)é", &vars), "éxé");
    }

    #[test]
    fn host_paths_are_directories_checked_as_their_type_says() {
        let dir = tempfile::tempdir().unwrap();
        let existing = dir.path().to_str().unwrap();
        assert_eq!(host_path_dir(existing, "").unwrap(), dir.path());
        assert_eq!(host_path_dir(existing, "Directory").unwrap(), dir.path());
        let missing = dir.path().join("sockets");
        let missing = missing.to_str().unwrap();
        let refused = host_path_dir(missing, "Directory").unwrap_err();
        assert!(
            refused.message.contains("not a directory"),
            "{}",
            refused.message
        );
        assert!(
            host_path_dir(missing, "DirectoryOrCreate")
                .unwrap()
                .is_dir()
        );
        let socket = host_path_dir(missing, "Socket").unwrap_err();
        assert!(
            socket.message.contains("directories only"),
            "{}",
            socket.message
        );
    }

    #[test]
    fn keys_and_mounts_stay_where_they_belong() {
        assert_eq!(item_path(None, "ca.crt").as_deref(), Some("ca.crt"));
        assert_eq!(item_path(None, "../x"), None);
        let items = [k8s_openapi::api::core::v1::KeyToPath {
            key: "k".into(),
            path: "dir/file".into(),
            mode: None,
        }];
        assert_eq!(item_path(Some(&items), "k").as_deref(), Some("dir/file"));
        assert_eq!(item_path(Some(&items), "other"), None);
        assert!(mount_path_allowed("/data").is_ok());
        assert!(mount_path_allowed("/dev/termination-log").is_ok());
        for bad in ["data", "/", "/usr/local/x", "/etc", "/a/../etc"] {
            assert!(mount_path_allowed(bad).is_err(), "{bad}");
        }
    }
}
