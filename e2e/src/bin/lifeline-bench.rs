//! `cargo xtask bench replication`: a replication controller — Lifeline's, csi-addons'
//! (`--controller csi-addons`: its manager and sidecar) or the volume-replication-operator's
//! (`--controller vro`), each as its own identity with its release's RBAC and CRDs — against the
//! real control plane and a driver that answers at once (the scriptable fake from
//! `lifeline-csi-client`): N VolumeReplications created as primary and waited for, an idle
//! spell, then all switched to secondary. Each phase reports the time, the CPU seconds of the
//! controller's processes, kube-apiserver and etcd, their peak RSS, the driver's RPCs and the
//! controller's API requests per VolumeReplication by verb and resource (the API server's
//! audit log, reads included). `--ceiling` runs no controller: the benchmark makes the same
//! object and status writes itself, as fast as the API server takes them. `--profile` samples
//! the controller with perf on the way to primary and lists its hottest functions.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Secret};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use lifeline_api::replication::{CurrentState, VolumeReplication, VolumeReplicationClass};
use lifeline_csi_client::fake::{FakeDriver, serve};
use lifeline_e2e::TestCluster;
use lifeline_e2e::bench::measure::{Phase, calls, cpu_diff, cpu_of, report, requests, rss_of};
use lifeline_e2e::bench::{ceiling, profile};
use lifeline_e2e::peers::{Driver, Peer};
use serde_json::{Value, json};

const DRIVER: &str = "bench.lifeline.dev";

/// How many of the hottest functions `--profile` reports.
const PROFILE_TOP: usize = 25;

fn obj<K: serde::de::DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).expect("a valid object")
}

#[derive(Debug)]
struct Args {
    controller: Peer,
    ceiling: bool,
    profile: bool,
    /// The driver answers GetVolumeReplicationInfo with UNIMPLEMENTED.
    no_sync_info: bool,
    vrs: usize,
    idle: Duration,
    concurrency: usize,
    output: Option<String>,
}

const USAGE: &str = "use --controller lifeline|csi-addons|vro --ceiling --profile --no-sync-info --vrs N --idle SECONDS --concurrency N --output FILE --smoke";

fn parse_args(line: impl IntoIterator<Item = String>) -> anyhow::Result<Args> {
    let mut args = Args {
        controller: Peer::Lifeline,
        ceiling: false,
        profile: false,
        no_sync_info: false,
        vrs: 1000,
        idle: Duration::from_secs(180),
        concurrency: 16,
        output: None,
    };
    let mut it = line.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .with_context(|| format!("{name} needs a value; {USAGE}"))
        };
        match arg.as_str() {
            "--controller" => {
                args.controller = value("--controller")?
                    .parse()
                    .map_err(|e: String| anyhow::anyhow!(e))?
            }
            "--ceiling" => args.ceiling = true,
            "--profile" => args.profile = true,
            "--no-sync-info" => args.no_sync_info = true,
            "--vrs" => args.vrs = value("--vrs")?.parse().context("--vrs N")?,
            "--idle" => {
                args.idle = Duration::from_secs(value("--idle")?.parse().context("--idle SECONDS")?)
            }
            "--concurrency" => {
                args.concurrency = value("--concurrency")?.parse().context("--concurrency N")?
            }
            "--output" => args.output = Some(value("--output")?),
            "--smoke" => {
                args.vrs = 20;
                args.idle = Duration::from_secs(2);
            }
            other => anyhow::bail!("unknown argument {other:?}; {USAGE}"),
        }
    }
    Ok(args)
}

/// How long a phase may take before the benchmark gives up (far beyond any result worth
/// reporting at N=10 000).
const PHASE_TIMEOUT: Duration = Duration::from_secs(1800);

/// The benchmark's view of the VolumeReplications: one watch for the whole run. (Listing a
/// thousand of them every 100 ms cost the API server more CPU than a controller's own work.)
fn watch_vrs(vrs: Api<VolumeReplication>) -> Store<VolumeReplication> {
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(vrs, watcher::Config::default()))
        .default_backoff()
        .touched_objects();
    tokio::spawn(stream.for_each(|_| async {}));
    reader
}

