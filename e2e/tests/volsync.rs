//! The real VolSync (v0.14.0, with its own CRDs) on the real API server. A field of another type
//! than VolSync's schema — the `retain.last` integer the data mover once wrote, which a stand-in
//! that did what the data mover expected accepted for months — is refused by the API server
//! before VolSync or any mover sees it, so a scenario making one fails as it would on a cluster;
//! the string VolSync declares is taken, and the real controller acts on the object.

use std::time::Duration;

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::{Api, Client};
use lifeline_e2e::{TestCluster, wait};
use serde_json::json;

const T: Duration = Duration::from_secs(60);

fn sources(client: Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("volsync.backube", "v1alpha1", "ReplicationSource");
    Api::namespaced_with(client, ns, &ApiResource::from_gvk(&gvk))
}

fn source(name: &str, last: serde_json::Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationSource",
        "metadata": {"name": name},
        "spec": {"sourcePVC": "data", "trigger": {"manual": "once"},
                 "restic": {"repository": "restic", "copyMethod": "Direct", "retain": {"last": last}}},
    }))
    .unwrap()
}

#[tokio::test]
async fn a_field_of_volsyncs_schema_in_another_type_is_refused_and_the_right_one_runs() {
    let cluster = TestCluster::start().await.unwrap();
    let ns = cluster.namespace("volsync").await.unwrap();
    let api = sources(cluster.client(), &ns);

    let refused = api
        .create(&PostParams::default(), &source("integer", json!(3)))
        .await
        .expect_err("an integer where VolSync's CRD has a string");
    let kube::Error::Api(status) = refused else {
        panic!("not the API server's refusal: {refused:?}");
    };
    assert_eq!(status.code, 422, "{status:?}");
    assert!(
        status.message.contains("spec.restic.retain.last"),
        "names the field: {}",
        status.message
    );

    api.create(&PostParams::default(), &source("string", json!("3")))
        .await
        .unwrap();
    // VolSync itself takes it: its Synchronizing condition appears (the claim named does not
    // exist, so it waits there).
    wait::for_object(
        &api,
        "string",
        T,
        "VolSync's Synchronizing condition",
        |o| {
            o.data["status"]["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Synchronizing"))
        },
    )
    .await
    .unwrap();
}
