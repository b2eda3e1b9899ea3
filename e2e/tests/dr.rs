//! Two-site DR with the real controllers and drivers, data checked byte for byte.

use std::ops::Not;

use std::time::{Duration, Instant};

use lifeline_api::replication::CurrentState;
use lifeline_e2e::metrics::sample;
use lifeline_e2e::sites::{INFO_REFRESH_SECONDS, SiteEnv, TwoSites, tree};
use lifeline_e2e::wait;

async fn within_declared_rbac(site: &SiteEnv) {
    site.check_controller_rbac(lifeline_replication_controller::rbac::RULES)
        .await
        .unwrap();
}

/// Planned migration and failback: demote A, promote B (no force), B holds exactly A's data;
/// write on B; and back.
#[tokio::test]
async fn planned_migration_and_failback() {
    let sites = TwoSites::start().await.unwrap();
    let (a, b) = (&sites.a, &sites.b);
    let volume = a.provision("db").await.unwrap();
    let data = a.volume(&volume);
    std::fs::create_dir_all(data.join("tables")).unwrap();
    std::fs::write(data.join("tables/orders.bin"), vec![1u8; 1 << 20]).unwrap();
    b.adopt("db", &volume).await.unwrap();

    a.replicate("db", "primary").await.unwrap();
    b.replicate("db", "secondary").await.unwrap();
    a.wait_state("db", CurrentState::Primary, true)
        .await
        .unwrap();
    b.wait_state("db", CurrentState::Secondary, false)
        .await
        .unwrap();
    sites.wait_in_sync(a, b, &volume).await.unwrap();

    // More writes on A reach B with the next sync.
    std::fs::write(data.join("tables/customers.bin"), b"alice, bob").unwrap();
    std::fs::remove_file(data.join("tables/orders.bin")).unwrap();
    sites.wait_in_sync(a, b, &volume).await.unwrap();

    // Migrate: demote A (it ships its final state), then promote B without force.
    a.replicate("db", "secondary").await.unwrap();
    a.wait_state("db", CurrentState::Secondary, false)
        .await
        .unwrap();
    b.replicate("db", "primary").await.unwrap();
    let promoted = b
        .wait_state("db", CurrentState::Primary, true)
        .await
        .unwrap();
    let completed = promoted
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Completed")
        .unwrap();
    assert_eq!(
        (completed.status.as_str(), completed.reason.as_str()),
        ("True", "Promoted")
    );
    assert!(
        !b.controller.logs().contains("promoting with force"),
        "a planned migration needs no force"
    );
    assert_eq!(
        tree(&b.volume(&volume)),
        tree(&a.volume(&volume)),
        "B holds exactly A's data"
    );
    assert_eq!(
        std::fs::read(b.volume(&volume).join("tables/customers.bin")).unwrap(),
        b"alice, bob"
    );

    // The application now writes on B; A follows.
    std::fs::write(
        b.volume(&volume).join("tables/after-migration.txt"),
        "written on B",
    )
    .unwrap();
    sites.wait_in_sync(b, a, &volume).await.unwrap();

    // Fail back the same way.
    sites.migrate(b, a, "db").await.unwrap();
    assert_eq!(
        std::fs::read_to_string(a.volume(&volume).join("tables/after-migration.txt")).unwrap(),
        "written on B"
    );
    std::fs::write(a.volume(&volume).join("tables/back-home.txt"), "A again").unwrap();
    sites.wait_in_sync(a, b, &volume).await.unwrap();
    within_declared_rbac(a).await;
    within_declared_rbac(b).await;

    // Two clean migrations: the demoted side's wait for the new primary is an expected step,
    // said once as a Normal Event, never a warning.
    for site in [a, b] {
        let events =
            kube::Api::<k8s_openapi::api::events::v1::Event>::namespaced(site.client(), &site.app)
                .list(&Default::default())
                .await
                .unwrap()
                .items;
        let warnings: Vec<String> = events
            .iter()
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .map(|e| format!("{:?}: {:?}", e.reason, e.note))
            .collect();
        assert!(
            warnings.is_empty(),
            "a clean migration warned: {warnings:?}"
        );
    }
}

