//! A VolSync restic mover for ReplicationSources and ReplicationDestinations with `restic`
//! and a manual trigger: backup of the source PVC's data, restore (honouring `restoreAsOf`
//! and `previous`) into a PVC whose snapshot becomes `latestImage`, and the status VolSync
//! writes. It runs only while the cluster's VolSync CRDs are Lifeline's stand-ins.
//!
//! Knowingly simpler than VolSync: no mover pods (restic runs here, on the volume's
//! directory), every copyMethod reads the source directly, schedules are not run, a failed
//! run is retried every [`RETRY`] rather than with a Job's backoff.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use lifeline_api::foreign::snapshot::VolumeSnapshot;
use lifeline_api::foreign::volsync::{
    CONDITION_SYNCHRONIZING, CopyMethod, CustomCa, ReplicationDestination, ReplicationSource,
    SyncStatus, SynchronizingReason, Trigger,
};
use lifeline_api::go_duration;
use serde_json::{Value, json};

use super::mover_pod::{self, MoverPod};
use super::restic::{self, ResticFailed};
use super::{Actors, Site};

/// How long after a failed run the mover tries again.
pub const RETRY: Duration = Duration::from_secs(5);
/// The label Lifeline's stand-in CRDs carry; real VolSync's do not.
pub const STAND_IN_LABEL: &str = "lifeline.dev/stand-in";

#[derive(Default)]
struct Runs {
    /// (kind, namespace, name) → running, or failed at.
    state: HashMap<Key, Option<Instant>>,
}

/// Starts the mover if the cluster's ReplicationSource CRD is our stand-in.
pub async fn start(client: Client, site: Site) -> anyhow::Result<Actors> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crd = Api::<CustomResourceDefinition>::all(client.clone())
        .get_opt("replicationsources.volsync.backube")
        .await?;
    let stand_in =
        crd.is_some_and(|c| c.labels().get(STAND_IN_LABEL).map(String::as_str) == Some("true"));
    let mut actors = Actors::default();
    if !stand_in {
        tracing::info!("real VolSync CRDs installed; the restic mover stays off");
        return Ok(actors);
    }
    let runs = Arc::new(Mutex::new(Runs::default()));
    actors.spawn("volsync", move || {
        round(client.clone(), site.clone(), Arc::clone(&runs))
    });
    Ok(actors)
}

/// Starts a run for every object whose manual trigger has not been served yet.
async fn round(client: Client, site: Site, runs: Arc<Mutex<Runs>>) -> anyhow::Result<()> {
    let sources = Api::<ReplicationSource>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    for source in sources {
        let status = source.status.as_ref().map(|s| &s.sync);
        let Some(trigger) = pending(
            source.spec.trigger.as_ref(),
            status,
            source.spec.paused,
            source.spec.restic.is_some(),
        ) else {
            continue;
        };
        let (client, site) = (client.clone(), site.clone());
        start_run(&runs, key("ReplicationSource", &source), async move {
            backup(&client, &site, &source, &trigger).await
        });
    }
    let destinations = Api::<ReplicationDestination>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    for destination in destinations {
        let status = destination.status.as_ref().map(|s| &s.sync);
        let spec = &destination.spec;
        let Some(trigger) = pending(
            spec.trigger.as_ref(),
            status,
            spec.paused,
            spec.restic.is_some(),
        ) else {
            continue;
        };
        let (client, site) = (client.clone(), site.clone());
        start_run(
            &runs,
            key("ReplicationDestination", &destination),
            async move { restore(&client, &site, &destination, &trigger).await },
        );
    }
    Ok(())
}

type Key = (String, String, String);

