//! The process helpers on a real binary: announced addresses, the driver's fault endpoint,
//! crash (kill), restart, and a graceful SIGTERM.

use std::time::Duration;

use lifeline_e2e::process::{Process, admin_post, binary};

const T: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_driver_process_can_be_severed_killed_restarted_and_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("d.sock");
    let mut driver = Process::spawn(
        dir.path(),
        "driver",
        &binary("lifeline-hostpath-driver", "lifeline-hostpath-driver").unwrap(),
        &[
            "--endpoint".into(),
            format!("unix://{}", socket.display()),
            "--root".into(),
            dir.path().join("root").display().to_string(),
            "--admin-listen".into(),
            "127.0.0.1:0".into(),
        ],
        &[],
    )
    .unwrap();
    let admin = driver.wait_for_line("admin-listen", T).await.unwrap();
    admin_post(&admin, "/link/sever").await.unwrap();
    admin_post(&admin, "/link/restore").await.unwrap();
    assert!(admin_post(&admin, "/no-such-endpoint").await.is_err());

    driver.kill().await;
    assert!(!driver.is_running());
    driver.restart().await.unwrap();
    // The restarted process announces itself again, in the same log.
    lifeline_e2e::wait::until(T, "a second announcement", || async {
        (driver.logs().matches("admin-listen").count() >= 2).then_some(())
    })
    .await
    .unwrap();
    let status = driver.terminate(T).await.unwrap();
    assert!(status.success(), "SIGTERM is a clean stop: {status}");
}
