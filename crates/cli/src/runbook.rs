//! What `migrate`, `failover` and `failback` do next, decided from what the sites say (a
//! [`Report`]): pure, so every refusal and every resumed step has a unit test. The commands
//! only fetch the report, call these, and carry out the answer.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use crate::error::Error;
use crate::status::{Report, VolumeReport};
use crate::verdict::{Method, Observed, Verdict};

/// One volume's planned switch from one site to the other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Switch {
    pub claim: String,
    /// The claims it covers (a group's members, else the claim): the workloads to scale.
    pub claims: Vec<String>,
    /// The VolumeReplication at the site giving the volume up.
    pub from_vr: String,
    /// The VolumeReplication at the site taking it.
    pub to_vr: String,
    /// The source still asks for primary: demote it (else it was, by an earlier run).
    pub demote: bool,
    /// The target does not ask for primary yet: promote it (else it was).
    pub promote: bool,
    /// VolumeReplication, or a VolSync pair (whose names are the claim's).
    pub method: Method,
}

fn at<'a>(volume: &'a VolumeReport, site: &str) -> Option<&'a Observed> {
    volume
        .sites
        .iter()
        .find(|v| v.site == site)
        .and_then(|v| v.volume_replication.as_ref())
}

fn refuse(volume: &VolumeReport, why: String) -> Error {
    Error::Refused(format!("{}/{}: {why}", volume.namespace, volume.claim))
}

/// Both sites must answer for a planned switch.
fn both_answer(report: &Report, sites: [&str; 2], to: &str) -> Result<(), Error> {
    for site in sites {
        match report.sites.iter().find(|s| s.site == site) {
            Some(s) if s.reachable => {}
            Some(s) => {
                return Err(Error::Refused(format!(
                    "site {site} does not answer ({}); a planned switch needs both sites. If it is gone, `kubectl lifeline failover --to {to}` promotes without it",
                    s.error.as_deref().unwrap_or("no answer")
                )));
            }
            None => return Err(Error::Refused(format!("site {site} was not asked"))),
        }
    }
    Ok(())
}

/// `migrate --from --to`: every volume of the namespace, or why not. A volume the source still
/// holds must be `protected` (or `stale` with `allow_stale`); one an earlier run demoted or
/// promoted resumes where it stopped, never asking twice.
pub fn migrate(
    report: &Report,
    from: &str,
    to: &str,
    allow_stale: bool,
) -> Result<Vec<Switch>, Error> {
    both_answer(report, [from, to], to)?;
    if report.volumes.is_empty() {
        return Err(Error::Refused(format!(
            "no VolumeReplications in the namespace at site {from} or {to}: nothing to migrate"
        )));
    }
    let mut out = Vec::new();
    for volume in &report.volumes {
        let (Some(source), Some(target)) = (at(volume, from), at(volume, to)) else {
            let missing = if at(volume, from).is_none() { from } else { to };
            return Err(refuse(
                volume,
                format!(
                    "unprotected: site {missing} has no VolumeReplication of it; `kubectl lifeline protect --from {from} --to {to}` sets up the standby"
                ),
            ));
        };
        let switch = |demote, promote| Switch {
            claim: volume.claim.clone(),
            claims: volume.claims(),
            from_vr: source.name.clone(),
            to_vr: target.name.clone(),
            demote,
            promote,
            method: source.method,
        };
        if source.method != target.method {
            return Err(refuse(
                volume,
                format!(
                    "site {from} replicates it with {} and site {to} with {}; protect both sites the same way",
                    source.method.as_str(),
                    target.method.as_str()
                ),
            ));
        }
        match (source.desired.as_str(), target.desired.as_str()) {
            ("primary", "primary") => {
                return Err(refuse(
                    volume,
                    format!(
                        "split-brain: both sites ask for primary; decide which copy to keep and demote the other (`kubectl lifeline failback --to {from} --from {to}` keeps {to}'s)"
                    ),
                ));
            }
            ("primary", "secondary") => match volume.verdict {
                // Down: a migration that stopped after scaling the application to zero; it
                // goes on from there (that is what brings the application back).
                Verdict::Protected | Verdict::Down => out.push(switch(true, true)),
                Verdict::Stale | Verdict::Syncing if allow_stale => out.push(switch(true, true)),
                Verdict::Stale | Verdict::Syncing => {
                    return Err(refuse(
                        volume,
                        format!(
                            "{}: {}; wait until it syncs, or pass --allow-stale to switch anyway",
                            volume.verdict.as_str(),
                            age_and_bound(source, Timestamp::now())
                        ),
                    ));
                }
                other => {
                    return Err(refuse(
                        volume,
                        format!(
                            "{}: {}",
                            other.as_str(),
                            explain(other, source, target, from, to)
                        ),
                    ));
                }
            },
            // Demoted by an earlier run (or by hand): go on from there.
            ("secondary", "secondary") => out.push(switch(false, true)),
            ("secondary", "primary") => out.push(switch(false, false)),
            (a, b) => {
                return Err(refuse(
                    volume,
                    format!(
                        "site {from} asks for {a} and site {to} for {b}; migrate switches a primary with its secondary. Let the resync finish first"
                    ),
                ));
            }
        }
    }
    Ok(out)
}