fn key(kind: &str, object: &impl Resource) -> Key {
    let meta = object.meta();
    (
        kind.to_owned(),
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// The manual trigger still to serve, if any: set, not yet `lastManualSync`, not paused, restic.
fn pending(
    trigger: Option<&Trigger>,
    status: Option<&SyncStatus>,
    paused: Option<bool>,
    restic: bool,
) -> Option<String> {
    let trigger = trigger.and_then(|t| t.manual.clone())?;
    let done = status.and_then(|s| s.last_manual_sync.as_deref()) == Some(trigger.as_str());
    (!done && paused != Some(true) && restic).then_some(trigger)
}

/// Runs `work` for `key` in the background unless a run is going or failed recently.
fn start_run(
    runs: &Arc<Mutex<Runs>>,
    key: Key,
    work: impl Future<Output = anyhow::Result<()>> + Send + 'static,
) {
    if !claim(runs, &key) {
        return;
    }
    let runs = Arc::clone(runs);
    tokio::spawn(async move {
        let result = work.await;
        finish(&runs, key, result);
    });
}

/// Marks `key` running unless it is running or failed less than [`RETRY`] ago.
fn claim(runs: &Mutex<Runs>, key: &Key) -> bool {
    let mut runs = runs.lock().expect("lock");
    match runs.state.get(key) {
        Some(None) => false,
        Some(Some(failed)) if failed.elapsed() < RETRY => false,
        _ => {
            runs.state.insert(key.clone(), None);
            true
        }
    }
}

fn finish(runs: &Mutex<Runs>, key: Key, result: anyhow::Result<()>) {
    let mut runs = runs.lock().expect("lock");
    match result {
        Ok(()) => {
            runs.state.remove(&key);
        }
        Err(error) => {
            tracing::warn!(kind = %key.0, namespace = %key.1, name = %key.2, error = %format!("{error:#}"), "mover run failed");
            runs.state.insert(key, Some(Instant::now()));
        }
    }
}

/// Now, truncated to the second as `metav1.Time` is on the wire.
fn now() -> Time {
    let now = Timestamp::now();
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}

fn condition(reason: SynchronizingReason, status: &str, message: &str) -> Value {
    json!([{
        "type": CONDITION_SYNCHRONIZING, "status": status, "reason": reason.as_str(), "message": message,
        "lastTransitionTime": now().0.to_string(),
    }])
}

/// The repository Secret's keys the real mover hands to restic; it ignores every other key
/// (`../shared/spec/datamover-api.md`, "How the real restic mover runs").
pub const PASSED_KEYS: &[&str] = &[
    "RESTIC_REPOSITORY",
    "RESTIC_PASSWORD",
    "RESTIC_COMPRESSION",
    "RESTIC_PACK_SIZE",
    "RESTIC_READ_CONCURRENCY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "RESTIC_AWS_ASSUME_ROLE_ARN",
    "RESTIC_AWS_ASSUME_ROLE_SESSION_NAME",
    "RESTIC_AWS_ASSUME_ROLE_EXTERNAL_ID",
    "RESTIC_AWS_ASSUME_ROLE_POLICY",
    "RESTIC_AWS_ASSUME_ROLE_REGION",
    "RESTIC_AWS_ASSUME_ROLE_STS_ENDPOINT",
    "ST_AUTH",
    "ST_USER",
    "ST_KEY",
    "B2_ACCOUNT_ID",
    "B2_ACCOUNT_KEY",
    "AZURE_ACCOUNT_NAME",
    "AZURE_ACCOUNT_KEY",
    "AZURE_ACCOUNT_SAS",
    "AZURE_ENDPOINT_SUFFIX",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "GOOGLE_PROJECT_ID",
    "RESTIC_REST_USERNAME",
    "RESTIC_REST_PASSWORD",
];

/// The Swift/OpenStack keys the mover passes (`OS_` followed by one of these).
const PASSED_OS_KEYS: &[&str] = &[
    "AUTH_URL",
    "REGION_NAME",
    "USERNAME",
    "USER_ID",
    "PASSWORD",
    "TENANT_ID",
    "TENANT_NAME",
    "USER_DOMAIN_NAME",
    "USER_DOMAIN_ID",
    "PROJECT_NAME",
    "PROJECT_DOMAIN_NAME",
    "PROJECT_DOMAIN_ID",
    "TRUST_ID",
    "APPLICATION_CREDENTIAL_ID",
    "APPLICATION_CREDENTIAL_NAME",
    "APPLICATION_CREDENTIAL_SECRET",
    "STORAGE_URL",
    "AUTH_TOKEN",
];

/// Whether the real mover passes this repository Secret key to restic.
pub fn passed(key: &str) -> bool {
    PASSED_KEYS.contains(&key)
        || key
            .strip_prefix("OS_")
            .is_some_and(|rest| PASSED_OS_KEYS.contains(&rest))
}

/// A Secret's or ConfigMap's data as text.
fn text_data(secret: Secret) -> BTreeMap<String, String> {
    let mut data: BTreeMap<String, String> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    data.extend(secret.string_data.unwrap_or_default());
    data
}

/// What a restic run gets, as the real mover gives it: only the passed keys of the repository
/// Secret, `GOOGLE_APPLICATION_CREDENTIALS` as a file, the CA only from `customCA` (as
/// `--cacert`), a cache directory; and no local-path repository unless the harness allows one
/// (the real mover can write only to its volume, its cache and /tmp).
async fn repository_env(
    client: &Client,
    site: &Site,
    namespace: &str,
    secret: &str,
    custom_ca: Option<&CustomCa>,
    scratch: &std::path::Path,
) -> anyhow::Result<restic::Repository> {
    let data = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(secret)
        .await?
        .map(text_data)
        .with_context(|| format!("repository Secret {namespace}/{secret} not found"))?;
    let mut env: BTreeMap<String, String> = data
        .iter()
        .filter(|(k, _)| passed(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let repository = env.get("RESTIC_REPOSITORY").cloned().unwrap_or_default();
    if (repository.starts_with('/') || repository.starts_with("local:"))
        && !site.allow_local_repository
    {
        bail!(
            "RESTIC_REPOSITORY is a local path; the mover can write only to its volume, its cache and /tmp (use a remote repository)"
        );
    }
    std::fs::create_dir_all(scratch)?;
    if let Some(credentials) = data.get("GOOGLE_APPLICATION_CREDENTIALS") {
        let path = scratch.join("gcs-credentials.json");
        std::fs::write(&path, credentials)?;
        env.insert(
            "GOOGLE_APPLICATION_CREDENTIALS".into(),
            path.display().to_string(),
        );
    }
    env.insert(
        "RESTIC_CACHE_DIR".into(),
        site.root.join("restic-cache").display().to_string(),
    );
    let cacert = match custom_ca {
        Some(ca) => Some(write_custom_ca(client, namespace, ca, scratch).await?),
        None => None,
    };
    Ok(restic::Repository {
        env,
        cacert,
        ..restic::Repository::default()
    })
}

/// Writes `customCA`'s bundle (a Secret's or a ConfigMap's key) where restic reads it.
async fn write_custom_ca(
    client: &Client,
    namespace: &str,
    ca: &CustomCa,
    scratch: &std::path::Path,
) -> anyhow::Result<std::path::PathBuf> {
    let key = ca
        .key
        .clone()
        .context("spec.restic.customCA.key is not set")?;
    let bundle = match (&ca.secret_name, &ca.config_map_name) {
        (Some(name), _) => Api::<Secret>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await?
            .map(text_data)
            .with_context(|| format!("customCA Secret {namespace}/{name} not found"))?
            .remove(&key),
        (None, Some(name)) => Api::<ConfigMap>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await?
            .with_context(|| format!("customCA ConfigMap {namespace}/{name} not found"))?
            .data
            .unwrap_or_default()
            .remove(&key),
        (None, None) => bail!("spec.restic.customCA names neither a Secret nor a ConfigMap"),
    }
    .with_context(|| format!("customCA has no key {key:?}"))?;
    let path = scratch.join("customCA").join("ca.crt");
    std::fs::create_dir_all(path.parent().unwrap_or(scratch))?;
    std::fs::write(&path, bundle)?;
    Ok(path)
}

/// The directory behind a bound claim, or `None` while it is not bound.
async fn claim_dir(
    client: &Client,
    site: &Site,
    namespace: &str,
    claim: &str,
) -> anyhow::Result<Option<std::path::PathBuf>> {
    let Some(pvc) = Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace)
        .get_opt(claim)
        .await?
    else {
        return Ok(None);
    };
    let Some(volume) = pvc.spec.and_then(|s| s.volume_name) else {
        return Ok(None);
    };
    let Some(pv) = Api::<PersistentVolume>::all(client.clone())
        .get_opt(&volume)
        .await?
    else {
        return Ok(None);
    };
    Ok(pv
        .spec
        .and_then(|s| s.csi)
        .map(|csi| site.volume_dir(&csi.volume_handle)))
}

async fn set_status<K>(client: &Client, object: &K, status: Value) -> anyhow::Result<()>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api = Api::<K>::namespaced(
        client.clone(),
        &object.meta().namespace.clone().unwrap_or_default(),
    );
    let name = object.meta().name.clone().unwrap_or_default();
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await?;
    Ok(())
}

/// The status a failed run leaves: restic's words, never a secret.
fn failure_status(error: &anyhow::Error) -> Value {
    let (reason, logs) = match error.downcast_ref::<ResticFailed>() {
        Some(failed) => (failed.reason.clone(), failed.summary.clone()),
        None => (format!("{error:#}"), format!("{error:#}")),
    };
    json!({
        "latestMoverStatus": {"result": "Failed", "logs": logs},
        "conditions": condition(SynchronizingReason::Error, "False", &reason),
    })
}

async fn backup(
    client: &Client,
    site: &Site,
    source: &ReplicationSource,
    trigger: &str,
) -> anyhow::Result<()> {
    let namespace = source.namespace().unwrap_or_default();
    let restic_spec = source.spec.restic.clone().unwrap_or_default();
    let started = now();
    let clock = Instant::now();
    let Some(claim) = source.spec.source_pvc.clone() else {
        bail!("spec.sourcePVC is not set");
    };
    let Some(dir) = claim_dir(client, site, &namespace, &claim).await? else {
        return Ok(()); // the claim is not bound yet; the next round tries again
    };
    set_status(client, source, json!({
        "lastSyncStartTime": started,
        "conditions": condition(SynchronizingReason::SyncInProgress, "True", "Synchronization in-progress"),
    }))
    .await?;
    let result = async {
        let secret = restic_spec
            .repository
            .clone()
            .context("spec.restic.repository is not set")?;
        let scratch = site
            .root
            .join("mover-tmp")
            .join(format!("{namespace}-{}", source.name_any()));
        let mut env = repository_env(
            client,
            site,
            &namespace,
            &secret,
            restic_spec.custom_ca.as_ref(),
            &scratch,
        )
        .await?;
        let job = mover_pod::job_name("src", &source.name_any());
        let pod = MoverPod::start(client, site, &namespace, &job, "backup", &scratch).await?;
        env.log = Some(pod.log.clone());
        env.upload_limit_kib = site.upload_limit_kib;
        let result = restic::backup(
            &env,
            &dir,
            &restic::retain_flags(restic_spec.retain.as_ref()),
        )
        .await;
        pod.finish().await;
        result
    }
    .await;
    match result {
        Ok(summary) => {
            set_status(client, source, json!({
                "lastSyncTime": now(), "lastSyncDuration": go_duration(clock.elapsed()),
                "lastManualSync": trigger,
                "latestMoverStatus": {"result": "Successful", "logs": summary},
                "conditions": condition(SynchronizingReason::WaitingForManual, "False", "Synchronization skipped, waiting for a manual trigger"),
            }))
            .await?;
            Ok(())
        }
        Err(error) => {
            set_status(client, source, failure_status(&error)).await?;
            Err(error)
        }
    }
}

async fn restore(
    client: &Client,
    site: &Site,
    destination: &ReplicationDestination,
    trigger: &str,
) -> anyhow::Result<()> {
    let namespace = destination.namespace().unwrap_or_default();
    let name = destination.name_any();
    let spec = destination.spec.restic.clone().unwrap_or_default();
    let started = now();
    let clock = Instant::now();
    let claim = match &spec.destination_pvc {
        Some(claim) => claim.clone(),
        None => ensure_destination_claim(client, destination).await?,
    };
    let Some(dir) = claim_dir(client, site, &namespace, &claim).await? else {
        return Ok(()); // wait for the provisioner to bind it
    };
    set_status(client, destination, json!({
        "lastSyncStartTime": started,
        "conditions": condition(SynchronizingReason::SyncInProgress, "True", "Synchronization in-progress"),
    }))
    .await?;
    let result = async {
        let secret = spec
            .repository
            .clone()
            .context("spec.restic.repository is not set")?;
        let scratch = site
            .root
            .join("mover-tmp")
            .join(format!("{namespace}-{name}"));
        let mut env = repository_env(
            client,
            site,
            &namespace,
            &secret,
            spec.custom_ca.as_ref(),
            &scratch,
        )
        .await?;
        let job = mover_pod::job_name("dst", &name);
        let pod = MoverPod::start(client, site, &namespace, &job, "restore", &scratch).await?;
        env.log = Some(pod.log.clone());
        let result = restore_into(site, &spec, &env, &dir, &namespace, &name).await;
        pod.finish().await;
        result
    }
    .await;
    let summary = match result {
        Ok(summary) => summary,
        Err(error) => {
            set_status(client, destination, failure_status(&error)).await?;
            return Err(error);
        }
    };
    let latest_image = match spec.copy_method {
        Some(CopyMethod::Direct) | Some(CopyMethod::None) => {
            json!({"kind": "PersistentVolumeClaim", "name": claim})
        }
        _ => {
            let snapshot = snapshot_claim(
                client,
                destination,
                &claim,
                spec.volume_snapshot_class_name.as_deref(),
            )
            .await?;
            json!({"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": snapshot})
        }
    };
    set_status(client, destination, json!({
        "lastSyncTime": now(), "lastSyncDuration": go_duration(clock.elapsed()), "lastManualSync": trigger,
        "latestImage": latest_image,
        "latestMoverStatus": {"result": "Successful", "logs": summary},
        "conditions": condition(SynchronizingReason::WaitingForManual, "False", "Synchronization skipped, waiting for a manual trigger"),
    }))
    .await
}

/// The restore step of the mover: pick the snapshot (`restoreAsOf`, `previous`), clear the
/// volume if asked, restore into it.
async fn restore_into(
    site: &Site,
    spec: &lifeline_api::foreign::volsync::ReplicationDestinationResticSpec,
    env: &restic::Repository,
    dir: &std::path::Path,
    namespace: &str,
    name: &str,
) -> anyhow::Result<String> {
    let mut snapshots = restic::snapshots(env, dir).await?;
    snapshots.sort_by(|a, b| b.time.cmp(&a.time));
    if let Some(as_of) = &spec.restore_as_of {
        let as_of = as_of.0;
        snapshots.retain(|s| s.time.parse::<Timestamp>().is_ok_and(|t| t <= as_of));
    }
    let skip = usize::try_from(spec.previous.unwrap_or(0)).unwrap_or(0);
    let Some(chosen) = snapshots.get(skip) else {
        let reason = "no restic snapshot matches restoreAsOf/previous".to_owned();
        bail!(ResticFailed {
            reason: reason.clone(),
            summary: reason.clone(),
            output: reason
        });
    };
    if spec.enable_file_deletion == Some(true) {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path)?
            } else {
                std::fs::remove_file(&path)?
            }
        }
    }
    let staging = site
        .root
        .join("restore-staging")
        .join(format!("{namespace}-{name}"));
    restic::restore(env, chosen, dir, &staging).await
}

