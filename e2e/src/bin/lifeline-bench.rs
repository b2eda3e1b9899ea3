//! `cargo xtask bench replication`: the real replication controller, as its own user, against
//! the real control plane and a driver that answers at once (the scriptable fake from
//! `lifeline-csi-client`), measuring convergence, the CPU seconds of the controller,
//! kube-apiserver and etcd, the controller's peak RSS, its RPCs and its API requests per
//! VolumeReplication by verb and resource (from the API server's audit log, reads included) —
//! then the same while idle and for a switch to secondary.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use lifeline_api::replication::{CurrentState, VolumeReplication, VolumeReplicationClass};
use lifeline_csi_client::fake::{FakeDriver, Received, serve};
use lifeline_e2e::TestCluster;
use lifeline_e2e::audit::Access;
use lifeline_e2e::process::{Process, binary};
use lifeline_e2e::rbac::Controller;
use serde_json::{Value, json};

const DRIVER: &str = "bench.lifeline.dev";

fn obj<K: serde::de::DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).expect("a valid object")
}

struct Args {
    vrs: usize,
    idle: Duration,
    output: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        vrs: 1000,
        idle: Duration::from_secs(180),
        output: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--vrs" => args.vrs = it.next().context("--vrs N")?.parse()?,
            "--idle" => {
                args.idle = Duration::from_secs(it.next().context("--idle SECONDS")?.parse()?)
            }
            "--output" => args.output = Some(it.next().context("--output FILE")?),
            "--smoke" => {
                args.vrs = 20;
                args.idle = Duration::from_secs(2);
            }
            other => anyhow::bail!(
                "unknown argument {other:?}; use --vrs N --idle SECONDS --output FILE --smoke"
            ),
        }
    }
    Ok(args)
}

/// CPU seconds and peak RSS (MiB) of a process, from /proc.
fn usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 (1-based); after the ")" they are 12 and 13 (1-based).
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, hwm_kib / 1024.0)
}

/// The controller's API requests in `log` by "verb resource" (the audit log's view: reads
/// included, a watch counted once).
fn requests(log: &[Access], user: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for a in log.iter().filter(|a| a.user == user) {
        *counts
            .entry(format!("{} {}", a.verb, a.resource))
            .or_default() += 1;
    }
    counts
}

/// The sum of the counts whose verb is one of `verbs`.
fn of_verbs(requests: &BTreeMap<String, u64>, verbs: &[&str]) -> u64 {
    requests
        .iter()
        .filter(|(k, _)| verbs.iter().any(|v| k.split(' ').next() == Some(*v)))
        .map(|(_, v)| v)
        .sum()
}

const READS: &[&str] = &["get", "list", "watch"];
const WRITES: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