fn explain(verdict: Verdict, source: &Observed, target: &Observed, from: &str, to: &str) -> String {
    match verdict {
        Verdict::NoPrimary => format!(
            "site {from} asks for primary but reports {}; wait until it is Primary",
            source.current.as_deref().unwrap_or("no state yet")
        ),
        Verdict::Unprotected => format!(
            "site {to} reports {} rather than Secondary; wait until it is",
            target.current.as_deref().unwrap_or("no state yet")
        ),
        Verdict::SplitBrain => "both sites report Primary; resolve it before migrating".into(),
        Verdict::Degraded => format!(
            "site {from}'s driver reports it is not replicating (the link or site {to} is down?); fix replication before migrating"
        ),
        _ => "see `kubectl lifeline status`".into(),
    }
}

fn age_and_bound(o: &Observed, now: Timestamp) -> String {
    let secs = |d: Option<Duration>| {
        d.map(|d| format!("{}s", d.as_secs()))
            .unwrap_or_else(|| "unknown".into())
    };
    format!(
        "last sync {} ago, RPO bound {}",
        secs(o.age(now)),
        secs(o.rpo_bound())
    )
}

/// One volume `failover` promotes at the surviving site, with what the site knows of its data.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Promotion {
    pub namespace: String,
    pub claim: String,
    /// The claims it covers (a group's members, else the claim).
    pub claims: Vec<String>,
    pub volume_replication: String,
    pub method: Method,
    /// Already asks for primary (an earlier run): only waited for.
    pub already_asked: bool,
    /// The last sync this site received.
    pub last_sync_time: Option<Timestamp>,
    /// Its age now: what a promotion loses at most, as far as this site knows.
    #[serde(with = "crate::verdict::seconds")]
    pub data_age: Option<Duration>,
    #[serde(with = "crate::verdict::seconds")]
    pub rpo_bound: Option<Duration>,
}

impl Promotion {
    /// Within the bound the class promises.
    pub fn within_bound(&self) -> Option<bool> {
        Some(self.data_age? <= self.rpo_bound?)
    }
}

/// `failover --to`: every volume with a VolumeReplication at `to`, or why not. Refused while
/// any other site answers: then nothing needs to be lost, and `migrate` is the way.
pub fn failover(report: &Report, to: &str, now: Timestamp) -> Result<Vec<Promotion>, Error> {
    match report.sites.iter().find(|s| s.site == to) {
        Some(s) if s.reachable => {}
        _ => {
            return Err(Error::Refused(format!(
                "site {to} does not answer: there is nothing to fail over to"
            )));
        }
    }
    if let Some(up) = report.sites.iter().find(|s| s.site != to && s.reachable) {
        return Err(Error::Refused(format!(
            "site {} answers: a planned `kubectl lifeline migrate --from {} --to {to}` switches without losing data; failover is for a site that is gone",
            up.site, up.site
        )));
    }
    let promotions: Vec<Promotion> = report
        .volumes
        .iter()
        .filter_map(|v| {
            let o = at(v, to)?;
            Some(Promotion {
                namespace: v.namespace.clone(),
                claim: v.claim.clone(),
                claims: v.claims(),
                volume_replication: o.name.clone(),
                method: o.method,
                already_asked: o.desired == "primary",
                last_sync_time: o.last_sync_time,
                data_age: o.age(now),
                rpo_bound: o.rpo_bound(),
            })
        })
        .collect();
    if promotions.is_empty() {
        return Err(Error::Refused(format!(
            "no VolumeReplications in the namespace at site {to}: nothing to promote"
        )));
    }
    Ok(promotions)
}

