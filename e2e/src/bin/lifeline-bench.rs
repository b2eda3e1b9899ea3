//! `cargo xtask bench replication`: the real replication controller against the harness's API
//! server and a driver that answers at once (the scriptable fake from `lifeline-csi-client`),
//! measuring convergence, the controller's CPU and peak RSS, and the RPCs and API writes per
//! VolumeReplication — then the same while idle and for a switch to secondary.

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
use lifeline_e2e::process::{Process, binary};
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

async fn writes(url: &str) -> BTreeMap<String, u64> {
    counted(url, "writes").await
}

/// GETs of single objects the local server served (what watch caches could answer).
async fn reads(url: &str) -> BTreeMap<String, u64> {
    counted(url, "reads").await
}

async fn counted(url: &str, what: &str) -> BTreeMap<String, u64> {
    let body = async {
        let address = url.trim_start_matches("http://");
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
        stream
            .write_all(
                format!("GET /debug/{what} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await.ok()?;
        let json = text.split("\r\n\r\n").nth(1)?;
        serde_json::from_str::<BTreeMap<String, u64>>(json).ok()
    };
    body.await.unwrap_or_default()
}

fn diff(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
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

async fn wait_all(
    vrs: &Api<VolumeReplication>,
    n: usize,
    state: CurrentState,
) -> anyhow::Result<()> {
    loop {
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
    cpu: f64,
    rss: f64,
    calls: BTreeMap<&'static str, u64>,
    writes: BTreeMap<String, u64>,
    reads: BTreeMap<String, u64>,
}

fn per(count: u64, n: usize) -> String {
    format!("{:.2}", count as f64 / n.max(1) as f64)
}

fn report(phases: &[Phase], n: usize) -> Value {
    println!(
        "\n{:<22} {:>9} {:>8} {:>8} {:>9}  rpcs per VR / writes and GETs per VR",
        "phase", "seconds", "VR/s", "cpu s", "rss MiB"
    );
    let mut json = Vec::new();
    for p in phases {
        let rate = if p.seconds > 0.0 {
            n as f64 / p.seconds
        } else {
            0.0
        };
        let rpcs: Vec<String> = p
            .calls
            .iter()
            .map(|(k, v)| format!("{k} {}", per(*v, n)))
            .collect();
        let writes: Vec<String> = p
            .writes
            .iter()
            .chain(&p.reads)
            .map(|(k, v)| format!("{k} {}", per(*v, n)))
            .collect();
        println!(
            "{:<22} {:>9.2} {:>8.1} {:>8.2} {:>9.1}  {} / {}",
            p.name,
            p.seconds,
            rate,
            p.cpu,
            p.rss,
            rpcs.join(", "),
            writes.join(", ")
        );
        let minutes = (p.seconds / 60.0).max(f64::MIN_POSITIVE);
        let rpcs_per_minute = p.calls.values().sum::<u64>() as f64 / minutes;
        let writes_per_minute = p.writes.values().sum::<u64>() as f64 / minutes;
        if p.name == "idle" {
            println!(
                "{:<22} {rpcs_per_minute:.0} RPCs per minute, {writes_per_minute:.0} API writes per minute for {n} healthy primaries",
                ""
            );
        }
        json.push(json!({"phase": p.name, "seconds": p.seconds, "vr_per_second": rate, "controller_cpu_seconds": p.cpu,
                         "controller_peak_rss_mib": p.rss, "rpcs": p.calls, "writes": p.writes, "gets": p.reads,
                         "rpcs_per_minute": rpcs_per_minute, "writes_per_minute": writes_per_minute}));
    }
    json!({"vrs": n, "phases": json})
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
        &[(
            "KUBECONFIG".into(),
            cluster.kubeconfig().display().to_string(),
        )],
    )?;
    controller
        .wait_for_line("admin-listen", Duration::from_secs(60))
        .await?;
    let pid = controller.pid().context("the controller runs")?;
    let url = format!("http://{}", cluster.kubeconfig_server().unwrap_or_default());
    let vrs = Api::<VolumeReplication>::namespaced(client.clone(), &ns);
    let mut phases = Vec::new();

    // Phase 1: create N primaries as fast as the API takes them.
    println!("creating {n} VolumeReplications (primary) …");
    driver.clear_received();
    let (cpu0, _) = usage(pid);
    let w0 = writes(&url).await;
    let r0 = reads(&url).await;
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
    let (cpu1, rss) = usage(pid);
    let mut w1 = writes(&url).await;
    let mut r1 = reads(&url).await;
    let mut controller_writes = diff(&w1, &w0);
    // The bench's own creates are not the controller's.
    if let Some(v) = controller_writes.get_mut("POST volumereplications") {
        *v -= n as u64;
    }
    controller_writes.retain(|_, v| *v > 0);
    phases.push(Phase {
        name: "create → primary",
        seconds,
        cpu: cpu1 - cpu0,
        rss,
        calls: calls(&driver),
        writes: controller_writes,
        reads: diff(&r1, &r0),
    });

    // Phase 2: idle.
    println!("idle for {:?} …", args.idle);
    driver.clear_received();
    tokio::time::sleep(args.idle).await;
    let (cpu2, rss) = usage(pid);
    let w2 = writes(&url).await;
    let r2 = reads(&url).await;
    phases.push(Phase {
        name: "idle",
        seconds: args.idle.as_secs_f64(),
        cpu: cpu2 - cpu1,
        rss,
        calls: calls(&driver),
        writes: diff(&w2, &w1),
        reads: diff(&r2, &r1),
    });
    w1 = w2;
    r1 = r2;

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
    let (cpu3, rss) = usage(pid);
    let w3 = writes(&url).await;
    let r3 = reads(&url).await;
    let mut controller_writes = diff(&w3, &w1);
    if let Some(v) = controller_writes.get_mut("PATCH volumereplications") {
        *v = v.saturating_sub(n as u64);
    }
    controller_writes.retain(|_, v| *v > 0);
    phases.push(Phase {
        name: "primary → secondary",
        seconds,
        cpu: cpu3 - cpu2,
        rss,
        calls: calls(&driver),
        writes: controller_writes,
        reads: diff(&r3, &r1),
    });

    let json = report(&phases, n);
    if let Some(path) = args.output {
        std::fs::write(&path, serde_json::to_string_pretty(&json)?)?;
        println!("\nwritten to {path}");
    }
    controller.terminate(Duration::from_secs(30)).await?;
    Ok(())
}
