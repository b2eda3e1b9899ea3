//! `kubectl lifeline status`: every replicated volume on every site, and a verdict per volume.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client, ResourceExt};
use lifeline_api::replication::{
    DataSourceKind, SchedulingInterval, VolumeGroupReplication, VolumeReplication,
    VolumeReplicationClass,
};
use serde::Serialize;

use crate::error::Error;
use crate::reach::{Reach, cause, classify};
use crate::sites::{SiteSpec, connect_with_address};
use crate::verdict::{Observed, SiteView, Verdict, verdict};

/// One replicated claim: `namespace/claim`, what each site says, the verdict.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeReport {
    pub namespace: String,
    pub claim: String,
    pub verdict: Verdict,
    pub sites: Vec<SiteView>,
}

/// The whole answer; `sites` lists which answered.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub sites: Vec<SiteAnswer>,
    pub volumes: Vec<VolumeReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SiteAnswer {
    pub site: String,
    /// Its API server (from the kubeconfig).
    pub address: String,
    /// `false`: gone — not reachable at the network level ([`crate::reach`]).
    pub reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl VolumeReport {
    /// Whether it is a VolumeGroupReplication's (at any site).
    pub fn is_group(&self) -> bool {
        self.members().is_some()
    }

    fn members(&self) -> Option<Vec<String>> {
        self.sites
            .iter()
            .filter_map(|s| s.volume_replication.as_ref())
            .find_map(|o| o.group_members.clone())
    }

    /// The claims it covers: a group's members (as its sites report them), else the claim.
    pub fn claims(&self) -> Vec<String> {
        self.members().unwrap_or_else(|| vec![self.claim.clone()])
    }
}

impl Report {
    /// Exit code 0 only when every volume is protected or syncing after a switch (and there is
    /// at least one).
    pub fn all_protected(&self) -> bool {
        !self.volumes.is_empty() && self.volumes.iter().all(|v| v.verdict.is_fine())
    }
}

/// What one site's VolumeReplication says, with its class's interval.
pub fn observe(vr: &VolumeReplication, class: Option<&VolumeReplicationClass>) -> Observed {
    let status = vr.status.as_ref();
    let condition = |type_: &str| {
        status
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
            .map(|c| c.status == "True")
    };
    Observed {
        name: vr.name_any(),
        desired: vr.spec.replication_state.as_str().to_owned(),
        current: status
            .and_then(|s| s.state.as_ref())
            .map(|s| s.as_str().to_owned()),
        degraded: condition("Degraded"),
        resyncing: condition("Resyncing"),
        replicating: condition("Replicating"),
        last_completion_time: status
            .and_then(|s| s.last_completion_time.as_ref())
            .map(|t| t.0),
        last_sync_time: status.and_then(|s| s.last_sync_time.as_ref()).map(|t| t.0),
        last_sync_duration: status
            .and_then(|s| s.last_sync_duration.as_deref())
            .and_then(lifeline_api::parse_go_duration),
        interval: class
            .and_then(|c| c.spec.parameters().get("schedulingInterval"))
            .and_then(|i| i.parse::<SchedulingInterval>().ok())
            .map(SchedulingInterval::as_duration),
        ..Observed::default()
    }
}

/// Every VolumeReplication of the site (in `namespace`, or all), keyed by (namespace, claim).
async fn site_volumes(
    site: &SiteSpec,
    client: &Client,
    namespace: Option<&str>,
) -> Result<BTreeMap<(String, String), Observed>, Error> {
    let vrs = lifeline_api::scope::namespaced_or_all::<VolumeReplication>(client, namespace);
    let list = vrs
        .list(&Default::default())
        .await
        .map_err(Error::api(&site.name))?;
    let classes = Api::<VolumeReplicationClass>::all(client.clone());
    let mut known: HashMap<String, Option<VolumeReplicationClass>> = HashMap::new();
    let mut out = BTreeMap::new();
    for vr in list.items {
        let class_name = vr.spec.volume_replication_class.clone();
        if !known.contains_key(&class_name) {
            let class = classes
                .get_opt(&class_name)
                .await
                .map_err(Error::api(&site.name))?;
            known.insert(class_name.clone(), class);
        }
        let key = (
            vr.namespace().unwrap_or_default(),
            vr.spec.data_source.name.clone(),
        );
        let mut observed = observe(&vr, known[&class_name].as_ref());
        if DataSourceKind::of(&vr.spec.data_source) == Some(DataSourceKind::VolumeGroupReplication)
        {
            let group = Api::<VolumeGroupReplication>::namespaced(client.clone(), &key.0)
                .get_opt(&vr.spec.data_source.name)
                .await
                .map_err(Error::api(&site.name))?;
            observed.group_members = Some(
                group
                    .and_then(|g| g.status)
                    .map(|s| {
                        s.persistent_volume_claims_ref_list
                            .into_iter()
                            .map(|r| r.name)
                            .collect()
                    })
                    .unwrap_or_default(),
            );
        }
        out.insert(key, observed);
    }
    // VolSync pairs: the same table, one row per claim; a claim a VolumeReplication covers is
    // judged by it.
    for (key, observed) in crate::volsync::read::site_pairs(client, &site.name, namespace).await? {
        out.entry(key).or_insert(observed);
    }
    Ok(out)
}

/// Asks every site. A site that is gone (not reachable at the network level) is reported,
/// not fatal; one this side cannot ask (kubeconfig, credentials, TLS, RBAC) is an error before
/// anything else is read ([`Error::Local`]).
pub async fn gather(sites: &[SiteSpec], namespace: Option<&str>) -> Result<Report, Error> {
    let mut answers = Vec::new();
    let mut per_site = Vec::new();
    let mut clients = Vec::new();
    for site in sites {
        let (client, address) = connect_with_address(site).await?;
        clients.push(client.clone());
        match site_volumes(site, &client, namespace).await {
            Ok(volumes) => {
                answers.push(SiteAnswer {
                    site: site.name.clone(),
                    address,
                    reachable: true,
                    error: None,
                });
                per_site.push(Some(volumes));
            }
            Err(Error::Api { source, .. }) if classify(&source) == Reach::Gone => {
                answers.push(SiteAnswer {
                    site: site.name.clone(),
                    address,
                    reachable: false,
                    error: Some(cause(&source)),
                });
                per_site.push(None);
            }
            Err(Error::Api { source, .. }) => {
                return Err(Error::Local {
                    site: site.name.clone(),
                    address,
                    cause: cause(&source),
                });
            }
            Err(other) => return Err(other),
        }
    }
    let mut keys: Vec<(String, String)> = per_site
        .iter()
        .flatten()
        .flat_map(|v| v.keys().cloned())
        .collect();
    keys.sort();
    keys.dedup();
    let now = Timestamp::now();
    let mut volumes: Vec<VolumeReport> = keys
        .into_iter()
        .map(|key| {
            let views: Vec<SiteView> = sites
                .iter()
                .zip(&per_site)
                .map(|(site, volumes)| SiteView {
                    site: site.name.clone(),
                    reachable: volumes.is_some(),
                    volume_replication: volumes.as_ref().and_then(|v| v.get(&key)).cloned(),
                    app_replicas: None,
                })
                .collect();
            VolumeReport {
                verdict: Verdict::Protected,
                namespace: key.0,
                claim: key.1,
                sites: views,
            }
        })
        .collect();
    // The application that mounts each volume, per site: how many replicas it asks for.
    for volume in &mut volumes {
        let claims: std::collections::BTreeSet<String> = volume.claims().into_iter().collect();
        for (view, (site, client)) in volume.sites.iter_mut().zip(sites.iter().zip(&clients)) {
            if !view.reachable {
                continue;
            }
            let running =
                crate::workloads::mounting(client, &site.name, &volume.namespace, &claims).await?;
            if !running.is_empty() {
                view.app_replicas = Some(running.iter().map(|w| w.replicas).sum());
            }
        }
        volume.verdict = verdict(&volume.sites, now);
    }
    Ok(Report {
        sites: answers,
        volumes,
    })
}

fn seconds(d: std::time::Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{}ms", d.as_millis())
    } else if s < 10.0 {
        format!("{s:.1}s")
    } else {
        format!("{s:.0}s")
    }
}