/// Disaster: site A is cut off right after a sync plus some unsynced writes; B is promoted
/// (force, because the peer is gone), holds the last synced data, and serves; A comes back,
/// is demoted, resyncs to B's data, and the sites fail back.
#[tokio::test]
async fn disaster_failover_and_failback() {
    let mut sites = TwoSites::start().await.unwrap();
    let volume = sites.a.provision("db").await.unwrap();
    let data = sites.a.volume(&volume);
    std::fs::write(data.join("ledger.txt"), "entry 1\n").unwrap();
    sites.b.adopt("db", &volume).await.unwrap();
    sites.a.replicate("db", "primary").await.unwrap();
    sites.b.replicate("db", "secondary").await.unwrap();
    sites
        .a
        .wait_state("db", CurrentState::Primary, true)
        .await
        .unwrap();
    sites
        .b
        .wait_state("db", CurrentState::Secondary, false)
        .await
        .unwrap();
    sites
        .wait_in_sync(&sites.a, &sites.b, &volume)
        .await
        .unwrap();
    let synced = tree(&data);
    let synced_at = Instant::now();
    // The RPO bound the controller reports: scheduling interval (1m) + last sync duration.
    let reported = lifeline_e2e::wait::for_object(
        &sites.a.vrs(),
        "db-replication",
        Duration::from_secs(60),
        "sync facts",
        |vr| {
            vr.status
                .as_ref()
                .is_some_and(|s| s.last_sync_time.is_some() && s.last_sync_duration.is_some())
        },
    )
    .await
    .unwrap();
    let duration = reported.status.unwrap().last_sync_duration.unwrap();
    let bound = Duration::from_secs(60)
        + lifeline_api::parse_go_duration(&duration).expect("a Go duration");

    // The disaster: the link goes, writes land on A that never reach B, then A is gone.
    lifeline_e2e::process::admin_post(&sites.a.admin, "/link/sever")
        .await
        .unwrap();
    std::fs::write(
        data.join("ledger.txt"),
        "entry 1\nentry 2 (never replicated)\n",
    )
    .unwrap();
    sites.a.controller.kill().await;
    sites.a.driver.kill().await;
    let age = synced_at.elapsed();
    assert!(
        age <= bound,
        "data age {age:?} beyond the reported RPO bound {bound:?}"
    );

    // Fail over: B is promoted with force and serves the last synced data.
    sites.b.replicate("db", "primary").await.unwrap();
    sites
        .b
        .wait_state("db", CurrentState::Primary, false)
        .await
        .unwrap();
    assert!(
        sites.b.controller.logs().contains("promoting with force"),
        "the peer is gone: force"
    );
    assert_eq!(
        tree(&sites.b.volume(&volume)),
        synced,
        "B holds the last synced data; the unsynced write is lost, as async DR promises"
    );
    std::fs::write(
        sites.b.volume(&volume).join("ledger.txt"),
        "entry 1\nentry 2 (written on B)\n",
    )
    .unwrap();

    // A comes back (its driver and controller restart) and is demoted; it resyncs from B.
    sites.a.driver.restart().await.unwrap();
    sites.a.controller.restart().await.unwrap();
    sites.a.replicate("db", "secondary").await.unwrap();
    sites
        .a
        .wait_state("db", CurrentState::Secondary, true)
        .await
        .unwrap();
    sites
        .wait_in_sync(&sites.b, &sites.a, &volume)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(data.join("ledger.txt")).unwrap(),
        "entry 1\nentry 2 (written on B)\n"
    );

    // Fail back: planned, no force.
    sites.b.replicate("db", "secondary").await.unwrap();
    sites
        .b
        .wait_state("db", CurrentState::Secondary, false)
        .await
        .unwrap();
    let forced_before = sites
        .a
        .controller
        .logs()
        .matches("promoting with force")
        .count();
    sites.a.replicate("db", "primary").await.unwrap();
    sites
        .a
        .wait_state("db", CurrentState::Primary, true)
        .await
        .unwrap();
    assert_eq!(
        sites
            .a
            .controller
            .logs()
            .matches("promoting with force")
            .count(),
        forced_before,
        "failback needs no force"
    );
    std::fs::write(
        data.join("ledger.txt"),
        "entry 1\nentry 2 (written on B)\nentry 3 (home again)\n",
    )
    .unwrap();
    sites
        .wait_in_sync(&sites.a, &sites.b, &volume)
        .await
        .unwrap();
    within_declared_rbac(&sites.a).await;
    within_declared_rbac(&sites.b).await;
}

