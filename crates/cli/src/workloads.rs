//! The Deployments and StatefulSets that mount the replicated claims: scaled to zero before a
//! site gives up its volumes (their counts remembered in an annotation) and scaled up where the
//! volumes become primary.

use std::collections::BTreeSet;
use std::time::Instant;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use crate::error::Error;
use crate::progress::{POLL, STILL_WAITING, Steps};

/// How many replicas the workload runs when its site holds the primaries. Written when
/// `migrate`/`failback` scale it to zero, read where they (or `failover`) scale it up; set it
/// yourself on a standby's workloads so `failover` knows their count.
pub const REPLICAS: &str = "lifeline.dev/replicas";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Deployment,
    StatefulSet,
}

/// A workload whose Pod template mounts one of the claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub kind: Kind,
    pub name: String,
    pub replicas: i32,
    /// The count in [`REPLICAS`], if it is a number.
    pub remembered: Option<i32>,
    pub ready: i32,
    /// The status describes the current spec.
    pub observed: bool,
}

impl Workload {
    pub fn label(&self) -> String {
        format!("{:?} {}", self.kind, self.name)
    }

    /// The count to come back to: the one running now, else the remembered one.
    pub fn count_to_remember(&self) -> Option<i32> {
        (self.replicas > 0)
            .then_some(self.replicas)
            .or(self.remembered)
    }
}

/// Whether the Pod template (or a Pod's spec) mounts one of the claims.
pub fn mounts(spec: Option<&PodSpec>, claims: &BTreeSet<String>) -> bool {
    spec.and_then(|s| s.volumes.as_ref())
        .is_some_and(|volumes| {
            volumes.iter().any(|v| {
                v.persistent_volume_claim
                    .as_ref()
                    .is_some_and(|c| claims.contains(&c.claim_name))
            })
        })
}

fn remembered(object: &impl ResourceExt) -> Option<i32> {
    object
        .annotations()
        .get(REPLICAS)
        .and_then(|v| v.trim().parse().ok())
        .filter(|n: &i32| *n >= 0)
}

/// The workloads in `namespace` at the site that mount one of `claims`.
pub async fn mounting(
    client: &Client,
    site: &str,
    namespace: &str,
    claims: &BTreeSet<String>,
) -> Result<Vec<Workload>, Error> {
    list(client, site, namespace, |spec| mounts(spec, claims)).await
}

/// The workloads in `namespace` whose Pod template `keep` accepts.
async fn list(
    client: &Client,
    site: &str,
    namespace: &str,
    keep: impl Fn(Option<&PodSpec>) -> bool,
) -> Result<Vec<Workload>, Error> {
    let mut out = Vec::new();
    let deployments = Api::<Deployment>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .map_err(Error::api(site))?;
    for d in deployments.items {
        let spec = d.spec.clone().unwrap_or_default();
        if keep(spec.template.spec.as_ref()) {
            let status = d.status.clone().unwrap_or_default();
            out.push(Workload {
                kind: Kind::Deployment,
                name: d.name_any(),
                replicas: spec.replicas.unwrap_or(1),
                remembered: remembered(&d),
                ready: status.ready_replicas.unwrap_or(0),
                observed: status.observed_generation == d.metadata.generation,
            });
        }
    }
    let sets = Api::<StatefulSet>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .map_err(Error::api(site))?;
    for s in sets.items {
        let spec = s.spec.clone().unwrap_or_default();
        if keep(spec.template.spec.as_ref()) {
            let status = s.status.clone().unwrap_or_default();
            out.push(Workload {
                kind: Kind::StatefulSet,
                name: s.name_any(),
                replicas: spec.replicas.unwrap_or(1),
                remembered: remembered(&s),
                ready: status.ready_replicas.unwrap_or(0),
                observed: status.observed_generation == s.metadata.generation,
            });
        }
    }
    out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    Ok(out)
}

async fn patch(
    client: &Client,
    site: &str,
    namespace: &str,
    workload: &Workload,
    body: serde_json::Value,
) -> Result<(), Error> {
    let params = PatchParams::default();
    let body = Patch::Merge(body);
    match workload.kind {
        Kind::Deployment => Api::<Deployment>::namespaced(client.clone(), namespace)
            .patch(&workload.name, &params, &body)
            .await
            .map(drop),
        Kind::StatefulSet => Api::<StatefulSet>::namespaced(client.clone(), namespace)
            .patch(&workload.name, &params, &body)
            .await
            .map(drop),
    }
    .map_err(Error::api(site))
}

/// Scales each workload to zero, remembering its count in [`REPLICAS`] first (one patch, so an
/// interruption cannot lose it). A workload already at zero keeps what it remembered.
pub async fn scale_down(
    client: &Client,
    site: &str,
    namespace: &str,
    workloads: &[Workload],
    steps: &Steps,
) -> Result<(), Error> {
    for w in workloads.iter().filter(|w| w.replicas > 0) {
        patch(
            client,
            site,
            namespace,
            w,
            json!({"metadata": {"annotations": {REPLICAS: w.replicas.to_string()}},
                   "spec": {"replicas": 0}}),
        )
        .await?;
        steps.say(format!(
            "site {site}: {} scaled from {} to 0 (remembered in {REPLICAS})",
            w.label(),
            w.replicas
        ));
    }
    Ok(())
}

