//! What one site says of a VolSync-protected claim, as the [`Observed`] the verdict and the
//! runbook read: the claim's role is the desired state; the current state is what the VolSync
//! objects there have made of it. Pure.
//!
//! | role      | objects at the site                 | current     | replicating            |
//! |-----------|-------------------------------------|-------------|------------------------|
//! | primary   | no ReplicationDestination           | `Primary`   | a source that last ran well |
//! | primary   | a ReplicationDestination (switching) | none        | -                      |
//! | secondary | a destination with an address, no source | `Secondary` | -                 |
//! | secondary | anything else (switching)           | none        | -                      |

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use lifeline_api::foreign::volsync::{
    MoverResult, ReplicationDestination, ReplicationSource, SyncStatus,
};
use lifeline_api::open::Open;
use lifeline_api::volsync_pair::{self, mover_failed};

use super::{ROLE, ROLE_SINCE, Role};
use crate::verdict::{Method, Observed};

/// A claim's VolSync objects at one site: the source pushing it and the destination writing it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Objects<'a> {
    pub source: Option<&'a ReplicationSource>,
    pub destination: Option<&'a ReplicationDestination>,
}

/// The claim's role: its annotation, else what its objects imply (a pair made by hand).
pub fn role(claim: &PersistentVolumeClaim, objects: Objects<'_>) -> Option<String> {
    match claim.annotations().get(ROLE) {
        Some(role) => Some(role.clone()),
        None if objects.source.is_some() => Some(Role::Primary.as_str().into()),
        None if objects.destination.is_some() => Some(Role::Secondary.as_str().into()),
        None => None,
    }
}

/// The destination's address and port, once its Service has one.
pub fn address(destination: &ReplicationDestination) -> Option<(String, Option<i32>)> {
    let tls = destination.status.as_ref()?.rsync_tls.as_ref()?;
    let address = tls.address.clone().filter(|a| !a.is_empty())?;
    Some((address, tls.port))
}

fn mover_result(sync: &SyncStatus) -> Option<&Open<MoverResult>> {
    sync.latest_mover_status.as_ref()?.result.as_ref()
}