/// `failback --to --from`, its first part: the VolumeReplications at `to` (the old primary
/// site, back after a disaster) to demote so they resync from `from`, which must be Primary
/// for each. Volumes already switching back (an earlier run) are left to [`migrate`].
pub fn failback_demotions(report: &Report, to: &str, from: &str) -> Result<Vec<String>, Error> {
    both_answer(report, [to, from], from)?;
    let mut out = Vec::new();
    for volume in &report.volumes {
        let (Some(old), Some(new)) = (at(volume, to), at(volume, from)) else {
            return Err(refuse(
                volume,
                format!("unprotected: it needs a VolumeReplication at both {to} and {from}"),
            ));
        };
        match (old.desired.as_str(), new.desired.as_str()) {
            ("primary", "primary") if new.is_primary() => out.push(old.name.clone()),
            ("primary", "primary") => {
                return Err(refuse(
                    volume,
                    format!(
                        "site {from} asks for primary but reports {}; wait until the failover finished",
                        new.current.as_deref().unwrap_or("no state yet")
                    ),
                ));
            }
            ("primary", _) => {
                return Err(refuse(
                    volume,
                    format!(
                        "site {to} is still the primary and {from} is not: there is nothing to fail back (`kubectl lifeline status`)"
                    ),
                ));
            }
            // Demoted already, or the switch back under way: migrate goes on from here.
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::SiteAnswer;
    use crate::verdict::SiteView;

    fn observed(name: &str, desired: &str, current: &str, age: Option<i64>) -> Observed {
        let now = Timestamp::now().as_second();
        Observed {
            name: name.into(),
            desired: desired.into(),
            current: Some(current.into()),
            last_sync_time: age.map(|a| Timestamp::from_second(now - a).unwrap()),
            last_sync_duration: Some(Duration::from_secs(1)),
            interval: Some(Duration::from_secs(60)),
            ..Default::default()
        }
    }

    /// A report of one volume `db` at sites a and b; `None` for a site that has no VR of it.
    fn report(a: Option<Observed>, b: Option<Observed>, reachable: [bool; 2]) -> Report {
        let views = vec![
            SiteView {
                site: "a".into(),
                reachable: reachable[0],
                volume_replication: a,
                app_replicas: None,
            },
            SiteView {
                site: "b".into(),
                reachable: reachable[1],
                volume_replication: b,
                app_replicas: None,
            },
        ];
        Report {
            sites: ["a", "b"]
                .iter()
                .zip(reachable)
                .map(|(s, r)| SiteAnswer {
                    site: s.to_string(),
                    address: format!("https://{s}.example:6443/"),
                    reachable: r,
                    error: (!r).then(|| "connection refused".into()),
                })
                .collect(),
            volumes: vec![VolumeReport {
                namespace: "shop".into(),
                claim: "db".into(),
                verdict: crate::verdict::verdict(&views, Timestamp::now()),
                sites: views,
            }],
        }
    }

    fn primary_a(age: i64) -> Report {
        report(
            Some(observed("db-a", "primary", "Primary", Some(age))),
            Some(observed("db-b", "secondary", "Secondary", None)),
            [true, true],
        )
    }

    fn refusal(result: Result<impl std::fmt::Debug, Error>) -> String {
        match result {
            Err(Error::Refused(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_protected_volume_is_demoted_then_promoted() {
        assert_eq!(
            migrate(&primary_a(10), "a", "b", false).unwrap(),
            vec![Switch {
                claim: "db".into(),
                claims: vec!["db".into()],
                from_vr: "db-a".into(),
                to_vr: "db-b".into(),
                demote: true,
                promote: true,
                method: Method::VolumeReplication,
            }]
        );
    }

    #[test]
    fn a_groups_switch_covers_its_member_claims() {
        let mut a = observed("vm", "primary", "Primary", Some(10));
        a.group_members = Some(vec!["boot".into(), "data".into()]);
        let mut r = report(
            Some(a),
            Some(observed("vm", "secondary", "Secondary", None)),
            [true, true],
        );
        r.volumes[0].claim = "vm".into();
        assert!(r.volumes[0].is_group());
        assert_eq!(
            migrate(&r, "a", "b", false).unwrap()[0].claims,
            ["boot", "data"]
        );
        let table = crate::status::table(&r, Timestamp::now(), "namespace shop", false);
        assert!(table.contains("group vm [boot,data]"), "{table}");
        assert_eq!(
            migrate(&primary_a(10), "a", "b", false).unwrap()[0].claims,
            ["db"],
            "a single claim covers itself"
        );
    }

    #[test]
    fn a_rerun_goes_on_from_what_it_sees_and_never_asks_twice() {
        let demoted = report(
            Some(observed("db-a", "secondary", "Secondary", Some(10))),
            Some(observed("db-b", "secondary", "Secondary", None)),
            [true, true],
        );
        let s = &migrate(&demoted, "a", "b", false).unwrap()[0];
        assert!((!s.demote, s.promote) == (true, true), "{s:?}");
        // Demoted but not reported Secondary yet (the verdict says no-primary): still fine.
        let demoting = report(
            Some(observed("db-a", "secondary", "Primary", Some(10))),
            Some(observed("db-b", "secondary", "Secondary", None)),
            [true, true],
        );
        assert!(!migrate(&demoting, "a", "b", false).unwrap()[0].demote);
        let promoted = report(
            Some(observed("db-a", "secondary", "Secondary", None)),
            Some(observed("db-b", "primary", "Secondary", None)),
            [true, true],
        );
        let s = &migrate(&promoted, "a", "b", false).unwrap()[0];
        assert!(!s.demote && !s.promote, "{s:?}");
    }

    #[test]
    fn migrate_refuses_what_it_should_not_guess_and_says_what_to_do() {
        let why = refusal(migrate(&primary_a(600), "a", "b", false));
        assert!(
            why.contains("stale") && why.contains("--allow-stale"),
            "{why}"
        );
        assert!(migrate(&primary_a(600), "a", "b", true).unwrap()[0].demote);

        let split = report(
            Some(observed("db-a", "primary", "Primary", Some(1))),
            Some(observed("db-b", "primary", "Primary", Some(1))),
            [true, true],
        );
        assert!(refusal(migrate(&split, "a", "b", true)).contains("split-brain"));
        // Both Primary while b asks for secondary: the verdict's split-brain, refused too.
        let split = report(
            Some(observed("db-a", "primary", "Primary", Some(1))),
            Some(observed("db-b", "secondary", "Primary", Some(1))),
            [true, true],
        );
        assert!(refusal(migrate(&split, "a", "b", true)).contains("split-brain"));

        let alone = report(
            Some(observed("db-a", "primary", "Primary", Some(1))),
            None,
            [true, true],
        );
        assert!(refusal(migrate(&alone, "a", "b", false)).contains("kubectl lifeline protect"));

        let gone = report(
            Some(observed("db-a", "primary", "Primary", Some(1))),
            None,
            [true, false],
        );
        assert!(refusal(migrate(&gone, "a", "b", false)).contains("failover --to b"));

        let resync = report(
            Some(observed("db-a", "primary", "Primary", Some(1))),
            Some(observed("db-b", "resync", "Secondary", None)),
            [true, true],
        );
        assert!(refusal(migrate(&resync, "a", "b", false)).contains("resync"));

        let empty = Report {
            volumes: vec![],
            ..primary_a(1)
        };
        assert!(refusal(migrate(&empty, "a", "b", false)).contains("nothing to migrate"));
    }

    #[test]
    fn failover_shows_the_data_age_and_refuses_while_the_other_site_answers() {
        let now = Timestamp::now();
        let why = refusal(failover(&primary_a(10), "b", now));
        assert!(why.contains("migrate --from a --to b"), "{why}");

        let a_gone = report(
            None,
            Some(observed("db-b", "secondary", "Secondary", Some(30))),
            [false, true],
        );
        let p = &failover(&a_gone, "b", now).unwrap()[0];
        assert_eq!(p.volume_replication, "db-b");
        assert!(!p.already_asked);
        assert_eq!(p.data_age, Some(Duration::from_secs(30)));
        assert_eq!(p.rpo_bound, Some(Duration::from_secs(181)));
        assert_eq!(p.within_bound(), Some(true));
        let json = serde_json::to_value(p).unwrap();
        assert_eq!(json["dataAge"], 30.0);
        assert_eq!(json["rpoBound"], 181.0);

        let never_synced = report(
            None,
            Some(observed("db-b", "primary", "Secondary", None)),
            [false, true],
        );
        let p = &failover(&never_synced, "b", now).unwrap()[0];
        assert!(p.already_asked && p.within_bound().is_none());

        let b_gone = report(None, None, [false, false]);
        assert!(refusal(failover(&b_gone, "b", now)).contains("nothing to fail over to"));
    }

    #[test]
    fn failback_demotes_the_old_primaries_only_where_the_other_site_is_primary() {
        let back = report(
            Some(observed("db-a", "primary", "Primary", Some(900))),
            Some(observed("db-b", "primary", "Primary", Some(5))),
            [true, true],
        );
        assert_eq!(failback_demotions(&back, "a", "b").unwrap(), ["db-a"]);
        let demoted = report(
            Some(observed("db-a", "secondary", "Secondary", None)),
            Some(observed("db-b", "primary", "Primary", Some(5))),
            [true, true],
        );
        assert!(failback_demotions(&demoted, "a", "b").unwrap().is_empty());
        let why = refusal(failback_demotions(&primary_a(5), "a", "b"));
        assert!(why.contains("nothing to fail back"), "{why}");
        let promoting = report(
            Some(observed("db-a", "primary", "Primary", Some(900))),
            Some(observed("db-b", "primary", "Secondary", None)),
            [true, true],
        );
        assert!(refusal(failback_demotions(&promoting, "a", "b")).contains("wait until"));
        let a_gone = report(
            None,
            Some(observed("db-b", "primary", "Primary", Some(5))),
            [false, true],
        );
        assert!(refusal(failback_demotions(&a_gone, "a", "b")).contains("does not answer"));
    }
}
