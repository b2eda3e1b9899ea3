//! Two replicas of the replication controller with leader election: only the Lease holder
//! writes; when it dies, the standby takes over within the lease duration and carries on.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::{Patch, PatchParams};
use lifeline_api::replication::CurrentState;
use lifeline_e2e::process::{Process, binary, lone_hostpath_driver};
use lifeline_e2e::{TestCluster, fixtures, wait};
use serde_json::json;

const T: Duration = Duration::from_secs(60);
const DRIVER: &str = "hostpath.lifeline.dev";

#[tokio::test]
async fn the_standby_takes_over_when_the_leader_dies() {
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("leader").await.unwrap();
    let client = cluster.client();
    let dir = cluster.dir();
    let volume = format!("vol-{ns}");
    std::fs::create_dir_all(dir.join("root/volumes").join(&volume)).unwrap();
    let (_driver, endpoint) = lone_hostpath_driver(dir, "driver", &dir.join("root"), T)
        .await
        .unwrap();
    let kubeconfig = cluster
        .controller_kubeconfig(lifeline_e2e::rbac::Controller::Replication, &ns, None)
        .await
        .unwrap();
    let controller = |name: &str| {
        Process::spawn(
            dir,
            name,
            &binary(
                "lifeline-replication-controller",
                "lifeline-replication-controller",
            )
            .unwrap(),
            &[
                "--driver-name".into(),
                DRIVER.into(),
                "--csi-address".into(),
                endpoint.clone(),
                "--admin-address".into(),
                "127.0.0.1:0".into(),
                "--watch-namespace".into(),
                ns.clone(),
                "--leader-elect".into(),
                "--leader-election-namespace".into(),
                ns.clone(),
                "--lease-duration".into(),
                "4s".into(),
                "--lease-renew-period".into(),
                "1s".into(),
            ],
            &[("KUBECONFIG".into(), kubeconfig.display().to_string())],
        )
        .unwrap()
    };
    let mut first = controller("controller-1");
    let mut second = controller("controller-2");

    // Exactly one of them holds the Lease.
    let leases = Api::<Lease>::namespaced(client.clone(), &ns);
    let lease = wait::for_object(&leases, "lifeline-replication-controller", T, "held", |l| {
        l.spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_ref())
            .is_some()
    })
    .await
    .unwrap();
    let holder = lease.spec.unwrap().holder_identity.unwrap();
    let pid_of = |p: &Process| p.pid().map(|pid| format!("_{pid}")).unwrap_or_default();
    let (leader, standby) = if holder.ends_with(&pid_of(&first)) {
        (&mut first, &mut second)
    } else {
        (&mut second, &mut first)
    };
    assert!(
        holder.ends_with(&pid_of(leader)),
        "the holder {holder} is one of the two"
    );

    let (_pvcs, vrs) = fixtures::replicated_claim(
        &client,
        &ns,
        DRIVER,
        &volume,
        &format!("c-{ns}"),
        json!({"provisioner": DRIVER}),
        "r",
    )
    .await
    .unwrap();
    wait::for_object(&vrs, "r", T, "Primary", |vr| {
        vr.status
            .as_ref()
            .is_some_and(|s| s.state() == Some(CurrentState::Primary))
    })
    .await
    .unwrap();
    assert!(
        !standby.logs().contains("reconcile failed"),
        "the standby does not reconcile"
    );

    // The leader crashes; the standby takes the Lease and handles the next change.
    leader.kill().await;
    let taken = wait::for_object(
        &leases,
        "lifeline-replication-controller",
        T,
        "taken over",
        |l| {
            l.spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                .is_some_and(|h| h != holder)
        },
    )
    .await
    .unwrap();
    assert!(
        taken
            .spec
            .unwrap()
            .holder_identity
            .unwrap()
            .ends_with(&pid_of(standby))
    );
    vrs.patch(
        "r",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicationState": "secondary"}})),
    )
    .await
    .unwrap();
    wait::for_object(&vrs, "r", T, "Secondary", |vr| {
        vr.status
            .as_ref()
            .is_some_and(|s| s.state() == Some(CurrentState::Secondary))
    })
    .await
    .unwrap();

    // A graceful stop hands the Lease back.
    let status = standby.terminate(T).await.unwrap();
    assert!(status.success(), "{status}");
    let released = leases.get("lifeline-replication-controller").await.unwrap();
    assert_eq!(released.spec.unwrap().holder_identity, None);
}