/// `None` when the claim takes no part in a VolSync pair at this site.
pub fn observe(claim: &PersistentVolumeClaim, objects: Objects<'_>) -> Option<Observed> {
    let desired = role(claim, objects)?;
    let sync = match desired.as_str() {
        "primary" => objects
            .source
            .and_then(|s| s.status.as_ref())
            .map(|s| &s.sync),
        _ => objects
            .destination
            .and_then(|d| d.status.as_ref())
            .map(|d| &d.sync),
    };
    let current = match desired.as_str() {
        "primary" if objects.destination.is_none() => Some("Primary".to_owned()),
        "secondary"
            if objects.source.is_none() && objects.destination.and_then(address).is_some() =>
        {
            Some("Secondary".to_owned())
        }
        _ => None,
    };
    let replicating = (desired == "primary").then(|| {
        objects
            .source
            .is_some_and(|s| !s.status.as_ref().is_some_and(|st| mover_failed(&st.sync)))
    });
    let annotations = claim.annotations();
    let interval = volsync_pair::interval(annotations, objects.source);
    Some(Observed {
        name: claim.name_any(),
        method: Method::Volsync,
        desired,
        current,
        replicating,
        last_completion_time: annotations
            .get(ROLE_SINCE)
            .and_then(|t| t.parse::<Timestamp>().ok()),
        last_sync_time: sync.and_then(|s| s.last_sync_time.as_ref()).map(|t| t.0),
        last_sync_duration: sync
            .and_then(|s| s.last_sync_duration.as_deref())
            .and_then(lifeline_api::parse_go_duration),
        next_sync_time: sync.and_then(|s| s.next_sync_time.as_ref()).map(|t| t.0),
        mover_result: sync.and_then(mover_result).map(|r| r.as_str().to_owned()),
        interval,
        ..Observed::default()
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn claim(annotations: &str) -> PersistentVolumeClaim {
        serde_saphyr::from_str(&format!(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: db, namespace: shop, annotations: {{{annotations}}}}}\nspec: {{accessModes: [ReadWriteOnce]}}"
        ))
        .unwrap()
    }

    const PRIMARY: &str = "lifeline.dev/volsync-role: primary, lifeline.dev/volsync-role-since: '2026-12-01T00:00:00Z', lifeline.dev/volsync-interval-seconds: '300', lifeline.dev/volsync-service-type: LoadBalancer";
    const SECONDARY: &str = "lifeline.dev/volsync-role: secondary, lifeline.dev/volsync-interval-seconds: '300', lifeline.dev/volsync-service-type: LoadBalancer";

    fn source(status: &str) -> ReplicationSource {
        serde_saphyr::from_str(&format!(
            "apiVersion: volsync.backube/v1alpha1\nkind: ReplicationSource\nmetadata: {{name: db, namespace: shop}}\nspec: {{sourcePVC: db, trigger: {{schedule: '*/5 * * * *'}}, rsyncTLS: {{keySecret: k, address: 10.0.0.1}}}}\nstatus: {{{status}}}"
        ))
        .unwrap()
    }

    fn destination(address: Option<&str>) -> ReplicationDestination {
        let status = address
            .map(|a| format!("status: {{lastSyncTime: '2026-12-01T00:04:10Z', rsyncTLS: {{address: '{a}', port: 8000}}}}"))
            .unwrap_or_default();
        serde_saphyr::from_str(&format!(
            "apiVersion: volsync.backube/v1alpha1\nkind: ReplicationDestination\nmetadata: {{name: db, namespace: shop}}\nspec: {{rsyncTLS: {{destinationPVC: db, copyMethod: Direct}}}}\n{status}"
        ))
        .unwrap()
    }

    #[test]
    fn a_primary_reads_its_source_and_its_rpo_bound_is_interval_plus_duration() {
        let rs = source(
            "lastSyncTime: '2026-12-01T00:05:45Z', lastSyncDuration: 45s, nextSyncTime: '2026-12-01T00:10:00Z', latestMoverStatus: {result: Successful}",
        );
        let o = observe(
            &claim(PRIMARY),
            Objects {
                source: Some(&rs),
                destination: None,
            },
        )
        .unwrap();
        assert_eq!(o.method, Method::Volsync);
        assert_eq!(
            (o.desired.as_str(), o.current.as_deref()),
            ("primary", Some("Primary"))
        );
        assert_eq!(o.replicating, Some(true));
        assert_eq!(o.last_sync_duration, Some(Duration::from_secs(45)));
        // The guide's example: every 5 minutes, 45 s a sync: 5 m 45 s, nothing added.
        assert_eq!(o.rpo_bound(), Some(Duration::from_secs(345)));
        assert_eq!(o.mover_result.as_deref(), Some("Successful"));
        assert!(o.next_sync_time.is_some() && o.last_completion_time.is_some());
    }

    #[test]
    fn a_failed_mover_or_no_source_is_not_replicating() {
        let rs = source("latestMoverStatus: {result: Failed, logs: 'connection refused'}");
        let failed = observe(
            &claim(PRIMARY),
            Objects {
                source: Some(&rs),
                destination: None,
            },
        )
        .unwrap();
        assert_eq!(failed.replicating, Some(false));
        // After a failover: primary, nothing to push to.
        let alone = observe(&claim(PRIMARY), Objects::default()).unwrap();
        assert_eq!(
            (alone.current.as_deref(), alone.replicating),
            (Some("Primary"), Some(false))
        );
    }

    #[test]
    fn a_secondary_is_secondary_once_its_destination_has_an_address() {
        let listening = destination(Some("192.0.2.7"));
        let o = observe(
            &claim(SECONDARY),
            Objects {
                source: None,
                destination: Some(&listening),
            },
        )
        .unwrap();
        assert_eq!(
            (o.desired.as_str(), o.current.as_deref()),
            ("secondary", Some("Secondary"))
        );
        assert!(o.last_sync_time.is_some(), "the last sync it received");
        assert_eq!(o.replicating, None);
        let waiting = destination(None);
        let o = observe(
            &claim(SECONDARY),
            Objects {
                source: None,
                destination: Some(&waiting),
            },
        )
        .unwrap();
        assert_eq!(o.current, None);
    }

    /// Each half-done switch reads as one: a rerun knows where it stopped.
    #[test]
    fn switching_states_have_no_current_state() {
        let rs = source("");
        let rd = destination(Some("192.0.2.7"));
        let demoted_still_pushing = observe(
            &claim(SECONDARY),
            Objects {
                source: Some(&rs),
                destination: None,
            },
        )
        .unwrap();
        assert_eq!(demoted_still_pushing.current, None);
        let promoted_still_receiving = observe(
            &claim(PRIMARY),
            Objects {
                source: None,
                destination: Some(&rd),
            },
        )
        .unwrap();
        assert_eq!(promoted_still_receiving.current, None);
    }

    #[test]
    fn a_pair_made_by_hand_is_read_from_its_objects_and_a_bare_claim_is_none() {
        assert!(observe(&claim(""), Objects::default()).is_none());
        let rs = source("");
        let o = observe(
            &claim(""),
            Objects {
                source: Some(&rs),
                destination: None,
            },
        )
        .unwrap();
        assert_eq!(o.desired, "primary");
        assert_eq!(
            o.interval,
            Some(Duration::from_secs(300)),
            "from the schedule"
        );
        let rd = destination(Some("192.0.2.7"));
        let o = observe(
            &claim(""),
            Objects {
                source: None,
                destination: Some(&rd),
            },
        )
        .unwrap();
        assert_eq!(o.desired, "secondary");
    }

    #[test]
    fn malformed_annotations_never_panic_and_say_nothing_they_do_not_know() {
        let o = observe(&claim("lifeline.dev/volsync-role: both, lifeline.dev/volsync-role-since: yesterday, lifeline.dev/volsync-interval-seconds: '-3'"), Objects::default()).unwrap();
        assert_eq!((o.desired.as_str(), o.current.as_deref()), ("both", None));
        assert_eq!(
            (o.interval, o.last_completion_time, o.rpo_bound()),
            (None, None, None)
        );
    }
}