/// The table `status` prints: a row per volume and site, the verdict on the volume's first row;
/// `wide` adds the Replicating condition and the time since the last switch. `scope` says where
/// it looked (e.g. "namespace shop"), for when it found nothing.
pub fn table(report: &Report, now: Timestamp, scope: &str, wide: bool) -> String {
    let mut out = String::new();
    for answer in report.sites.iter().filter(|a| !a.reachable) {
        out.push_str(&format!(
            "site {} ({}) is unreachable: {}\n",
            answer.site,
            answer.address,
            answer.error.as_deref().unwrap_or("no answer")
        ));
    }
    if report.volumes.is_empty() {
        let asked: Vec<String> = report
            .sites
            .iter()
            .filter(|a| a.reachable)
            .map(|a| format!("{} ({})", a.site, a.address))
            .collect();
        out.push_str(&format!(
            "no VolumeReplications or VolSync pairs found in {scope} at site(s) {}\n",
            asked.join(", ")
        ));
        return out;
    }
    let mut header = vec![
        "NAMESPACE",
        "CLAIM",
        "SITE",
        "METHOD",
        "DESIRED",
        "CURRENT",
        "DEGRADED",
        "RESYNCING",
        "LAST SYNC",
        "AGE",
        "DURATION",
        "RPO BOUND",
    ];
    if wide {
        header.extend(["REPLICATING", "SINCE SWITCH", "NEXT SYNC", "MOVER"]);
    }
    header.push("VERDICT");
    let blanks = header.len() - 5;
    let mut rows = vec![header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>()];
    for volume in &report.volumes {
        for (i, view) in volume.sites.iter().enumerate() {
            let first = i == 0;
            let dash = || "-".to_owned();
            let flag = |b: Option<bool>| b.map(|b| b.to_string()).unwrap_or_else(dash);
            let row = match (&view.volume_replication, view.reachable) {
                (_, false) => [vec!["unreachable".to_owned()], vec![dash(); blanks]].concat(),
                (None, true) => [vec!["none".to_owned()], vec![dash(); blanks]].concat(),
                (Some(o), true) => {
                    let mut cells = vec![
                        o.method.as_str().to_owned(),
                        o.desired.clone(),
                        o.current.clone().unwrap_or_else(dash),
                        flag(o.degraded),
                        flag(o.resyncing),
                        o.last_sync_time.map(|t| t.to_string()).unwrap_or_else(dash),
                        o.age(now).map(seconds).unwrap_or_else(dash),
                        o.last_sync_duration.map(seconds).unwrap_or_else(dash),
                        o.rpo_bound().map(seconds).unwrap_or_else(dash),
                    ];
                    if wide {
                        cells.push(flag(o.replicating));
                        cells.push(o.since_switch(now).map(seconds).unwrap_or_else(dash));
                        cells.push(o.next_sync_time.map(|t| t.to_string()).unwrap_or_else(dash));
                        cells.push(o.mover_result.clone().unwrap_or_else(dash));
                    }
                    cells
                }
            };
            let mut line = vec![
                if first {
                    volume.namespace.clone()
                } else {
                    String::new()
                },
                if !first {
                    String::new()
                } else if volume.is_group() {
                    format!("group {} [{}]", volume.claim, volume.claims().join(","))
                } else {
                    volume.claim.clone()
                },
                view.site.clone(),
            ];
            line.extend(row);
            line.push(if first {
                volume.verdict.as_str().to_owned()
            } else {
                String::new()
            });
            rows.push(line);
        }
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
