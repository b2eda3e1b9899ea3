//! Two-site DR with the real controllers and drivers, data checked byte for byte.

use lifeline_api::replication::CurrentState;
use lifeline_e2e::sites::{TwoSites, tree};

/// Planned migration and failback: demote A, promote B (no force), B holds exactly A's data;
/// write on B; and back.
#[tokio::test]
async fn planned_migration_and_failback() {
    let sites = TwoSites::start().await.unwrap();
    let (a, b) = (&sites.a, &sites.b);
    let volume = a.provision("db").await.unwrap();
    let data = a.volume(&volume);
    std::fs::create_dir_all(data.join("tables")).unwrap();
    std::fs::write(data.join("tables/orders.bin"), vec![1u8; 1 << 20]).unwrap();
    b.adopt("db", &volume).await.unwrap();

    a.replicate("db", "primary").await.unwrap();
    b.replicate("db", "secondary").await.unwrap();
    a.wait_state("db", CurrentState::Primary, true)
        .await
        .unwrap();
    b.wait_state("db", CurrentState::Secondary, false)
        .await
        .unwrap();
    sites.wait_in_sync(a, b, &volume).await.unwrap();

    // More writes on A reach B with the next sync.
    std::fs::write(data.join("tables/customers.bin"), b"alice, bob").unwrap();
    std::fs::remove_file(data.join("tables/orders.bin")).unwrap();
    sites.wait_in_sync(a, b, &volume).await.unwrap();

    // Migrate: demote A (it ships its final state), then promote B without force.
    a.replicate("db", "secondary").await.unwrap();
    a.wait_state("db", CurrentState::Secondary, false)
        .await
        .unwrap();
    b.replicate("db", "primary").await.unwrap();
    let promoted = b
        .wait_state("db", CurrentState::Primary, true)
        .await
        .unwrap();
    let completed = promoted
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Completed")
        .unwrap();
    assert_eq!(
        (completed.status.as_str(), completed.reason.as_str()),
        ("True", "Promoted")
    );
    assert!(
        !b.controller.logs().contains("promoting with force"),
        "a planned migration needs no force"
    );
    assert_eq!(
        tree(&b.volume(&volume)),
        tree(&a.volume(&volume)),
        "B holds exactly A's data"
    );
    assert_eq!(
        std::fs::read(b.volume(&volume).join("tables/customers.bin")).unwrap(),
        b"alice, bob"
    );

    // The application now writes on B; A follows.
    std::fs::write(
        b.volume(&volume).join("tables/after-migration.txt"),
        "written on B",
    )
    .unwrap();
    sites.wait_in_sync(b, a, &volume).await.unwrap();

    // Fail back the same way.
    b.replicate("db", "secondary").await.unwrap();
    b.wait_state("db", CurrentState::Secondary, false)
        .await
        .unwrap();
    a.replicate("db", "primary").await.unwrap();
    a.wait_state("db", CurrentState::Primary, true)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(a.volume(&volume).join("tables/after-migration.txt")).unwrap(),
        "written on B"
    );
    std::fs::write(a.volume(&volume).join("tables/back-home.txt"), "A again").unwrap();
    sites.wait_in_sync(a, b, &volume).await.unwrap();
}
