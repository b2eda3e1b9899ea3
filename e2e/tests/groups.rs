//! A two-disk "VM" replicated as one VolumeGroupReplication between two real sites (the
//! controllers and reference drivers as binaries): a member added by its label joins the group
//! and arrives with its data; after a link cut and site A's loss, site B's disks all come from
//! the same sync (a marker written to every disk at once), and B serves them; A comes back,
//! resyncs every disk from B, and the group fails back the planned way.

use std::time::Duration;

use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use lifeline_api::replication::{
    VGR_PVC_FINALIZER, VolumeGroupReplication, VolumeGroupReplicationClass,
};
use lifeline_e2e::sites::{SiteEnv, TwoSites};
use lifeline_e2e::{cli, wait};
use serde_json::json;

const T: Duration = Duration::from_secs(60);

fn obj<K: serde::de::DeserializeOwned>(value: serde_json::Value) -> K {
    serde_json::from_value(value).unwrap()
}

/// Labels a claim into the VM's group.
async fn label(site: &SiteEnv, claim: &str) {
    Api::<k8s_openapi::api::core::v1::PersistentVolumeClaim>::namespaced(site.client(), &site.app)
        .patch(
            claim,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"vm": "db-1"}}})),
        )
        .await
        .unwrap();
}

/// The group class and the VM's VolumeGroupReplication at `role`.
async fn group(site: &SiteEnv, role: &str) {
    let classes = Api::<VolumeGroupReplicationClass>::all(site.client());
    if classes.get_opt("groups").await.unwrap().is_none() {
        classes
            .create(
                &PostParams::default(),
                &obj(json!({
                    "apiVersion": "replication.storage.openshift.io/v1alpha1",
                    "kind": "VolumeGroupReplicationClass",
                    "metadata": {"name": "groups"},
                    "spec": {"provisioner": site.driver_name},
                })),
            )
            .await
            .unwrap();
    }
    vgrs(site)
        .create(
            &PostParams::default(),
            &obj(json!({
                "apiVersion": "replication.storage.openshift.io/v1alpha1",
                "kind": "VolumeGroupReplication",
                "metadata": {"name": "vm"},
                "spec": {"volumeGroupReplicationClassName": "groups",
                         "volumeReplicationClassName": site.class,
                         "replicationState": role, "autoResync": true,
                         "source": {"selector": {"matchLabels": {"vm": "db-1"}}}},
            })),
        )
        .await
        .unwrap();
}

async fn set_role(site: &SiteEnv, role: &str) {
    vgrs(site)
        .patch(
            "vm",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicationState": role}})),
        )
        .await
        .unwrap();
}

fn vgrs(site: &SiteEnv) -> Api<VolumeGroupReplication> {
    Api::namespaced(site.client(), &site.app)
}

/// Waits until the site's group reports `state` for its generation, with `members` claims.
async fn settled(site: &SiteEnv, state: &str, members: usize) -> VolumeGroupReplication {
    let got = wait::for_object(&vgrs(site), "vm", T, &format!("the group {state}"), |g| {
        g.status.as_ref().is_some_and(|s| {
            s.replication.state.as_ref().map(|s| s.as_str()) == Some(state)
                && s.replication.observed_generation == g.metadata.generation
                && s.persistent_volume_claims_ref_list.len() == members
        })
    })
    .await;
    match got {
        Ok(g) => g,
        Err(e) => panic!(
            "{e}\n{:?}\n{}",
            vgrs(site).get("vm").await.unwrap().status,
            site.controller.logs()
        ),
    }
}

/// Writes `generation` to a marker on every disk, each replaced by a rename.
fn write_generation(site: &SiteEnv, volumes: &[&String], generation: u32) {
    for v in volumes {
        let dir = site.volume(v);
        std::fs::write(dir.join("marker.tmp"), generation.to_string()).unwrap();
        std::fs::rename(dir.join("marker.tmp"), dir.join("marker")).unwrap();
    }
}

fn generations(site: &SiteEnv, volumes: &[&String]) -> Vec<Option<String>> {
    volumes
        .iter()
        .map(|v| std::fs::read_to_string(site.volume(v).join("marker")).ok())
        .collect()
}