/// Waits until no Pod that has not finished mounts one of the claims.
pub async fn wait_unmounted(
    client: &Client,
    site: &str,
    namespace: &str,
    claims: &BTreeSet<String>,
    steps: &Steps,
) -> Result<(), Error> {
    let pods = Api::<Pod>::namespaced(client.clone(), namespace);
    steps.wait_for(format!("no Pod at site {site} mounts the claims"));
    let mut last_said = Instant::now();
    loop {
        let using: Vec<String> = pods
            .list(&ListParams::default())
            .await
            .map_err(Error::api(site))?
            .items
            .into_iter()
            .filter(|p| {
                let finished = matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                );
                !finished && mounts(p.spec.as_ref(), claims)
            })
            .map(|p| p.name_any())
            .collect();
        if using.is_empty() {
            return Ok(());
        }
        if last_said.elapsed() >= STILL_WAITING {
            steps.still(format!(
                "site {site}: still waiting for Pods to stop using the claims: {}",
                using.join(", ")
            ));
            last_said = Instant::now();
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The count each target workload is scaled to: what it remembers itself (the count it runs
/// at on its own site, which may be sized differently), else what the same-named workload at
/// the source remembers or runs (a planned switch), else nothing (left alone, and said). Pure.
pub fn targets(source: &[Workload], target: &[Workload]) -> Vec<(Workload, Option<i32>)> {
    target
        .iter()
        .map(|t| {
            let from_source = || {
                source
                    .iter()
                    .find(|s| s.kind == t.kind && s.name == t.name)
                    .and_then(Workload::count_to_remember)
            };
            (t.clone(), t.remembered.or_else(from_source))
        })
        .collect()
}

/// Scales each workload to its count (and remembers it there too), then waits until each
/// reports that many ready replicas.
pub async fn scale_up(
    client: &Client,
    site: &str,
    namespace: &str,
    targets: &[(Workload, Option<i32>)],
    steps: &Steps,
) -> Result<(), Error> {
    let mut scaled = Vec::new();
    for (w, count) in targets {
        let Some(count) = count else {
            steps.say(format!(
                "site {site}: {} has no remembered count ({REPLICAS}); left at {} replicas: scale it yourself",
                w.label(),
                w.replicas
            ));
            continue;
        };
        if w.replicas != *count {
            patch(
                client,
                site,
                namespace,
                w,
                json!({"metadata": {"annotations": {REPLICAS: count.to_string()}},
                       "spec": {"replicas": count}}),
            )
            .await?;
            steps.say(format!(
                "site {site}: {} scaled from {} to {count}",
                w.label(),
                w.replicas
            ));
        }
        scaled.push((w.clone(), *count));
    }
    if scaled.is_empty() {
        return Ok(());
    }
    let mut last_said = Instant::now();
    loop {
        let now = list(client, site, namespace, |_| true).await?;
        let waiting: Vec<String> = scaled
            .iter()
            .filter(|(w, count)| {
                !now.iter().any(|n| {
                    n.kind == w.kind && n.name == w.name && n.observed && n.ready >= *count
                })
            })
            .map(|(w, count)| format!("{} ({count} ready)", w.label()))
            .collect();
        if waiting.is_empty() {
            steps.say(format!(
                "site {site}: {} ready",
                scaled
                    .iter()
                    .map(|(w, c)| format!("{} ({c})", w.label()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            return Ok(());
        }
        if last_said.elapsed() >= STILL_WAITING {
            steps.still(format!(
                "site {site}: still waiting for {}",
                waiting.join(", ")
            ));
            last_said = Instant::now();
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(name: &str, replicas: i32, remembered: Option<i32>) -> Workload {
        Workload {
            kind: Kind::Deployment,
            name: name.into(),
            replicas,
            remembered,
            ready: 0,
            observed: true,
        }
    }

    #[test]
    fn the_target_gets_its_own_count_else_the_sources_else_nothing() {
        let source = [workload("shop", 0, Some(3)), workload("cache", 2, None)];
        let target = [
            workload("shop", 0, Some(1)),
            workload("cache", 0, None),
            workload("reports", 0, Some(2)),
            workload("audit", 0, None),
        ];
        let counts: Vec<(String, Option<i32>)> = targets(&source, &target)
            .into_iter()
            .map(|(w, c)| (w.name, c))
            .collect();
        assert_eq!(
            counts,
            [
                ("shop".into(), Some(1)),
                ("cache".into(), Some(2)),
                ("reports".into(), Some(2)),
                ("audit".into(), None)
            ]
        );
        assert_eq!(
            targets(&source, &[workload("shop", 0, None)])[0].1,
            Some(3),
            "the source's remembered count when it runs none"
        );
        let statefulset = Workload {
            kind: Kind::StatefulSet,
            ..workload("shop", 0, None)
        };
        assert_eq!(
            targets(&source, &[statefulset])[0].1,
            None,
            "a Deployment's count is not a StatefulSet's"
        );
    }

    #[test]
    fn a_remembered_count_that_is_not_a_count_is_ignored() {
        let with = |value: &str| -> Deployment {
            serde_json::from_value(
                json!({"metadata": {"name": "shop", "annotations": {REPLICAS: value}}}),
            )
            .unwrap()
        };
        assert_eq!(remembered(&with("3")), Some(3));
        assert_eq!(remembered(&with(" 0 ")), Some(0));
        for bad in ["", "-1", "three", "1.5", "99999999999"] {
            assert_eq!(remembered(&with(bad)), None, "{bad:?}");
        }
    }

    #[test]
    fn only_persistent_volume_claim_volumes_of_the_claims_count_as_mounts() {
        let spec: PodSpec = serde_json::from_value(json!({"containers": [],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "db"}},
                        {"name": "tmp", "emptyDir": {}}]}))
        .unwrap();
        let claims = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
        assert!(mounts(Some(&spec), &claims(&["db"])));
        assert!(!mounts(Some(&spec), &claims(&["logs"])));
        assert!(!mounts(None, &claims(&["db"])));
    }
}
