//! The steps `migrate`, `failover` and `failback` take for a VolSync pair, each idempotent (it
//! looks first, then changes at most one object) so an interrupted command's rerun goes on:
//! a final manual sync waited for, a claim's role set, a source or destination removed (and
//! waited gone), and the pair set up the other way round.

use std::time::Instant;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use lifeline_api::foreign::snapshot::VolumeSnapshotClass;
use lifeline_api::foreign::volsync::{ReplicationDestination, ReplicationSource};
use lifeline_api::volsync_pair::mover_failed;
use serde_json::json;

use super::settings::Settings;
use super::{ROLE, ROLE_SINCE, Role, build, observe};
use crate::error::Error;
use crate::progress::{POLL, STILL_WAITING, Steps};
use crate::protect::create_or_keep;

/// One site, as the steps name it.
#[derive(Clone, Copy)]
pub struct At<'a> {
    pub client: &'a Client,
    pub site: &'a str,
    pub namespace: &'a str,
}

impl At<'_> {
    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), self.namespace)
    }

    async fn claim(&self, name: &str) -> Result<PersistentVolumeClaim, Error> {
        self.api::<PersistentVolumeClaim>()
            .get_opt(name)
            .await
            .map_err(Error::api(self.site))?
            .ok_or_else(|| {
                Error::Refused(format!(
                    "site {}: claim {}/{name} is gone",
                    self.site, self.namespace
                ))
            })
    }
}

/// A manual sync of the source at `at` (its schedule set aside), waited for: what the primary
/// holds now reaches the destination. Refused when the mover fails, with its log's end.
pub async fn final_sync(at: At<'_>, claim: &str, steps: &Steps) -> Result<(), Error> {
    let api = at.api::<ReplicationSource>();
    // Unique per call: a token equal to the last one would read as done at once.
    let token = format!("lifeline-{}", Timestamp::now().as_nanosecond());
    api.patch(
        claim,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"trigger": {"schedule": null, "manual": token}}})),
    )
    .await
    .map_err(Error::api(at.site))?;
    steps.wait_for(format!(
        "site {}: {claim}'s final sync ({token}) reaches the destination",
        at.site
    ));
    let mut last_said = Instant::now();
    loop {
        let source = api.get_opt(claim).await.map_err(Error::api(at.site))?;
        let Some(source) = source else {
            return Err(Error::Refused(format!(
                "site {}: ReplicationSource {}/{claim} was deleted during its final sync",
                at.site, at.namespace
            )));
        };
        let sync = source.status.as_ref().map(|s| &s.sync);
        if sync.and_then(|s| s.last_manual_sync.as_deref()) == Some(token.as_str()) {
            if sync.is_some_and(mover_failed) {
                let logs = sync
                    .and_then(|s| s.latest_mover_status.as_ref())
                    .and_then(|m| m.logs.clone())
                    .unwrap_or_default();
                let lines: Vec<&str> = logs.lines().collect();
                return Err(Error::Refused(format!(
                    "site {}: {claim}'s final sync failed; nothing was switched. The mover said: {}",
                    at.site,
                    lines[lines.len().saturating_sub(5)..].join(" | ")
                )));
            }
            steps.say(format!(
                "site {}: {claim}'s final sync done (took {})",
                at.site,
                sync.and_then(|s| s.last_sync_duration.clone())
                    .unwrap_or_else(|| "?".into())
            ));
            return Ok(());
        }
        if last_said.elapsed() >= STILL_WAITING {
            let mover = sync
                .and_then(|s| s.latest_mover_status.as_ref())
                .and_then(|m| m.result.as_ref())
                .map(|r| r.as_str().to_owned())
                .unwrap_or_else(|| "none yet".into());
            steps.still(format!(
                "site {}: still waiting for {claim}'s final sync (last mover result: {mover})",
                at.site
            ));
            last_said = Instant::now();
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Puts the source at `at` back on its schedule after a manual sync (a failback's sync back).
pub async fn restore_schedule(at: At<'_>, claim: &str, settings: &Settings) -> Result<(), Error> {
    let schedule = super::settings::schedule(settings.interval).map_err(Error::Usage)?;
    at.api::<ReplicationSource>()
        .patch(
            claim,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"trigger": {"schedule": schedule, "manual": null}}})),
        )
        .await
        .map_err(Error::api(at.site))?;
    Ok(())
}

/// The settings `claim` carries at `at`.
pub async fn settings(at: At<'_>, claim: &str) -> Result<Settings, Error> {
    let found = at.claim(claim).await?;
    Settings::from_annotations(
        found.annotations(),
        &format!("site {}: claim {}/{claim}", at.site, at.namespace),
    )
}

/// Sets the claim's role at `at` (and when), unless it has it already. Returns whether it
/// changed.
pub async fn set_role(at: At<'_>, claim: &str, role: Role) -> Result<bool, Error> {
    let current = at.claim(claim).await?;
    if current.annotations().get(ROLE).map(String::as_str) == Some(role.as_str()) {
        return Ok(false);
    }
    at.api::<PersistentVolumeClaim>()
        .patch(
            claim,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                ROLE: role.as_str(), ROLE_SINCE: Timestamp::now().to_string()}}})),
        )
        .await
        .map_err(Error::api(at.site))?;
    Ok(true)
}