#[tokio::test]
async fn a_vm_replicates_as_one_group_and_fails_over_from_one_sync() {
    let mut sites = TwoSites::start().await.unwrap();
    let (boot, data) = (
        sites.a.provision("boot").await.unwrap(),
        sites.a.provision("data").await.unwrap(),
    );
    for (claim, volume) in [("boot", &boot), ("data", &data)] {
        sites.b.adopt(claim, volume).await.unwrap();
        label(&sites.a, claim).await;
        label(&sites.b, claim).await;
    }
    write_generation(&sites.a, &[&boot, &data], 1);
    group(&sites.a, "primary").await;
    settled(&sites.a, "Primary", 2).await;
    group(&sites.b, "secondary").await;
    settled(&sites.b, "Secondary", 2).await;
    wait::until(T, "both disks at B from sync 1", || async {
        (generations(&sites.b, &[&boot, &data]) == [Some("1".into()), Some("1".into())])
            .then_some(())
    })
    .await
    .unwrap();
    // The members are protected while in a replicated group.
    let pvcs = Api::<k8s_openapi::api::core::v1::PersistentVolumeClaim>::namespaced(
        sites.a.client(),
        &sites.a.app,
    );
    let boot_claim = pvcs.get("boot").await.unwrap();
    assert!(
        boot_claim
            .metadata
            .finalizers
            .unwrap_or_default()
            .contains(&VGR_PVC_FINALIZER.to_owned())
    );

    // `kubectl lifeline status` lists the group with its members, protected.
    let pair = [cli::site("a", &sites.a), cli::site("b", &sites.b)];
    let status = cli::args(&["status", "-o", "json"], &sites.a.app, &pair);
    let report = wait::until(T, "the group protected", || async {
        let run = cli::run(&status).await;
        (run.code == 0).then_some(run.stdout)
    })
    .await
    .unwrap();
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["volumes"][0]["claim"], "vm");
    assert_eq!(
        report["volumes"][0]["sites"][0]["volumeReplication"]["groupMembers"],
        json!(["boot", "data"])
    );

    // A group that names the VM's content and VolumeReplication as its own (both fields are
    // the user's to set) is refused, and deleting it undoes nothing of the VM's.
    let vm = vgrs(&sites.a).get("vm").await.unwrap();
    let content = vm
        .spec
        .volume_group_replication_content_name
        .clone()
        .unwrap();
    vgrs(&sites.a)
        .create(
            &PostParams::default(),
            &obj(json!({
                "apiVersion": "replication.storage.openshift.io/v1alpha1",
                "kind": "VolumeGroupReplication",
                "metadata": {"name": "intruder"},
                "spec": {"volumeGroupReplicationClassName": "groups",
                         "volumeReplicationClassName": sites.a.class,
                         "volumeGroupReplicationContentName": content,
                         "volumeReplicationName": "vm",
                         "replicationState": "primary",
                         "source": {"selector": {"matchLabels": {"vm": "nothing"}}}},
            })),
        )
        .await
        .unwrap();
    wait::until(T, "the intruder's finalizer", || async {
        let g = vgrs(&sites.a).get("intruder").await.ok()?;
        (!g.finalizers().is_empty()).then_some(())
    })
    .await
    .unwrap();
    vgrs(&sites.a)
        .delete("intruder", &Default::default())
        .await
        .unwrap();
    wait::until(T, "the intruder gone", || async {
        vgrs(&sites.a)
            .get_opt("intruder")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await
    .unwrap();
    let contents =
        Api::<lifeline_api::replication::VolumeGroupReplicationContent>::all(sites.a.client());
    assert!(
        contents.get_opt(&content).await.unwrap().is_some(),
        "the VM's content was deleted"
    );
    let vr = sites.a.vrs().get("vm").await.unwrap();
    assert!(
        vr.metadata.deletion_timestamp.is_none(),
        "the VM's VolumeReplication was deleted"
    );

    // A third disk, labelled: it joins the group at both sites and arrives with its data.
    let logs = sites.a.provision("logs").await.unwrap();
    sites.b.adopt("logs", &logs).await.unwrap();
    write_generation(&sites.a, &[&boot, &data, &logs], 2);
    label(&sites.a, "logs").await;
    label(&sites.b, "logs").await;
    settled(&sites.a, "Primary", 3).await;
    let all = [&boot, &data, &logs];
    wait::until(T, "all three disks at B from sync 2", || async {
        (generations(&sites.b, &all) == vec![Some("2".into()); 3]).then_some(())
    })
    .await
    .unwrap();

    // Writes keep landing on every disk at once while the link is cut and A is lost.
    lifeline_e2e::process::admin_post(&sites.a.admin, "/link/sever")
        .await
        .unwrap();
    write_generation(&sites.a, &all, 3);
    sites.a.controller.kill().await;
    sites.a.driver.kill().await;

    // Failover of the group at B: every disk from the same (last) sync.
    set_role(&sites.b, "primary").await;
    settled(&sites.b, "Primary", 3).await;
    assert!(sites.b.controller.logs().contains("promoting with force"));
    let at_b = generations(&sites.b, &all);
    assert_eq!(
        at_b,
        vec![Some("2".into()); 3],
        "every disk at B from the same sync; generation 3 never left A"
    );

    write_generation(&sites.b, &all, 4);

    // A comes back (still primary) and `kubectl lifeline failback` takes the group home: A
    // demoted (it resyncs every disk from B), then B demoted (its final sync), A promoted
    // without force.
    sites.a.driver.restart().await.unwrap();
    sites.a.controller.restart().await.unwrap();
    let forced = sites
        .a
        .controller
        .logs()
        .matches("promoting with force")
        .count();
    let back = cli::run(&cli::args(
        &["failback", "--to", "a", "--from", "b", "--yes"],
        &sites.a.app,
        &pair,
    ))
    .await;
    assert_eq!(back.code, 0, "{back:?}");
    settled(&sites.a, "Primary", 3).await;
    assert_eq!(
        vgrs(&sites.b)
            .get("vm")
            .await
            .unwrap()
            .spec
            .replication_state
            .as_str(),
        "secondary"
    );
    assert_eq!(
        sites
            .a
            .controller
            .logs()
            .matches("promoting with force")
            .count(),
        forced,
        "a planned switch of the group needs no force"
    );
    assert_eq!(
        generations(&sites.a, &all),
        vec![Some("4".into()); 3],
        "B's writes came back with the resync and its final sync"
    );
    cli::within_documented_rbac(&sites.a.cluster).await;
    cli::within_documented_rbac(&sites.b.cluster).await;

    sites
        .a
        .check_controller_rbac(lifeline_replication_controller::rbac::RULES)
        .await
        .unwrap();
    sites
        .b
        .check_controller_rbac(lifeline_replication_controller::rbac::RULES)
        .await
        .unwrap();
}
