//! The verdict on one replicated volume across the sites, from what each site's
//! VolumeReplication says: pure, so every rule has a unit test.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

/// How a volume is replicated: by its storage (a VolumeReplication), or by VolSync's rsync-TLS
/// mover (a ReplicationSource at the primary, a ReplicationDestination at the secondary).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    #[default]
    VolumeReplication,
    Volsync,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::VolumeReplication => "replication",
            Method::Volsync => "volsync",
        }
    }
}

/// What one site's VolumeReplication of a volume says (or, for [`Method::Volsync`], the
/// claim's role and its ReplicationSource or ReplicationDestination: `crate::volsync::observe`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observed {
    /// The VolumeReplication's name (VolSync: the claim's).
    pub name: String,
    pub method: Method,
    /// `spec.replicationState`.
    pub desired: String,
    /// `status.state` (`Primary`, `Secondary`, `Unknown`), if the controller wrote one.
    pub current: Option<String>,
    pub degraded: Option<bool>,
    pub resyncing: Option<bool>,
    /// The `Replicating` condition (primary only): what the driver says of the link.
    pub replicating: Option<bool>,
    /// `status.lastCompletionTime`: when its last state change (a promotion) completed.
    pub last_completion_time: Option<Timestamp>,
    pub last_sync_time: Option<Timestamp>,
    #[serde(with = "seconds")]
    pub last_sync_duration: Option<Duration>,
    /// The class's `schedulingInterval`.
    #[serde(with = "seconds")]
    pub interval: Option<Duration>,
    /// When it replicates a VolumeGroupReplication: the group's member claims.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_members: Option<Vec<String>>,
    /// VolSync: when the next scheduled sync starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_sync_time: Option<Timestamp>,
    /// VolSync: the last mover's result (`Successful`, `Failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mover_result: Option<String>,
}

pub(crate) mod seconds {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

impl Observed {
    pub fn is_primary(&self) -> bool {
        self.current.as_deref() == Some("Primary")
    }

    /// The RPO bound the verdict judges by, and the one the table shows: schedulingInterval
    /// plus the last sync's duration (the OpenShift DR guide's formula), plus how far the
    /// status may trail the driver ([`Observed::status_lag`]).
    pub fn rpo_bound(&self) -> Option<Duration> {
        Some(self.interval? + self.last_sync_duration.unwrap_or_default() + self.status_lag())
    }

    /// How long ago its last state change completed (for a primary: its promotion).
    pub fn since_switch(&self, now: Timestamp) -> Option<Duration> {
        let seconds = now.as_second() - self.last_completion_time?.as_second();
        Some(Duration::from_secs(u64::try_from(seconds).unwrap_or(0)))
    }

    /// How old the last sync is at `now`.
    pub fn age(&self, now: Timestamp) -> Option<Duration> {
        let seconds = now.as_second() - self.last_sync_time?.as_second();
        Some(Duration::from_secs(u64::try_from(seconds).unwrap_or(0)))
    }

    /// How far `lastSyncTime` in a status may trail the driver's last sync: the controller
    /// refreshes at most every minute (its `--info-refresh` default) or at the class's
    /// interval rule, and writes a moved time only when it moved by more than one refresh.
    pub fn status_lag(&self) -> Duration {
        // VolSync writes lastSyncTime itself when a sync ends: no refresh to trail.
        if self.method == Method::Volsync {
            return Duration::ZERO;
        }
        let interval = self.interval.unwrap_or(Duration::from_secs(3600));
        let refresh = if interval < Duration::from_secs(120) {
            interval
        } else {
            interval / 2
        };
        2 * refresh.min(Duration::from_secs(60))
    }
}

/// One site's view of a volume.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteView {
    pub site: String,
    /// The site's API server answered.
    pub reachable: bool,
    /// Its VolumeReplication of the volume, if it has one.
    pub volume_replication: Option<Observed>,
    /// Replicas the site's Deployments and StatefulSets that mount the volume's claims ask
    /// for; `None` when none mounts them there (or it was not looked at).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_replicas: Option<i32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// One primary, its peer secondary, the last sync within the bound.
    Protected,
    /// A switch completed within one bound and the new primary has not synced yet.
    Syncing,
    /// The last sync is older than the bound, or there is none and the switch is older.
    Stale,
    /// The primary's driver says it is not replicating (the link or the peer is down).
    Degraded,
    /// The application that mounts it runs at no site (scaled to zero everywhere).
    Down,
    /// Primary on two sites: both take writes, the copies diverge.
    SplitBrain,
    /// Nobody is primary.
    NoPrimary,
    /// Only one site has a VolumeReplication for the volume.
    Unprotected,
    /// A site did not answer: nothing can be said about its copy.
    SiteUnreachable,
}