/// Deletes the object if it exists and waits until it is gone. Returns whether there was one.
/// In the background: VolSync reconciles an object that is being deleted as if it were not,
/// so a foreground deletion would wait on a mover Job it keeps making again. The mover goes
/// with the garbage collector; [`remove_destination`] waits for that.
async fn remove<K>(at: At<'_>, name: &str, steps: &Steps) -> Result<bool, Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api = at.api::<K>();
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    if api
        .get_opt(name)
        .await
        .map_err(Error::api(at.site))?
        .is_none()
    {
        return Ok(false);
    }
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(true),
        Err(e) => return Err(Error::api(at.site)(e)),
    }
    steps.wait_for(format!("site {}: {kind} {name} is gone", at.site));
    while api
        .get_opt(name)
        .await
        .map_err(Error::api(at.site))?
        .is_some()
    {
        tokio::time::sleep(POLL).await;
    }
    steps.say(format!("site {}: {kind} {name} removed", at.site));
    Ok(true)
}

pub async fn remove_source(at: At<'_>, claim: &str, steps: &Steps) -> Result<bool, Error> {
    remove::<ReplicationSource>(at, claim, steps).await
}

/// Removes the destination and waits until its mover no longer mounts the claim: nothing but
/// the application writes it from then on.
pub async fn remove_destination(at: At<'_>, claim: &str, steps: &Steps) -> Result<bool, Error> {
    let removed = remove::<ReplicationDestination>(at, claim, steps).await?;
    let claims = std::collections::BTreeSet::from([claim.to_owned()]);
    crate::workloads::wait_unmounted(at.client, at.site, at.namespace, &claims, steps).await?;
    Ok(removed)
}

/// The destination at `at` for `claim` (made from the claim's settings if missing), once its
/// Service has an address: (address, port).
pub async fn ensure_destination(
    at: At<'_>,
    claim: &str,
    settings: &Settings,
    steps: &Steps,
) -> Result<(String, Option<i32>), Error> {
    let api = at.api::<ReplicationDestination>();
    if create_or_keep(
        &api,
        &build::destination(at.namespace, claim, settings),
        false,
    )
    .await
    .map_err(Error::api(at.site))?
    {
        steps.say(format!(
            "site {}: ReplicationDestination {claim} created",
            at.site
        ));
    }
    steps.wait_for(format!(
        "site {}: ReplicationDestination {claim} has an address ({} Service)",
        at.site,
        settings.service_type.as_str()
    ));
    let mut last_said = Instant::now();
    loop {
        let rd = api.get_opt(claim).await.map_err(Error::api(at.site))?;
        if let Some(found) = rd.as_ref().and_then(observe::address) {
            steps.say(format!(
                "site {}: ReplicationDestination {claim} listens at {}",
                at.site, found.0
            ));
            return Ok(found);
        }
        if last_said.elapsed() >= STILL_WAITING {
            steps.still(format!(
                "site {}: ReplicationDestination {claim} has no address yet; a LoadBalancer Service needs the cluster's load balancer to give it one",
                at.site
            ));
            last_said = Instant::now();
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The snapshot class the source of `claim` at `at` uses: its volume's driver's.
async fn snapshot_class_of(at: At<'_>, claim: &PersistentVolumeClaim) -> Result<String, Error> {
    let volume = match claim.spec.as_ref().and_then(|s| s.volume_name.clone()) {
        Some(name) => Api::<PersistentVolume>::all(at.client.clone())
            .get_opt(&name)
            .await
            .map_err(Error::api(at.site))?,
        None => None,
    };
    let driver = build::driver(claim, volume.as_ref())?;
    let classes = Api::<VolumeSnapshotClass>::all(at.client.clone())
        .list(&Default::default())
        .await
        .map_err(Error::api(at.site))?;
    build::snapshot_class(&driver, &classes.items).ok_or_else(|| {
        Error::Refused(format!(
            "site {}: no VolumeSnapshotClass for driver {driver}; VolSync's source pushes a snapshot of {}/{}: create one",
            at.site, at.namespace, claim.name_any()
        ))
    })
}

/// The source at `at` for `claim`, pushing to `address`: created if missing, its address and
/// port set if they differ (the destination moved). Returns whether anything changed.
pub async fn ensure_source(
    at: At<'_>,
    claim: &str,
    settings: &Settings,
    (address, port): (&str, Option<i32>),
    dry_run: bool,
) -> Result<bool, Error> {
    let api = at.api::<ReplicationSource>();
    let existing = api.get_opt(claim).await.map_err(Error::api(at.site))?;
    match existing {
        None => {
            let class = snapshot_class_of(at, &at.claim(claim).await?).await?;
            let source = build::source(at.namespace, claim, settings, &class, address, port)?;
            create_or_keep(&api, &source, dry_run)
                .await
                .map_err(Error::api(at.site))
        }
        Some(rs) => {
            let tls = rs.spec.rsync_tls.clone().unwrap_or_default();
            if tls.address.as_deref() == Some(address) && tls.port == port {
                return Ok(false);
            }
            let params = PatchParams {
                dry_run,
                ..Default::default()
            };
            api.patch(
                claim,
                &params,
                &Patch::Merge(json!({"spec": {"rsyncTLS": {"address": address, "port": port}}})),
            )
            .await
            .map_err(Error::api(at.site))?;
            Ok(true)
        }
    }
}

/// The pair the other way round: a destination at `secondary` (its address waited for), then
/// a source at `primary` pushing to it, from the settings the secondary's claim carries.
pub async fn reverse(
    primary: At<'_>,
    secondary: At<'_>,
    claim: &str,
    steps: &Steps,
) -> Result<(), Error> {
    let settings = settings(secondary, claim).await?;
    let address = ensure_destination(secondary, claim, &settings, steps).await?;
    if ensure_source(primary, claim, &settings, (&address.0, address.1), false).await? {
        steps.say(format!(
            "site {}: ReplicationSource {claim} pushes to site {} every {}s",
            primary.site,
            secondary.site,
            settings.interval.as_secs()
        ));
    }
    Ok(())
}
