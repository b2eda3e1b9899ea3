//! `cargo xtask bench datamover`: N VolumeSnapshotBackups of volumes of a given size through the
//! real data mover, the real VolSync and its restic mover script (run by the kubelet stand-in);
//! the repositories are on a local S3 server over HTTPS (`rclone serve s3`). It reports the time from each VSB's creation to its
//! ReplicationSource's (p50, p99), the total time, and the overhead against bare `restic backup`
//! of the same data in the same run. With `--limit L` below N the data mover admits L at a time,
//! and the report adds the time from a slot freeing (a backup's `Completed`) to the next
//! ReplicationSource's creation (p50, p99). Times are when this process sees each watch event.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Secret};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::PostParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use lifeline_api::datamover::VolumeSnapshotBackup;
use lifeline_api::foreign::snapshot::{VolumeSnapshot, VolumeSnapshotClass};
use lifeline_api::foreign::volsync::ReplicationSource;
use lifeline_e2e::process::{Process, binary};
use lifeline_e2e::{TestCluster, wait};
use serde_json::{Value, json};

const DRIVER: &str = "hostpath.lifeline.dev";
const T: Duration = Duration::from_secs(600);

fn obj<K: serde::de::DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).expect("a valid object")
}

fn arg(name: &str, default: u64) -> anyhow::Result<u64> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(args.get(i + 1).context("a value")?.parse()?),
        None => Ok(default),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

/// When the bench saw each ReplicationSource (by request index) and each completion.
#[derive(Clone, Default)]
struct Seen {
    sources: BTreeMap<usize, Instant>,
    completed: BTreeMap<String, Instant>,
}

/// Feeds every object the watch shows to `note` until the task is stopped.
async fn record<K>(api: Api<K>, seen: Arc<Mutex<Seen>>, note: fn(&K, &mut Seen))
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    while let Some(object) = stream.next().await {
        if let Ok(object) = object {
            note(&object, &mut seen.lock().expect("lock"));
        }
    }
}