/// CPU seconds so far of the controller and of each control plane process.
fn cpu_of(processes: &[(&'static str, u32)]) -> BTreeMap<&'static str, f64> {
    processes
        .iter()
        .map(|(name, pid)| (*name, usage(*pid).0))
        .collect()
}

fn cpu_diff(
    after: &BTreeMap<&'static str, f64>,
    before: &BTreeMap<&'static str, f64>,
) -> BTreeMap<&'static str, f64> {
    after
        .iter()
        .map(|(k, v)| (*k, v - before.get(k).copied().unwrap_or(0.0)))
        .collect()
}

fn calls(driver: &FakeDriver) -> BTreeMap<&'static str, u64> {
    let mut counts = BTreeMap::new();
    for r in driver.received() {
        let name = match r {
            Received::Enable(_) => "Enable",
            Received::Disable(_) => "Disable",
            Received::Promote(_) => "Promote",
            Received::Demote(_) => "Demote",
            Received::Resync(_) => "Resync",
            Received::Info(_) => "GetInfo",
            Received::DestInfo(_) => "GetDestInfo",
            other => other.method().as_str(),
        };
        *counts.entry(name).or_default() += 1;
    }
    counts
}

/// How long a phase may take before the benchmark gives up (far beyond any result worth
/// reporting at N=10 000).
const PHASE_TIMEOUT: Duration = Duration::from_secs(1800);

async fn wait_all(
    vrs: &Api<VolumeReplication>,
    n: usize,
    state: CurrentState,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "not every VolumeReplication became {state:?} within {PHASE_TIMEOUT:?}"
        );
        let list = vrs.list(&ListParams::default()).await?;
        let done = list
            .items
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
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Phase {
    name: &'static str,
    seconds: f64,
    /// CPU seconds of the controller and of each control plane process.
    cpu: BTreeMap<&'static str, f64>,
    rss: f64,
    calls: BTreeMap<&'static str, u64>,
    /// The controller's API requests by "verb resource".
    requests: BTreeMap<String, u64>,
}

fn per(count: u64, n: usize) -> String {
    format!("{:.2}", count as f64 / n.max(1) as f64)
}

fn report(phases: &[Phase], n: usize) -> Value {
    let mut json = Vec::new();
    for p in phases {
        let rate = if p.seconds > 0.0 {
            n as f64 / p.seconds
        } else {
            0.0
        };
        let cpu: Vec<String> = p.cpu.iter().map(|(k, v)| format!("{k} {v:.2}")).collect();
        println!(
            "\n{}: {:.2} s, {:.1} VR/s, controller peak RSS {:.1} MiB\n  CPU seconds: {}",
            p.name,
            p.seconds,
            rate,
            p.rss,
            cpu.join(", ")
        );
        let rpcs: Vec<String> = p
            .calls
            .iter()
            .map(|(k, v)| format!("{k} {}", per(*v, n)))
            .collect();
        println!("  RPCs per VR: {}", rpcs.join(", "));
        let requests: Vec<String> = p
            .requests
            .iter()
            .map(|(k, v)| format!("{k} {}", per(*v, n)))
            .collect();
        println!("  API requests per VR: {}", requests.join(", "));
        let (reads, writes) = (of_verbs(&p.requests, READS), of_verbs(&p.requests, WRITES));
        let minutes = (p.seconds / 60.0).max(f64::MIN_POSITIVE);
        let rpcs_per_minute = p.calls.values().sum::<u64>() as f64 / minutes;
        let writes_per_minute = writes as f64 / minutes;
        if p.name == "idle" {
            println!(
                "  {rpcs_per_minute:.0} RPCs per minute, {writes_per_minute:.0} API writes per minute for {n} healthy primaries"
            );
        }
        json.push(json!({"phase": p.name, "seconds": p.seconds, "vr_per_second": rate, "cpu_seconds": p.cpu,
                         "controller_peak_rss_mib": p.rss, "rpcs": p.calls, "requests": p.requests,
                         "reads": reads, "writes": writes,
                         "rpcs_per_minute": rpcs_per_minute, "writes_per_minute": writes_per_minute}));
    }
    json!({"vrs": n, "backend": "kube-apiserver v1.36 (audit log)", "phases": json})
}

async fn create_all<F, K>(n: usize, make: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> futures::future::BoxFuture<'static, Result<K, kube::Error>>,
{
    let results: Vec<Result<K, kube::Error>> = stream::iter(0..n)
        .map(make)
        .buffer_unordered(32)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let n = args.vrs;
    let cluster = TestCluster::start().await?;
    let client: Client = cluster.client();
    let ns = cluster.namespace("bench").await?;
    let socket = cluster.dir().join("bench.sock");
    let driver = FakeDriver::new(DRIVER);
    driver.set_resync_ready(true);
    // A driver that syncs every second: every info refresh sees a newer lastSyncTime, so the
    // idle phase measures what polling and the status-write rule cost.
    driver.set_syncing_every(Duration::from_secs(1));
    let _served = serve(driver.clone(), &socket);

    println!("setting up {n} bound claims …");
    Api::<VolumeReplicationClass>::all(client.clone())
        .create(&PostParams::default(), &obj(json!({"apiVersion": "replication.storage.openshift.io/v1alpha1", "kind": "VolumeReplicationClass",
            "metadata": {"name": "bench"}, "spec": {"provisioner": DRIVER, "parameters": {"schedulingInterval": "1h"}}})))
        .await?;
    let pvs = Api::<PersistentVolume>::all(client.clone());
    create_all(n, |i| {
        let pvs = pvs.clone();
        let ns = ns.clone();
        Box::pin(async move {
            pvs.create(&PostParams::default(), &obj(json!({"metadata": {"name": format!("{ns}-pv-{i}")},
                "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "csi": {"driver": DRIVER, "volumeHandle": format!("vol-{i}")}}})))
                .await
        })
    })
    .await?;
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns);
    create_all(n, |i| {
        let pvcs = pvcs.clone();
        let ns = ns.clone();
        Box::pin(async move {
            pvcs.create(&PostParams::default(), &obj(json!({"metadata": {"name": format!("pvc-{i}")},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeName": format!("{ns}-pv-{i}")}})))
                .await?;
            pvcs.patch_status(&format!("pvc-{i}"), &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "Bound"}}))).await
        })
    })
    .await?;

    let kubeconfig = cluster
        .controller_kubeconfig(Controller::Replication, &ns, None)
        .await?;
    let mut controller = Process::spawn(
        cluster.dir(),
        "replication-controller",
        &binary(
            "lifeline-replication-controller",
            "lifeline-replication-controller",
        )?,
        &[
            "--driver-name".into(),
            DRIVER.into(),
            "--csi-address".into(),
            format!("unix://{}", socket.display()),
            "--admin-address".into(),
            "127.0.0.1:0".into(),
            "--watch-namespace".into(),
            ns.clone(),
            "--concurrency".into(),
            "16".into(),
            "--log-level".into(),
            "warn".into(),
        ],
        &[("KUBECONFIG".into(), kubeconfig.display().to_string())],
    )?;
    controller
        .wait_for_line("admin-listen", Duration::from_secs(60))
        .await?;
    let pid = controller.pid().context("the controller runs")?;
    let mut processes = vec![("controller", pid)];
    processes.extend(cluster.control_plane_pids());
    let user = Controller::Replication.user();
    let vrs = Api::<VolumeReplication>::namespaced(client.clone(), &ns);
    let mut phases = Vec::new();

    // Phase 1: create N primaries as fast as the API takes them.
    println!("creating {n} VolumeReplications (primary) …");
    driver.clear_received();
    let cpu0 = cpu_of(&processes);
    let mark0 = cluster.audit_log().await?.len();
    let started = Instant::now();
    create_all(n, |i| {
        let vrs = vrs.clone();
        Box::pin(async move {
            vrs.create(&PostParams::default(), &obj(json!({"apiVersion": "replication.storage.openshift.io/v1alpha1", "kind": "VolumeReplication",
                "metadata": {"name": format!("vr-{i}")},
                "spec": {"volumeReplicationClass": "bench", "replicationState": "primary",
                         "dataSource": {"kind": "PersistentVolumeClaim", "name": format!("pvc-{i}")}}})))
                .await
        })
    })
    .await?;
    wait_all(&vrs, n, CurrentState::Primary).await?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu1 = cpu_of(&processes);
    let rss = usage(pid).1;
    let log = cluster.audit_log().await?;
    let mark1 = log.len();
    phases.push(Phase {
        name: "create → primary",
        seconds,
        cpu: cpu_diff(&cpu1, &cpu0),
        rss,
        calls: calls(&driver),
        requests: requests(&log[mark0..], &user),
    });

    // Phase 2: idle.
    println!("idle for {:?} …", args.idle);
    driver.clear_received();
    tokio::time::sleep(args.idle).await;
    let cpu2 = cpu_of(&processes);
    let rss = usage(pid).1;
    let log = cluster.audit_log().await?;
    let mark2 = log.len();
    phases.push(Phase {
        name: "idle",
        seconds: args.idle.as_secs_f64(),
        cpu: cpu_diff(&cpu2, &cpu1),
        rss,
        calls: calls(&driver),
        requests: requests(&log[mark1..], &user),
    });

    // Phase 3: every VR to secondary.
    println!("switching {n} VolumeReplications to secondary …");
    driver.clear_received();
    let started = Instant::now();
    create_all(n, |i| {
        let vrs = vrs.clone();
        Box::pin(async move {
            vrs.patch(
                &format!("vr-{i}"),
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicationState": "secondary"}})),
            )
            .await
        })
    })
    .await?;
    wait_all(&vrs, n, CurrentState::Secondary).await?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu3 = cpu_of(&processes);
    let rss = usage(pid).1;
    let log = cluster.audit_log().await?;
    phases.push(Phase {
        name: "primary → secondary",
        seconds,
        cpu: cpu_diff(&cpu3, &cpu2),
        rss,
        calls: calls(&driver),
        requests: requests(&log[mark2..], &user),
    });

    let json = report(&phases, n);
    if let Some(path) = args.output {
        std::fs::write(&path, serde_json::to_string_pretty(&json)?)?;
        println!("\nwritten to {path}");
    }
    controller.terminate(Duration::from_secs(30)).await?;
    Ok(())
}