/// Waits until all `n` VolumeReplications report `state` for their current generation with
/// `Completed=True`, as the watch sees them.
async fn wait_all(
    seen: &Store<VolumeReplication>,
    n: usize,
    state: CurrentState,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "not every VolumeReplication became {state:?} within {PHASE_TIMEOUT:?}"
        );
        let done = seen
            .state()
            .iter()
            .filter(|vr| {
                vr.status.as_ref().is_some_and(|s| {
                    s.state() == Some(state)
                        && s.observed_generation == vr.metadata.generation
                        && s.conditions
                            .iter()
                            .any(|c| c.type_ == "Completed" && c.status == "True")
                })
            })
            .count();
        if done == n {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many of the benchmark's own requests are in flight at once.
const IN_FLIGHT: usize = 32;

async fn create_all<F, K>(n: usize, make: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> futures::future::BoxFuture<'static, Result<K, kube::Error>>,
{
    create_all_at(n, IN_FLIGHT, make).await
}

/// [`create_all`] with `width` in flight.
async fn create_all_at<F, K>(n: usize, width: usize, make: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> futures::future::BoxFuture<'static, Result<K, kube::Error>>,
{
    let results: Vec<Result<K, kube::Error>> = stream::iter(0..n)
        .map(make)
        .buffer_unordered(width)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(())
}

/// Sets up `n` claims `pvc-{i}`, each bound to its own CSI volume of the driver by the real
/// binder (kube-controller-manager), and waits until all are `Bound`: the binder's work is not
/// the controller's. (Marking claims bound ourselves raced the binder, which set some back to
/// `Pending` for a minute while the clock ran.)
async fn claims(client: &Client, ns: &str, n: usize) -> anyhow::Result<()> {
    let pvs = Api::<PersistentVolume>::all(client.clone());
    create_all(n, |i| {
        let pvs = pvs.clone();
        let ns = ns.to_owned();
        Box::pin(async move {
            pvs.create(&PostParams::default(), &obj(json!({"metadata": {"name": format!("{ns}-pv-{i}")},
                "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "",
                         "claimRef": {"namespace": ns, "name": format!("pvc-{i}")},
                         "csi": {"driver": DRIVER, "volumeHandle": format!("vol-{i}")}}})))
                .await
        })
    })
    .await?;
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns);
    create_all(n, |i| {
        let pvcs = pvcs.clone();
        let ns = ns.to_owned();
        Box::pin(async move {
            pvcs.create(&PostParams::default(), &obj(json!({"metadata": {"name": format!("pvc-{i}")},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "", "resources": {"requests": {"storage": "1Gi"}},
                         "volumeName": format!("{ns}-pv-{i}")}})))
                .await
        })
    })
    .await?;
    lifeline_e2e::wait::until(
        Duration::from_secs(600),
        "kube-controller-manager binds every claim",
        || {
            let pvcs = pvcs.clone();
            async move {
                let list = pvcs.list(&Default::default()).await.ok()?;
                let bound = list
                    .items
                    .iter()
                    .filter(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"))
                    .count();
                (bound == n).then_some(())
            }
        },
    )
    .await
}

fn volume_replication(i: usize) -> VolumeReplication {
    obj(
        json!({"apiVersion": "replication.storage.openshift.io/v1alpha1", "kind": "VolumeReplication",
        "metadata": {"name": format!("vr-{i}")},
        "spec": {"volumeReplicationClass": "bench", "replicationState": "primary",
                 "dataSource": {"kind": "PersistentVolumeClaim", "name": format!("pvc-{i}")}}}),
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args(std::env::args().skip(1))?;
    let n = args.vrs;
    let peer = args.controller;
    let cluster = if args.ceiling || peer == Peer::Lifeline {
        TestCluster::start().await?
    } else {
        TestCluster::start_with_crds_of(&peer.crds()?).await?
    };
    let client: Client = cluster.client();
    let ns = cluster.namespace("bench").await?;
    // The socket in a folder of its own: what a sidecar's Pod mounts.
    let socket_dir = cluster.dir().join("csi");
    std::fs::create_dir_all(&socket_dir)?;
    let socket = socket_dir.join("bench.sock");
    let driver = FakeDriver::new(DRIVER);
    driver.set_resync_ready(true);
    // A driver that syncs every second: every info refresh sees a newer lastSyncTime, so the
    // idle phase measures what polling and the status-write rule cost.
    driver.set_syncing_every(Duration::from_secs(1));
    if args.no_sync_info {
        driver.fail(
            "GetVolumeReplicationInfo",
            tonic::Code::Unimplemented,
            "this driver reports no sync info",
        );
    }
    let _served = serve(driver.clone(), &socket);

    println!("setting up {n} bound claims …");
    // A class with driver credentials, as real drivers have (csi-addons' sidecar requires one).
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "bench-credentials"},
            "stringData": {"userID": "bench", "userKey": "not-a-real-key"}})),
        )
        .await?;
    Api::<VolumeReplicationClass>::all(client.clone())
        .create(&PostParams::default(), &obj(json!({"apiVersion": "replication.storage.openshift.io/v1alpha1", "kind": "VolumeReplicationClass",
            "metadata": {"name": "bench"}, "spec": {"provisioner": DRIVER, "parameters": {
                "schedulingInterval": "1h",
                "replication.storage.openshift.io/replication-secret-name": "bench-credentials",
                "replication.storage.openshift.io/replication-secret-namespace": ns}}})))
        .await?;
    claims(&client, &ns, n).await?;

    let running = if args.ceiling {
        None
    } else {
        let driver = Driver {
            name: DRIVER,
            socket: &socket,
        };
        println!("starting {} …", peer.name());
        Some(peer.start(&cluster, &ns, &driver, args.concurrency).await?)
    };
    let (name, release, own, users) = match &running {
        Some(r) => (peer.name(), r.release, r.pids.clone(), r.users.clone()),
        // The ceiling's writes are the admin's, with the benchmark's own creates and patches.
        None => (
            "ceiling",
            "the ceiling (no controller)",
            Vec::new(),
            vec!["admin".to_owned()],
        ),
    };
    let mut processes = own.clone();
    processes.extend(cluster.control_plane_pids());
    // With a controller, the benchmark's 32 requests and the controller's reconciles are in
    // flight together; the ceiling, which does both jobs, gets as many.
    let width = if args.ceiling {
        IN_FLIGHT + args.concurrency
    } else {
        IN_FLIGHT
    };
    let vrs = Api::<VolumeReplication>::namespaced(client.clone(), &ns);
    let seen = watch_vrs(vrs.clone());
    seen.wait_until_ready().await?;
    let mut phases = Vec::new();

    // Phase 1: create N primaries as fast as the API takes them.
    println!("creating {n} VolumeReplications (primary) …");
    driver.clear_received();
    let cpu0 = cpu_of(&processes);
    let mark0 = cluster.audit_log().await?.len();
    // The controller's own process (not a sidecar) is the one profiled.
    let recording = match own.first() {
        Some((_, pid)) if args.profile => profile::start(*pid, cluster.dir()).await,
        _ => None,
    };
    let started = Instant::now();
    create_all_at(n, width, |i| {
        let (vrs, client, ns) = (vrs.clone(), client.clone(), ns.clone());
        let ceiling = args.ceiling;
        Box::pin(async move {
            let vr = vrs
                .create(&PostParams::default(), &volume_replication(i))
                .await?;
            if ceiling {
                ceiling::to_primary(&client, &ns, &vr, &format!("pvc-{i}")).await?;
            }
            Ok(vr)
        })
    })
    .await?;
    wait_all(&seen, n, CurrentState::Primary).await?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu1 = cpu_of(&processes);
    let hottest = match recording {
        Some(recording) => recording.finish(PROFILE_TOP).await?,
        None => Vec::new(),
    };
    let log = cluster.audit_log().await?;
    let mark1 = log.len();
    phases.push(Phase {
        name: "create → primary",
        seconds,
        cpu: cpu_diff(&cpu1, &cpu0),
        rss: rss_of(&own),
        calls: calls(&driver),
        requests: requests(&log[mark0..], &users),
    });

    // Phase 2: idle (nothing to measure of the ceiling: it writes nothing unasked).
    let (mut cpu2, mut mark2) = (cpu1.clone(), mark1);
    if !args.ceiling {
        println!("idle for {:?} …", args.idle);
        driver.clear_received();
        tokio::time::sleep(args.idle).await;
        cpu2 = cpu_of(&processes);
        let log = cluster.audit_log().await?;
        mark2 = log.len();
        phases.push(Phase {
            name: "idle",
            seconds: args.idle.as_secs_f64(),
            cpu: cpu_diff(&cpu2, &cpu1),
            rss: rss_of(&own),
            calls: calls(&driver),
            requests: requests(&log[mark1..], &users),
        });
    }

    // Phase 3: every VR to secondary.
    println!("switching {n} VolumeReplications to secondary …");
    driver.clear_received();
    let started = Instant::now();
    create_all_at(n, width, |i| {
        let (vrs, client, ns) = (vrs.clone(), client.clone(), ns.clone());
        let ceiling = args.ceiling;
        Box::pin(async move {
            let name = format!("vr-{i}");
            let vr = vrs
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"replicationState": "secondary"}})),
                )
                .await?;
            if ceiling {
                let uid = vr.metadata.uid.clone().unwrap_or_default();
                let generation = vr.metadata.generation.unwrap_or(2);
                ceiling::finish(&client, &ns, &name, &uid, "Secondary", generation).await?;
            }
            Ok(vr)
        })
    })
    .await?;
    wait_all(&seen, n, CurrentState::Secondary).await?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu3 = cpu_of(&processes);
    let log = cluster.audit_log().await?;
    phases.push(Phase {
        name: "primary → secondary",
        seconds,
        cpu: cpu_diff(&cpu3, &cpu2),
        rss: rss_of(&own),
        calls: calls(&driver),
        requests: requests(&log[mark2..], &users),
    });

    let mut json = report(name, release, &phases, n);
    if !hottest.is_empty() {
        println!(
            "\nwhere the controller's CPU went while VolumeReplications became primary (perf, self time):"
        );
        for (share, symbol) in &hottest {
            println!("  {share:5.2}%  {symbol}");
        }
        json["profile_to_primary"] = json!(hottest);
    }
    if let Some(path) = args.output {
        std::fs::write(&path, serde_json::to_string_pretty(&json)?)?;
        println!("\nwritten to {path}");
    }
    if let Some(mut running) = running {
        for process in &mut running.processes {
            // The volume-replication-operator v0.3.0 ignores SIGTERM: not the benchmark's failure.
            if let Err(e) = process.terminate(Duration::from_secs(30)).await {
                println!("{e}; killed");
                process.kill().await;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(line: &[&str]) -> anyhow::Result<Args> {
        parse_args(line.iter().map(|s| s.to_string()))
    }

    #[test]
    fn the_controller_and_the_ceiling_are_chosen_by_flag() {
        let args = parsed(&["--controller", "csi-addons", "--smoke"]).unwrap();
        assert_eq!(args.controller, Peer::CsiAddons);
        assert_eq!(args.vrs, 20);
        assert!(!args.ceiling);
        assert!(parsed(&["--ceiling"]).unwrap().ceiling);
        assert_eq!(parsed(&[]).unwrap().controller, Peer::Lifeline);
        let refused = parsed(&["--controller", "rook"]).unwrap_err().to_string();
        assert!(refused.contains("available"), "{refused}");
        let refused = parsed(&["--vrs"]).unwrap_err().to_string();
        assert!(refused.contains("--vrs needs a value"), "{refused}");
        assert!(parsed(&["--bogus"]).is_err());
    }
}