/// `restic init` and `restic backup` of `dir`, as VolSync's mover runs them.
async fn bare_backup(
    s3: &lifeline_e2e::s3::S3Server,
    repository: String,
    password: &str,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    for args in [&["init"][..], &["backup", "--host", "volsync", "."][..]] {
        let output =
            tokio::process::Command::new(lifeline_e2e::storage_controllers::program("restic")?)
                .arg("--cacert")
                .arg(&s3.ca_file)
                .args(args)
                .env("RESTIC_REPOSITORY", &repository)
                .env("RESTIC_PASSWORD", password)
                .env("AWS_ACCESS_KEY_ID", lifeline_e2e::s3::ACCESS_KEY)
                .env("AWS_SECRET_ACCESS_KEY", lifeline_e2e::s3::SECRET_KEY)
                .current_dir(dir)
                .output()
                .await
                .context("cannot run restic (`cargo xtask control-plane` builds it)")?;
        anyhow::ensure!(
            output.status.success(),
            "restic {} failed: {}",
            args[0],
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let n = if smoke {
        2
    } else {
        arg("--backups", 10)? as usize
    };
    let size = if smoke {
        1 << 20
    } else {
        arg("--size", 64 << 20)?
    };
    let limit = if smoke {
        1
    } else {
        arg("--limit", n as u64)? as usize
    }
    .clamp(1, n);
    let cluster = TestCluster::start().await?;
    let client: Client = cluster.client();
    let app = cluster.namespace("bench-app").await?;
    let protected = cluster.namespace("bench-protected").await?;
    let (site, _storage) = cluster.lone_driver(DRIVER).await?;
    // The same object store for the data mover and the bare restic baseline, so the ratio
    // measures the controllers' overhead.
    let s3 = lifeline_e2e::s3::S3Server::require(cluster.dir(), "bench").await?;
    Api::<StorageClass>::all(client.clone())
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "bench", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": DRIVER})),
        )
        .await?;
    Api::<VolumeSnapshotClass>::all(client.clone())
        .create(
            &PostParams::default(),
            &obj(
                json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
            "metadata": {"name": "bench"}, "driver": DRIVER, "deletionPolicy": "Delete"}),
            ),
        )
        .await?;
    let password = "bench-password";
    Api::<Secret>::namespaced(client.clone(), &protected)
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "restic"},
            "stringData": s3.restic_secret("bench", "mover", password)})),
        )
        .await?;

    println!("preparing {n} volumes of {size} bytes with snapshots …");
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &app);
    let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), &app);
    let mut dirs = Vec::new();
    let mut contents = Vec::new();
    for i in 0..n {
        claims
            .create(&PostParams::default(), &obj(json!({"metadata": {"name": format!("data-{i}")},
                "spec": {"storageClassName": "bench", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})))
            .await?;
        let bound = wait::for_object(&claims, &format!("data-{i}"), T, "bound", |c| {
            c.spec
                .as_ref()
                .and_then(|s| s.volume_name.as_ref())
                .is_some()
        })
        .await?;
        let pv = Api::<PersistentVolume>::all(client.clone())
            .get(&bound.spec.and_then(|s| s.volume_name).unwrap_or_default())
            .await?;
        let dir = site.volume_dir(
            &pv.spec
                .and_then(|s| s.csi)
                .map(|c| c.volume_handle)
                .unwrap_or_default(),
        );
        // Incompressible, distinct data per volume.
        let bytes = lifeline_e2e::actors::files::noise(i as u64 + 1, size as usize);
        std::fs::write(dir.join("data.bin"), &bytes)?;
        snapshots
            .create(&PostParams::default(), &obj(json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
                "metadata": {"name": format!("snap-{i}")}, "spec": {"volumeSnapshotClassName": "bench", "source": {"persistentVolumeClaimName": format!("data-{i}")}}})))
            .await?;
        let ready = wait::for_object(&snapshots, &format!("snap-{i}"), T, "ready", |s| {
            s.status.as_ref().and_then(|s| s.ready_to_use) == Some(true)
        })
        .await?;
        contents.push(
            ready
                .status
                .and_then(|s| s.bound_volume_snapshot_content_name)
                .unwrap_or_default(),
        );
        dirs.push(dir);
    }

    // Bare restic on the same data, as the baseline.
    // One repository per volume and all at once, as the data mover does it.
    let bare_started = Instant::now();
    let runs = dirs.iter().enumerate().map(|(i, dir)| {
        let repository = s3.repository("bench", &format!("bare/{i}"));
        bare_backup(&s3, repository, password, dir)
    });
    for result in futures::future::join_all(runs).await {
        result?;
    }
    let bare = bare_started.elapsed().as_secs_f64();

    let mut mover = Process::spawn(
        cluster.dir(),
        "datamover",
        &binary(
            "lifeline-datamover-controller",
            "lifeline-datamover-controller",
        )?,
        &[
            "--admin-address".into(),
            "127.0.0.1:0".into(),
            "--max-concurrent-backups".into(),
            limit.to_string(),
            "--log-level".into(),
            "warn".into(),
        ],
        &[(
            "KUBECONFIG".into(),
            cluster.kubeconfig().display().to_string(),
        )],
    )?;
    mover
        .wait_for_line("admin-listen", Duration::from_secs(60))
        .await?;

    println!("backing up through the data mover ({limit} admitted at a time) …");
    let vsbs = Api::<VolumeSnapshotBackup>::namespaced(client.clone(), &app);
    let sources = Api::<ReplicationSource>::namespaced(client.clone(), &protected);
    // When each ReplicationSource appears and each VSB completes, as their watch events arrive.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let watching = [
        tokio::spawn(record(
            sources.clone(),
            Arc::clone(&seen),
            |rs: &ReplicationSource, seen| {
                let index = rs
                    .labels()
                    .get("datamover.oadp.openshift.io/request-name")
                    .and_then(|n| n.strip_prefix("vsb-"))
                    .and_then(|i| i.parse::<usize>().ok());
                if let Some(i) = index {
                    seen.sources.entry(i).or_insert_with(Instant::now);
                }
            },
        )),
        tokio::spawn(record(
            vsbs.clone(),
            Arc::clone(&seen),
            |b: &VolumeSnapshotBackup, seen| {
                let completed = b.status.as_ref().and_then(|s| s.phase())
                    == Some(lifeline_api::datamover::BackupPhase::Completed);
                if completed {
                    seen.completed
                        .entry(b.name_any())
                        .or_insert_with(Instant::now);
                }
            },
        )),
    ];
    let started = Instant::now();
    let mut created = Vec::new();
    for (i, content) in contents.iter().enumerate() {
        vsbs.create(&PostParams::default(), &obj(json!({"apiVersion": "datamover.oadp.openshift.io/v1alpha1", "kind": "VolumeSnapshotBackup",
            "metadata": {"name": format!("vsb-{i}")},
            "spec": {"volumeSnapshotContent": {"name": content}, "protectedNamespace": protected, "resticSecretRef": {"name": "restic"}}})))
            .await?;
        created.push(Instant::now());
    }
    wait::until(T, "every backup to complete", || {
        let seen = Arc::clone(&seen);
        async move { (seen.lock().expect("lock").completed.len() >= n).then_some(()) }
    })
    .await?;
    let total = started.elapsed().as_secs_f64();
    for task in watching {
        task.abort();
    }
    let seen = seen.lock().expect("lock").clone();
    let mut latencies: Vec<f64> = (0..n)
        .filter_map(|i| {
            Some(
                seen.sources
                    .get(&i)?
                    .duration_since(created[i])
                    .as_secs_f64(),
            )
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    // The k-th slot to free lets the (limit + k)-th ReplicationSource be created.
    let mut completions: Vec<Instant> = seen.completed.values().copied().collect();
    completions.sort();
    let mut creations: Vec<Instant> = seen.sources.values().copied().collect();
    creations.sort();
    let mut slot_latencies: Vec<f64> = completions
        .iter()
        .zip(creations.iter().skip(limit))
        .map(|(freed, next)| {
            anyhow::ensure!(
                *next >= *freed,
                "a ReplicationSource beyond the limit appeared before a slot freed"
            );
            Ok(next.duration_since(*freed).as_secs_f64())
        })
        .collect::<anyhow::Result<_>>()?;
    slot_latencies.sort_by(f64::total_cmp);
    let report = json!({
        "backups": n, "bytes_per_volume": size, "limit": limit,
        "slot_free_to_next_replicationsource_seconds": (!slot_latencies.is_empty()).then(|| json!({
            "p50": percentile(&slot_latencies, 0.5), "p99": percentile(&slot_latencies, 0.99), "samples": slot_latencies.len()})),
        "vsb_to_replicationsource_seconds": {"p50": percentile(&latencies, 0.5), "p99": percentile(&latencies, 0.99)},
        "datamover_total_seconds": total, "bare_restic_seconds": bare, "ratio": total / bare.max(1e-9),
    });
    println!(
        "\nVSB → ReplicationSource: p50 {:.3} s, p99 {:.3} s\ndata mover total {:.2} s; bare restic {:.2} s; ratio {:.2}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        total,
        bare,
        total / bare.max(1e-9)
    );
    if !slot_latencies.is_empty() {
        println!(
            "slot freed → next ReplicationSource ({} samples): p50 {:.3} s, p99 {:.3} s",
            slot_latencies.len(),
            percentile(&slot_latencies, 0.5),
            percentile(&slot_latencies, 0.99)
        );
    }
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--output") {
        let path = args.get(i + 1).context("--output FILE")?;
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    mover.terminate(Duration::from_secs(30)).await?;
    Ok(())
}