impl Verdict {
    /// Whether nothing needs an SRE: exit code 0.
    pub fn is_fine(self) -> bool {
        matches!(self, Verdict::Protected | Verdict::Syncing)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Protected => "protected",
            Verdict::Syncing => "syncing",
            Verdict::Stale => "stale",
            Verdict::Degraded => "degraded",
            Verdict::Down => "down",
            Verdict::SplitBrain => "split-brain",
            Verdict::NoPrimary => "no-primary",
            Verdict::Unprotected => "unprotected",
            Verdict::SiteUnreachable => "site-unreachable",
        }
    }
}

/// The verdict, most urgent first: two primaries, a site that did not answer, no primary, an
/// application scaled to zero everywhere, no peer, a primary whose driver is not replicating, an old last sync (or none long after the
/// switch); else protected, or syncing just after a switch.
pub fn verdict(views: &[SiteView], now: Timestamp) -> Verdict {
    let present: Vec<&Observed> = views
        .iter()
        .filter_map(|v| v.volume_replication.as_ref())
        .collect();
    let primaries: Vec<&&Observed> = present.iter().filter(|o| o.is_primary()).collect();
    if primaries.len() > 1 {
        return Verdict::SplitBrain;
    }
    if views.iter().any(|v| !v.reachable) {
        return Verdict::SiteUnreachable;
    }
    let Some(primary) = primaries.first() else {
        return Verdict::NoPrimary;
    };
    let apps: Vec<i32> = views.iter().filter_map(|v| v.app_replicas).collect();
    if !apps.is_empty() && apps.iter().all(|r| *r == 0) {
        return Verdict::Down;
    }
    if present.len() < 2
        || !present
            .iter()
            .any(|o| o.current.as_deref() == Some("Secondary"))
    {
        return Verdict::Unprotected;
    }
    if primary.replicating == Some(false) {
        return Verdict::Degraded;
    }
    match (primary.age(now), primary.rpo_bound()) {
        (Some(age), Some(bound)) if age <= bound => Verdict::Protected,
        (None, Some(bound)) if primary.since_switch(now).is_some_and(|s| s <= bound) => {
            Verdict::Syncing
        }
        _ => Verdict::Stale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    fn vr(current: &str, age: Option<i64>) -> Observed {
        Observed {
            desired: current.to_lowercase(),
            current: Some(current.into()),
            last_sync_time: age.map(|a| Timestamp::from_second(now().as_second() - a).unwrap()),
            last_sync_duration: Some(Duration::from_secs(2)),
            interval: Some(Duration::from_secs(60)),
            ..Default::default()
        }
    }

    fn at(site: &str, vr: Option<Observed>) -> SiteView {
        SiteView {
            site: site.into(),
            reachable: true,
            volume_replication: vr,
            app_replicas: None,
        }
    }

    #[test]
    fn one_fresh_primary_with_a_secondary_peer_is_protected() {
        let views = [
            at("a", Some(vr("Primary", Some(30)))),
            at("b", Some(vr("Secondary", None))),
        ];
        assert_eq!(verdict(&views, now()), Verdict::Protected);
    }

    #[test]
    fn an_old_or_missing_last_sync_is_stale() {
        // Bound 62 s, plus two minutes the status may trail the driver: 182 s, as shown.
        assert_eq!(
            vr("Primary", None).rpo_bound(),
            Some(Duration::from_secs(182))
        );
        for age in [Some(183), None] {
            let views = [
                at("a", Some(vr("Primary", age))),
                at("b", Some(vr("Secondary", None))),
            ];
            assert_eq!(verdict(&views, now()), Verdict::Stale, "{age:?}");
        }
        let views = [
            at("a", Some(vr("Primary", Some(182)))),
            at("b", Some(vr("Secondary", None))),
        ];
        assert_eq!(verdict(&views, now()), Verdict::Protected);
    }

    /// The link is cut: the driver says so at once, long before the age passes the bound.
    #[test]
    fn a_primary_whose_driver_is_not_replicating_is_degraded_whatever_its_age() {
        let views = [
            at(
                "a",
                Some(Observed {
                    replicating: Some(false),
                    ..vr("Primary", Some(5))
                }),
            ),
            at("b", Some(vr("Secondary", None))),
        ];
        assert_eq!(verdict(&views, now()), Verdict::Degraded);
        assert!(!Verdict::Degraded.is_fine());
    }

    /// Right after a migration the new primary has no sync yet: syncing (exit 0) for one bound,
    /// then stale.
    #[test]
    fn no_sync_yet_is_syncing_for_one_bound_after_the_switch_then_stale() {
        let switched = |ago: i64| Observed {
            last_completion_time: Some(Timestamp::from_second(now().as_second() - ago).unwrap()),
            ..vr("Primary", None)
        };
        let views = |o| [at("a", Some(o)), at("b", Some(vr("Secondary", None)))];
        assert_eq!(verdict(&views(switched(10)), now()), Verdict::Syncing);
        assert!(Verdict::Syncing.is_fine());
        assert_eq!(verdict(&views(switched(183)), now()), Verdict::Stale);
        assert_eq!(verdict(&views(vr("Primary", None)), now()), Verdict::Stale);
    }

    #[test]
    fn the_most_urgent_problem_wins() {
        let split = [
            at("a", Some(vr("Primary", Some(1)))),
            SiteView {
                reachable: false,
                ..at("b", Some(vr("Primary", Some(1))))
            },
        ];
        assert_eq!(verdict(&split, now()), Verdict::SplitBrain);
        let gone = [
            at("a", Some(vr("Primary", Some(1)))),
            SiteView {
                reachable: false,
                ..at("b", None)
            },
        ];
        assert_eq!(verdict(&gone, now()), Verdict::SiteUnreachable);
        let none = [
            at("a", Some(vr("Secondary", None))),
            at("b", Some(vr("Secondary", None))),
        ];
        assert_eq!(verdict(&none, now()), Verdict::NoPrimary);
        let alone = [at("a", Some(vr("Primary", Some(1)))), at("b", None)];
        assert_eq!(verdict(&alone, now()), Verdict::Unprotected);
        let peer_not_secondary_yet = [
            at("a", Some(vr("Primary", Some(1)))),
            at(
                "b",
                Some(Observed {
                    current: None,
                    ..vr("Secondary", None)
                }),
            ),
        ];
        assert_eq!(
            verdict(&peer_not_secondary_yet, now()),
            Verdict::Unprotected
        );
    }

    /// After a migration that stopped half-way: the application at zero replicas at both
    /// sites is down, however fresh the data.
    #[test]
    fn an_application_running_nowhere_is_down() {
        let with_app = |site: &str, vr, replicas| SiteView {
            app_replicas: replicas,
            ..at(site, Some(vr))
        };
        let views = [
            with_app("a", vr("Primary", Some(1)), Some(0)),
            with_app("b", vr("Secondary", None), Some(0)),
        ];
        assert_eq!(verdict(&views, now()), Verdict::Down);
        assert!(!Verdict::Down.is_fine());
        let running = [
            with_app("a", vr("Primary", Some(1)), Some(1)),
            with_app("b", vr("Secondary", None), Some(0)),
        ];
        assert_eq!(verdict(&running, now()), Verdict::Protected);
        let no_app = [
            with_app("a", vr("Primary", Some(1)), None),
            with_app("b", vr("Secondary", None), None),
        ];
        assert_eq!(
            verdict(&no_app, now()),
            Verdict::Protected,
            "no application, no verdict on it"
        );
    }
}