/// An unreachable driver shows as Degraded with the reason, and replication recovers by itself
/// when the driver is back.
#[tokio::test]
async fn an_unreachable_driver_degrades_then_recovers_without_help() {
    let mut sites = TwoSites::start().await.unwrap();
    let volume = sites.a.provision("db").await.unwrap();
    std::fs::write(sites.a.volume(&volume).join("f"), "x").unwrap();
    sites.b.adopt("db", &volume).await.unwrap();
    sites.a.replicate("db", "primary").await.unwrap();
    sites.b.replicate("db", "secondary").await.unwrap();
    sites
        .b
        .wait_state("db", CurrentState::Secondary, true)
        .await
        .unwrap();

    sites.b.driver.kill().await;
    // A spec change makes the controller call the (dead) driver.
    let vrs = sites.b.vrs();
    vrs.patch(
        "db-replication",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(serde_json::json!({"spec": {"autoResync": true}})),
    )
    .await
    .unwrap();
    let degraded = lifeline_e2e::wait::for_object(
        &vrs,
        "db-replication",
        Duration::from_secs(60),
        "degraded",
        |vr| {
            vr.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Degraded" && c.status == "True" && c.reason == "Error")
            })
        },
    )
    .await
    .unwrap();
    assert!(
        degraded
            .status
            .unwrap()
            .message
            .unwrap_or_default()
            .contains("UNAVAILABLE"),
        "the message names the failure"
    );

    sites.b.driver.restart().await.unwrap();
    sites
        .b
        .wait_state("db", CurrentState::Secondary, true)
        .await
        .unwrap();
    std::fs::write(sites.a.volume(&volume).join("f"), "y").unwrap();
    sites
        .wait_in_sync(&sites.a, &sites.b, &volume)
        .await
        .unwrap();
}

/// Deleting a VolumeReplication disables replication on the driver and releases the claim.
#[tokio::test]
async fn deleting_a_volume_replication_releases_the_claim_and_stops_replication() {
    let sites = TwoSites::start().await.unwrap();
    let (a, b) = (&sites.a, &sites.b);
    let volume = a.provision("db").await.unwrap();
    b.adopt("db", &volume).await.unwrap();
    a.replicate("db", "primary").await.unwrap();
    b.replicate("db", "secondary").await.unwrap();
    a.wait_state("db", CurrentState::Primary, true)
        .await
        .unwrap();
    sites.wait_in_sync(a, b, &volume).await.unwrap();

    a.vrs()
        .delete("db-replication", &Default::default())
        .await
        .unwrap();
    lifeline_e2e::wait::for_deletion(&a.vrs(), "db-replication", Duration::from_secs(60))
        .await
        .unwrap();
    let claim = kube::Api::<k8s_openapi::api::core::v1::PersistentVolumeClaim>::namespaced(
        a.client(),
        &a.app,
    )
    .get("db")
    .await
    .unwrap();
    assert!(
        claim
            .metadata
            .finalizers
            .unwrap_or_default()
            .iter()
            .all(|f| f != "replication.storage.openshift.io/pvc-protection")
    );
    assert!(
        claim
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key("replication.storage.openshift.io/volume-replication-name")
            .not()
    );
    // Replication is disabled on A's driver: new writes no longer reach B.
    std::fs::write(a.volume(&volume).join("after-delete.txt"), "stays on A").unwrap();
    lifeline_e2e::process::admin_post(&a.admin, &format!("/sync?volume={volume}"))
        .await
        .unwrap_err();
    assert!(!b.volume(&volume).join("after-delete.txt").exists());
    within_declared_rbac(a).await;
}

// The age of the data at both sites, as the controllers export it: bounded on the primary,
// agreeing on the secondary, and still true after the primary site is gone. (In this file so it
// runs beside the other two-site scenarios: it waits out a one-minute RPO bound.)

const SINCE: &str = "lifeline_volume_replication_seconds_since_last_sync";
const INFO_AGE: &str = "lifeline_volume_replication_info_age_seconds";
const BOUND: &str = "lifeline_volume_replication_rpo_bound_seconds";
const READY: &str = "lifeline_volume_replication_failover_ready";
/// The class's schedulingInterval (1m); the driver syncs every second.
const INTERVAL: f64 = 60.0;
const SYNC_PERIOD: f64 = 1.0;
/// Scheduling slack of a loaded machine: a reconcile or a sync a little late.
const SLACK: f64 = 3.0;

