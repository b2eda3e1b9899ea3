//! The volume group service against the in-process fake driver: create (idempotent on name),
//! modify the members, get, list page by page, delete; errors classified; secrets sent and
//! never shown in a request's Debug.

use std::collections::BTreeMap;

use lifeline_csi_client::fake::{FakeDriver, Received, serve};
use lifeline_csi_client::{ErrorClass, Secrets, connect};
use tonic::Code;

fn ids(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[tokio::test]
async fn a_group_is_created_once_changed_listed_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new("d");
    driver.set_group_capability(true);
    let served = serve(driver.clone(), &dir.path().join("csi.sock"));
    let client = connect(&served.endpoint()).unwrap();
    let caps = client.capabilities().await.unwrap();
    assert!(caps.volume_group && caps.modify_volume_group);
    assert!(caps.get_volume_group && caps.list_volume_groups);

    let secrets = Secrets::from_iter([("userKey", "hunter2")]);
    let params: BTreeMap<String, String> = [("pool".to_owned(), "rbd".to_owned())].into();
    let group = client
        .create_volume_group("vm-1", &ids(&["boot", "data"]), &params, &secrets)
        .await
        .unwrap();
    assert_eq!(group.volume_ids, ["boot", "data"]);
    // The same name and members: the same group, not a second one.
    let again = client
        .create_volume_group("vm-1", &ids(&["boot", "data"]), &params, &secrets)
        .await
        .unwrap();
    assert_eq!(again.id, group.id);
    assert_eq!(driver.groups().len(), 1);

    let changed = client
        .modify_volume_group_membership(
            &group.id,
            &ids(&["boot", "data", "logs"]),
            &params,
            &secrets,
        )
        .await
        .unwrap();
    assert_eq!(changed.volume_ids, ["boot", "data", "logs"]);
    assert_eq!(
        client.get_volume_group(&group.id, &secrets).await.unwrap(),
        changed
    );

    for name in ["vm-2", "vm-3"] {
        client
            .create_volume_group(name, &ids(&[name]), &params, &secrets)
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_volume_groups(2, &token, &secrets)
            .await
            .unwrap();
        assert!(page.groups.len() <= 2);
        seen.extend(page.groups.into_iter().map(|g| g.id));
        if page.next_token.is_empty() {
            break;
        }
        assert!(seen.len() < 10, "the pages end");
        token = page.next_token;
    }
    assert_eq!(seen.len(), 3);

    client
        .delete_volume_group(&group.id, &secrets)
        .await
        .unwrap();
    // Idempotent, as every csi-addons call must be.
    client
        .delete_volume_group(&group.id, &secrets)
        .await
        .unwrap();
    let gone = client
        .get_volume_group(&group.id, &secrets)
        .await
        .unwrap_err();
    assert_eq!(gone.code, Code::NotFound);

    // Every request carried the secrets and parameters; its Debug shows the keys only.
    let received = driver.received();
    let Received::CreateGroup(create) = &received[0] else {
        panic!("{received:?}")
    };
    assert_eq!(create.secrets["userKey"], "hunter2");
    assert_eq!(create.parameters, params);
    for r in &received {
        let shown = format!("{r:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("userKey"), "{shown}");
    }
    served.stop().await;
}

#[tokio::test]
async fn group_errors_are_classified_as_the_contract_says() {
    let dir = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new("d");
    driver.fail_times("CreateVolumeGroup", Code::Unavailable, "busy", 1);
    driver.fail(
        "ModifyVolumeGroupMembership",
        Code::InvalidArgument,
        "volume v9 unknown",
    );
    let served = serve(driver.clone(), &dir.path().join("csi.sock"));
    let client = connect(&served.endpoint()).unwrap();
    let none = Secrets::default();
    let busy = client
        .create_volume_group("g", &ids(&["v1"]), &BTreeMap::new(), &none)
        .await
        .unwrap_err();
    assert_eq!(busy.class(), ErrorClass::Retry);
    assert!(busy.to_string().contains("CreateVolumeGroup"), "{busy}");
    let group = client
        .create_volume_group("g", &ids(&["v1"]), &BTreeMap::new(), &none)
        .await
        .unwrap();
    // Other members under the same name: refused, not silently changed.
    let clash = client
        .create_volume_group("g", &ids(&["v2"]), &BTreeMap::new(), &none)
        .await
        .unwrap_err();
    assert_eq!(clash.code, Code::AlreadyExists);
    let bad = client
        .modify_volume_group_membership(&group.id, &ids(&["v9"]), &BTreeMap::new(), &none)
        .await
        .unwrap_err();
    assert!(!bad.class().is_retryable(), "{bad}");
    // Without set_group_capability the driver does not advertise groups.
    assert!(!client.capabilities().await.unwrap().volume_group);
    served.stop().await;
}
