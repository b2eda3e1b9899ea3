//! The runbook's decisions on VolSync pairs: every state a switch passes through, read from
//! what the sites say, resumes where it stopped and never makes two primaries.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::runbook;
use crate::status::{Report, SiteAnswer, VolumeReport};
use crate::verdict::{Method, Observed, SiteView, Verdict, verdict};

/// A site's view of claim `db`: its role, its current state, its last sync's age.
fn pair(desired: &str, current: Option<&str>, age: Option<i64>) -> Observed {
    let now = Timestamp::now().as_second();
    Observed {
        name: "db".into(),
        method: Method::Volsync,
        desired: desired.into(),
        current: current.map(Into::into),
        replicating: (desired == "primary").then_some(true),
        last_sync_time: age.map(|a| Timestamp::from_second(now - a).unwrap()),
        last_sync_duration: Some(Duration::from_secs(45)),
        interval: Some(Duration::from_secs(60)),
        ..Default::default()
    }
}

fn report(a: Option<Observed>, b: Option<Observed>) -> Report {
    let sites = vec![
        SiteView {
            site: "a".into(),
            reachable: true,
            volume_replication: a,
            app_replicas: None,
        },
        SiteView {
            site: "b".into(),
            reachable: true,
            volume_replication: b,
            app_replicas: None,
        },
    ];
    Report {
        sites: ["a", "b"]
            .iter()
            .map(|s| SiteAnswer {
                site: s.to_string(),
                address: format!("https://{s}.example:6443/"),
                reachable: true,
                error: None,
            })
            .collect(),
        volumes: vec![VolumeReport {
            namespace: "shop".into(),
            claim: "db".into(),
            verdict: verdict(&sites, Timestamp::now()),
            sites,
        }],
    }
}

#[test]
fn a_fresh_pair_is_protected_and_one_past_interval_plus_duration_is_stale() {
    // Bound: 60 s + 45 s, nothing added for a status lag (VolSync writes its own times).
    let fresh = report(
        Some(pair("primary", Some("Primary"), Some(100))),
        Some(pair("secondary", Some("Secondary"), Some(100))),
    );
    assert_eq!(fresh.volumes[0].verdict, Verdict::Protected);
    let stale = report(
        Some(pair("primary", Some("Primary"), Some(110))),
        Some(pair("secondary", Some("Secondary"), Some(110))),
    );
    assert_eq!(stale.volumes[0].verdict, Verdict::Stale);
    let error = runbook::migrate(&stale, "a", "b", false)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("stale") && error.contains("RPO bound 105s"),
        "{error}"
    );
}

#[test]
fn migrate_resumes_from_every_state_a_switch_passes_through() {
    let start = report(
        Some(pair("primary", Some("Primary"), Some(10))),
        Some(pair("secondary", Some("Secondary"), Some(10))),
    );
    let s = &runbook::migrate(&start, "a", "b", false).unwrap()[0];
    assert_eq!(
        (s.demote, s.promote, s.method),
        (true, true, Method::Volsync)
    );
    // Final sync done, role set, the source maybe still there: promote next.
    let demoted = report(
        Some(pair("secondary", None, Some(10))),
        Some(pair("secondary", Some("Secondary"), Some(10))),
    );
    let s = &runbook::migrate(&demoted, "a", "b", false).unwrap()[0];
    assert_eq!((s.demote, s.promote), (false, true));
    // Promoted, the pair not reversed yet: only the reversal and the scale-up are left.
    let promoted = report(
        Some(pair("secondary", None, None)),
        Some(pair("primary", None, None)),
    );
    let s = &runbook::migrate(&promoted, "a", "b", false).unwrap()[0];
    assert_eq!((s.demote, s.promote), (false, false));
}

#[test]
fn two_primaries_are_split_brain_and_refused() {
    // Site a came back after a failover to b, its source still there.
    let both = report(
        Some(pair("primary", Some("Primary"), Some(900))),
        Some(pair("primary", Some("Primary"), None)),
    );
    assert_eq!(both.volumes[0].verdict, Verdict::SplitBrain);
    let error = runbook::migrate(&both, "a", "b", false)
        .unwrap_err()
        .to_string();
    assert!(error.contains("split-brain"), "{error}");
    // Failback demotes a's old primary (and says what it discards).
    let demotions = runbook::failback_demotions(&both, "a", "b").unwrap();
    assert_eq!(demotions, ["db"]);
}

#[test]
fn a_site_replicating_one_way_and_the_other_another_is_refused() {
    let mut b = pair("secondary", Some("Secondary"), Some(10));
    b.method = Method::VolumeReplication;
    let mixed = report(Some(pair("primary", Some("Primary"), Some(10))), Some(b));
    let error = runbook::migrate(&mixed, "a", "b", false)
        .unwrap_err()
        .to_string();
    assert!(error.contains("protect both sites the same way"), "{error}");
}

#[test]
fn failover_shows_the_age_of_the_last_sync_the_standby_received() {
    let mut gone = report(
        Some(pair("primary", Some("Primary"), Some(30))),
        Some(pair("secondary", Some("Secondary"), Some(30))),
    );
    gone.sites[0].reachable = false;
    let promotions = runbook::failover(&gone, "b", Timestamp::now()).unwrap();
    assert_eq!(promotions[0].method, Method::Volsync);
    assert_eq!(promotions[0].data_age.map(|d| d.as_secs()), Some(30));
    assert_eq!(promotions[0].within_bound(), Some(true));
}

/// One table for both methods: a VolumeReplication's volume and a VolSync pair's, each row
/// naming its method, each with its verdict.
#[test]
fn status_shows_volume_replication_and_volsync_claims_in_one_table() {
    let mut both = report(
        Some(pair("primary", Some("Primary"), Some(10))),
        Some(pair("secondary", Some("Secondary"), Some(10))),
    );
    let mut replicated = both.volumes[0].clone();
    replicated.claim = "web".into();
    for view in &mut replicated.sites {
        let o = view.volume_replication.as_mut().unwrap();
        o.method = Method::VolumeReplication;
        o.name = "web-replication".into();
    }
    both.volumes.push(replicated);
    let table = crate::status::table(&both, Timestamp::now(), "namespace shop", false);
    let rows: Vec<&str> = table.lines().collect();
    assert!(rows[0].contains("METHOD"), "{table}");
    let row = |claim: &str| {
        rows.iter()
            .find(|r| r.split_whitespace().nth(1) == Some(claim))
            .unwrap_or_else(|| panic!("{claim} in {table}"))
            .to_string()
    };
    assert!(
        row("db").contains("volsync") && row("db").contains("protected"),
        "{table}"
    );
    assert!(
        row("web").contains("replication") && row("web").contains("protected"),
        "{table}"
    );
}