/// The claim VolSync creates for a destination without `destinationPVC`, owned by it.
async fn ensure_destination_claim(
    client: &Client,
    destination: &ReplicationDestination,
) -> anyhow::Result<String> {
    let namespace = destination.namespace().unwrap_or_default();
    let spec = destination.spec.restic.clone().unwrap_or_default();
    let name = format!("volsync-{}-dst", destination.name_any());
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &namespace);
    if claims.get_opt(&name).await?.is_none() {
        let owner = destination
            .controller_owner_ref(&())
            .context("destination has no uid")?;
        let claim: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": name, "ownerReferences": [owner]},
            "spec": {
                "accessModes": spec.access_modes.unwrap_or_else(|| vec!["ReadWriteOnce".into()]),
                "resources": {"requests": {"storage": spec.capacity.map(|q| q.0).unwrap_or_else(|| "1Gi".into())}},
                "storageClassName": spec.storage_class_name,
            },
        }))?;
        claims.create(&PostParams::default(), &claim).await?;
    }
    Ok(name)
}

/// Snapshots the restored claim and waits until the snapshot is ready; returns its name.
async fn snapshot_claim(
    client: &Client,
    destination: &ReplicationDestination,
    claim: &str,
    class: Option<&str>,
) -> anyhow::Result<String> {
    let namespace = destination.namespace().unwrap_or_default();
    let name = format!(
        "volsync-{}-dst-{}",
        destination.name_any(),
        Timestamp::now().as_second()
    );
    let owner = destination
        .controller_owner_ref(&())
        .context("destination has no uid")?;
    let snapshot: VolumeSnapshot = serde_json::from_value(json!({
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
        "metadata": {"name": name, "ownerReferences": [owner]},
        "spec": {"volumeSnapshotClassName": class, "source": {"persistentVolumeClaimName": claim}},
    }))?;
    let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), &namespace);
    snapshots.create(&PostParams::default(), &snapshot).await?;
    crate::wait::for_object(&snapshots, &name, Duration::from_secs(120), "ready", |s| {
        s.status.as_ref().and_then(|s| s.ready_to_use) == Some(true)
    })
    .await?;
    Ok(name)
}