#[tokio::test]
async fn data_age_is_known_at_both_sites_and_keeps_growing_after_the_primary_is_gone() {
    let mut sites = TwoSites::start().await.unwrap();
    let volume = sites.replicated("db").await.unwrap();
    std::fs::write(sites.a.volume(&volume).join("data"), b"orders").unwrap();
    let primary = [("name", "db-replication"), ("role", "primary")];
    let secondary = [("name", "db-replication"), ("role", "secondary")];
    let refresh = INFO_REFRESH_SECONDS as f64;

    // Each round waits for a fresh answer from A's driver, then reads both sites. Fresh: given
    // after the previous round's read, i.e. younger than the time since then. (Not "younger
    // than the previous round's age": that one can be a few milliseconds, and an answer read
    // that soon after it is given may take many refreshes to come by.)
    let mut previous_read: Option<Instant> = None;
    for round in 0..3 {
        let (a, b, read_at) = wait::until(
            Duration::from_secs(60),
            "a fresh replication-info answer on A and the gauges on both sites",
            || async {
                let read_at = Instant::now();
                let a = sites.a.controller_metrics().await.ok()?;
                let b = sites.b.controller_metrics().await.ok()?;
                let info_age = sample(&a, INFO_AGE, &primary)?;
                sample(&b, SINCE, &secondary)?;
                let fresh = previous_read
                    .is_none_or(|previous| info_age < (read_at - previous).as_secs_f64());
                fresh.then_some((a, b, read_at))
            },
        )
        .await
        .unwrap();
        previous_read = Some(read_at);
        let since_a = sample(&a, SINCE, &primary).unwrap();
        let info_a = sample(&a, INFO_AGE, &primary).unwrap();
        let since_b = sample(&b, SINCE, &secondary).unwrap();
        assert!(
            info_a <= refresh + SLACK,
            "round {round}: info age {info_a}"
        );
        // The data age is off by no more than the age of the answer (plus a sync period).
        assert!(
            since_a <= info_a + SYNC_PERIOD + SLACK,
            "round {round}: data age {since_a}, info age {info_a}"
        );
        assert!(since_a <= INTERVAL + refresh, "round {round}: {since_a}");
        assert!(
            (since_a - since_b).abs() <= refresh + SLACK,
            "round {round}: the sites agree within a refresh: A {since_a}, B {since_b}"
        );
        assert_eq!(sample(&b, READY, &secondary), Some(1.0), "round {round}");
    }
    let status = sites
        .b
        .vrs()
        .get("db-replication")
        .await
        .unwrap()
        .status
        .unwrap();
    assert!(status.last_sync_time.is_some(), "{status:?}");
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "SyncReceived" && c.status == "True"),
        "{status:?}"
    );

    // Site A is gone. B's data age keeps growing in real time until it passes the bound.
    sites.a.controller.kill().await;
    sites.a.driver.kill().await;
    let killed = Instant::now();
    // B's first answer after that: newer answers carry no newer sync.
    let first = wait::until(
        Duration::from_secs(60),
        "B's first replication-info answer after site A is gone",
        || async {
            let b = sites.b.controller_metrics().await.ok()?;
            (sample(&b, INFO_AGE, &secondary)? < killed.elapsed().as_secs_f64()).then_some(b)
        },
    )
    .await
    .unwrap();
    let at_first = Instant::now();
    let since_first = sample(&first, SINCE, &secondary).unwrap();
    let bound = sample(&first, BOUND, &secondary).unwrap();
    assert!(
        bound >= INTERVAL,
        "interval plus the last sync's duration: {bound}"
    );
    let stale = wait::until(
        Duration::from_secs_f64(bound + 60.0),
        "B's failover_ready to drop past the RPO bound",
        || async {
            let b = sites.b.controller_metrics().await.ok()?;
            (sample(&b, READY, &secondary)? == 0.0).then_some(b)
        },
    )
    .await
    .unwrap();
    let elapsed = at_first.elapsed().as_secs_f64();
    let since_stale = sample(&stale, SINCE, &secondary).unwrap();
    assert!(since_stale > bound, "{since_stale} past {bound}");
    assert!(
        (since_stale - since_first - elapsed).abs() <= SLACK,
        "grew by {} in {elapsed} s",
        since_stale - since_first
    );
}
