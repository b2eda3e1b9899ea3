//! Which claims a VolumeGroupReplication holds: its label selector as the API server's
//! `labelSelector` query and as a match on one claim's labels, and the checks each member must
//! pass. Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;
use lifeline_api::replication::{PVC_OWNER_ANNOTATION, VGR_OWNER_ANNOTATION};

use super::GroupInvalid;

/// One member of a group: the claim, its volume and the driver's volume id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub claim: String,
    pub volume: String,
    pub handle: String,
}

fn values_ok(key: &str, operator: &str, values: &[String], want: bool) -> Result<(), GroupInvalid> {
    if values.is_empty() == want {
        return Err(GroupInvalid::Selector(format!(
            "matchExpressions key {key:?}: operator {operator} {}",
            if want {
                "needs values"
            } else {
                "takes no values"
            }
        )));
    }
    Ok(())
}

/// The selector in the API server's `labelSelector` syntax; an empty selector selects every
/// claim of the namespace, as in Kubernetes.
pub fn query(selector: &LabelSelector) -> Result<String, GroupInvalid> {
    let mut parts = Vec::new();
    for (key, value) in selector.match_labels.iter().flatten() {
        parts.push(format!("{key}={value}"));
    }
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => {
                values_ok(&e.key, "In", &values, true)?;
                parts.push(format!("{} in ({})", e.key, values.join(",")));
            }
            "NotIn" => {
                values_ok(&e.key, "NotIn", &values, true)?;
                parts.push(format!("{} notin ({})", e.key, values.join(",")));
            }
            "Exists" => {
                values_ok(&e.key, "Exists", &values, false)?;
                parts.push(e.key.clone());
            }
            "DoesNotExist" => {
                values_ok(&e.key, "DoesNotExist", &values, false)?;
                parts.push(format!("!{}", e.key));
            }
            other => {
                return Err(GroupInvalid::Selector(format!(
                    "matchExpressions key {:?}: unknown operator {other:?} (In, NotIn, Exists, DoesNotExist)",
                    e.key
                )));
            }
        }
    }
    Ok(parts.join(","))
}

/// Whether a claim with `labels` is selected (for mapping claim events to groups).
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        }
    });
    labels_ok && expressions_ok
}

