//! `cargo xtask bench datamover`: N VolumeSnapshotBackups of volumes of a given size through the
//! real data mover and the restic mover actor; reports the time from each VSB's creation to its
//! ReplicationSource's (p50, p99), the total time, and the overhead against bare `restic backup`
//! of the same data in the same run.

use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Secret};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use lifeline_api::datamover::VolumeSnapshotBackup;
use lifeline_api::foreign::snapshot::{VolumeSnapshot, VolumeSnapshotClass};
use lifeline_api::foreign::volsync::ReplicationSource;
use lifeline_e2e::actors::{Actors, Site, restic, volsync};
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
    let cluster = TestCluster::start().await?;
    let client: Client = cluster.client();
    let app = cluster.namespace("bench-app").await?;
    let protected = cluster.namespace("bench-protected").await?;
    // A local repository (test-only, on both sides) so that the ratio to bare restic measures
    // the controller's overhead, not an object store's.
    let site = Site {
        driver: DRIVER.into(),
        root: cluster.dir().join("site"),
        allow_local_repository: true,
        pod_logs: cluster.pod_logs(),
        upload_limit_kib: None,
    };
    let mut actors = Actors::storage(client.clone(), site.clone());
    actors.merge(volsync::start(client.clone(), site.clone()).await?);
    Api::<StorageClass>::all(client.clone())
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "bench"}, "provisioner": DRIVER})),
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
    let repository = cluster.dir().join("repo");
    Api::<Secret>::namespaced(client.clone(), &protected)
        .create(&PostParams::default(), &obj(json!({"metadata": {"name": "restic"},
            "stringData": {"RESTIC_REPOSITORY": repository.display().to_string(), "RESTIC_PASSWORD": password}})))
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
        let mut state = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let bytes: Vec<u8> = (0..size)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
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
    let envs: Vec<restic::Repository> = (0..n)
        .map(|i| {
            let repo = cluster.dir().join(format!("bare-repo-{i}"));
            std::collections::BTreeMap::from([
                ("RESTIC_REPOSITORY".to_owned(), repo.display().to_string()),
                ("RESTIC_PASSWORD".to_owned(), password.to_owned()),
            ])
            .into()
        })
        .collect();
    let bare_started = Instant::now();
    let runs = dirs
        .iter()
        .zip(&envs)
        .map(|(dir, env)| restic::backup(env, dir, &[]));
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
            n.to_string(),
            "--allow-local-repository".into(),
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

    println!("backing up through the data mover (all admitted at once, like the bare run) …");
    let vsbs = Api::<VolumeSnapshotBackup>::namespaced(client.clone(), &app);
    let sources = Api::<ReplicationSource>::namespaced(client.clone(), &protected);
    let started = Instant::now();
    let mut created = Vec::new();
    for (i, content) in contents.iter().enumerate() {
        vsbs.create(&PostParams::default(), &obj(json!({"apiVersion": "datamover.oadp.openshift.io/v1alpha1", "kind": "VolumeSnapshotBackup",
            "metadata": {"name": format!("vsb-{i}")},
            "spec": {"volumeSnapshotContent": {"name": content}, "protectedNamespace": protected, "resticSecretRef": {"name": "restic"}}})))
            .await?;
        created.push(Instant::now());
    }
    // Watch for each ReplicationSource's appearance and each VSB's completion.
    let mut to_source = vec![None; n];
    let mut done = 0;
    while done < n {
        let listed = sources.list(&ListParams::default()).await?;
        for rs in listed.items {
            let labels = rs.metadata.labels.unwrap_or_default();
            if let Some(i) = labels
                .get("datamover.oadp.openshift.io/request-name")
                .and_then(|n| n.strip_prefix("vsb-"))
                .and_then(|i| i.parse::<usize>().ok())
                && i < n
                && to_source[i].is_none()
            {
                to_source[i] = Some(created[i].elapsed().as_secs_f64());
            }
        }
        done = vsbs
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|b| {
                b.status.as_ref().and_then(|s| s.phase())
                    == Some(lifeline_api::datamover::BackupPhase::Completed)
            })
            .count();
        anyhow::ensure!(
            started.elapsed() < T,
            "the backups did not complete in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let total = started.elapsed().as_secs_f64();
    let mut latencies: Vec<f64> = to_source.iter().flatten().copied().collect();
    latencies.sort_by(f64::total_cmp);
    let report = json!({
        "backups": n, "bytes_per_volume": size,
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
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--output") {
        let path = args.get(i + 1).context("--output FILE")?;
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    mover.terminate(Duration::from_secs(30)).await?;
    Ok(())
}