/// The members: every selected claim must be Bound to a CSI volume of `provisioner`, and not
/// replicated by a VolumeReplication of its own or another group. Sorted by claim name.
pub fn members(
    group: &str,
    claims: &[PersistentVolumeClaim],
    volumes: &BTreeMap<String, PersistentVolume>,
    provisioner: &str,
) -> Result<Vec<Member>, GroupInvalid> {
    let mut out = Vec::new();
    for claim in claims {
        let name = claim.name_any();
        let annotations = claim.annotations();
        if let Some(vr) = annotations.get(PVC_OWNER_ANNOTATION) {
            return Err(GroupInvalid::Member {
                claim: name,
                problem: format!(
                    "it is replicated on its own by VolumeReplication {vr}; delete that first"
                ),
            });
        }
        if let Some(other) = annotations.get(VGR_OWNER_ANNOTATION)
            && other != group
        {
            return Err(GroupInvalid::Member {
                claim: name,
                problem: format!(
                    "it is in VolumeGroupReplication {other}; a claim is in one group only"
                ),
            });
        }
        let phase = claim.status.as_ref().and_then(|s| s.phase.as_deref());
        let volume = claim.spec.as_ref().and_then(|s| s.volume_name.clone());
        let (Some("Bound"), Some(volume)) = (phase, volume) else {
            return Err(GroupInvalid::Member {
                claim: name,
                problem: "it is not Bound yet".into(),
            });
        };
        let csi = volumes
            .get(&volume)
            .and_then(|pv| pv.spec.as_ref())
            .and_then(|s| s.csi.as_ref());
        let Some(csi) = csi else {
            return Err(GroupInvalid::Member {
                claim: name,
                problem: format!("its volume {volume} is missing or not a CSI volume"),
            });
        };
        if csi.driver != provisioner {
            return Err(GroupInvalid::Member {
                claim: name,
                problem: format!(
                    "its volume {volume} is of driver {:?}, the class's provisioner is {provisioner:?}",
                    csi.driver
                ),
            });
        }
        out.push(Member {
            claim: name,
            volume,
            handle: csi.volume_handle.clone(),
        });
    }
    if out.is_empty() {
        return Err(GroupInvalid::NoMembers);
    }
    out.sort_by(|a, b| a.claim.cmp(&b.claim));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(yaml: &str) -> LabelSelector {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_selector_becomes_the_servers_query_and_matches_the_same_claims() {
        let s = selector(
            "matchLabels: {vm: a}\nmatchExpressions: [{key: tier, operator: In, values: [db, wal]}, {key: scratch, operator: DoesNotExist}]",
        );
        assert_eq!(query(&s).unwrap(), "vm=a,tier in (db,wal),!scratch");
        assert!(matches(&s, &labels(&[("vm", "a"), ("tier", "db")])));
        assert!(!matches(&s, &labels(&[("vm", "a"), ("tier", "logs")])));
        assert!(!matches(
            &s,
            &labels(&[("vm", "a"), ("tier", "db"), ("scratch", "y")])
        ));
        assert!(!matches(&s, &labels(&[("tier", "db")])));
        let any = selector("{}");
        assert_eq!(query(&any).unwrap(), "");
        assert!(matches(&any, &labels(&[])));
    }

    #[test]
    fn a_malformed_selector_says_what_to_fix() {
        for (yaml, says) in [
            ("matchExpressions: [{key: a, operator: In}]", "needs values"),
            (
                "matchExpressions: [{key: a, operator: Exists, values: [x]}]",
                "takes no values",
            ),
            (
                "matchExpressions: [{key: a, operator: Equals, values: [x]}]",
                "unknown operator",
            ),
        ] {
            let e = query(&selector(yaml)).unwrap_err().to_string();
            assert!(e.contains(says), "{yaml}: {e}");
        }
    }

    fn claim(yaml: &str) -> PersistentVolumeClaim {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn every_member_must_be_a_bound_csi_claim_of_the_driver_and_no_one_elses() {
        let volumes: BTreeMap<String, PersistentVolume> = [
            ("pv-b", "hostpath.lifeline.dev", "vol-b"),
            ("pv-d", "hostpath.lifeline.dev", "vol-d"),
            ("pv-x", "other.csi", "vol-x"),
        ]
        .into_iter()
        .map(|(name, driver, handle)| {
            (
                name.to_owned(),
                serde_saphyr::from_str(&format!(
                    "metadata: {{name: {name}}}\nspec: {{csi: {{driver: {driver}, volumeHandle: {handle}}}}}"
                ))
                .unwrap(),
            )
        })
        .collect();
        let bound = |name: &str, pv: &str| {
            claim(&format!(
                "metadata: {{name: {name}}}\nspec: {{volumeName: {pv}}}\nstatus: {{phase: Bound}}"
            ))
        };
        let got = members(
            "vm",
            &[bound("data", "pv-d"), bound("boot", "pv-b")],
            &volumes,
            "hostpath.lifeline.dev",
        )
        .unwrap();
        assert_eq!(
            got.iter()
                .map(|m| (m.claim.as_str(), m.handle.as_str()))
                .collect::<Vec<_>>(),
            [("boot", "vol-b"), ("data", "vol-d")]
        );
        let cases = [
            (
                claim("metadata: {name: p}\nstatus: {phase: Pending}"),
                "not Bound",
            ),
            (bound("x", "pv-x"), "other.csi"),
            (bound("m", "pv-missing"), "missing or not a CSI volume"),
            (
                claim(
                    "metadata: {name: o, annotations: {replication.storage.openshift.io/volume-replication-name: o-vr}}\nspec: {volumeName: pv-b}\nstatus: {phase: Bound}",
                ),
                "VolumeReplication o-vr",
            ),
            (
                claim(
                    "metadata: {name: g, annotations: {replication.storage.openshift.io/volume-group-replication-name: other}}\nspec: {volumeName: pv-b}\nstatus: {phase: Bound}",
                ),
                "one group only",
            ),
        ];
        for (c, says) in cases {
            let e = members("vm", &[c], &volumes, "hostpath.lifeline.dev")
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{e}");
        }
        assert_eq!(
            members("vm", &[], &volumes, "hostpath.lifeline.dev"),
            Err(GroupInvalid::NoMembers)
        );
    }
}
