//! No code path writes a secret value to the logs: every call, success and failure, is made
//! with tracing capturing everything at TRACE level (ours, tonic's, h2's), and the captured
//! text must not contain the value.

use std::io::Write;
use std::sync::{Arc, Mutex};

use lifeline_csi_client::fake::{FakeDriver, serve};
use lifeline_csi_client::{ReplicationRequest, Secrets, Target, connect};
use tonic::Code;
use tracing_subscriber::fmt::MakeWriter;

const SECRET_VALUE: &str = "Zm9vYmFyLXNlY3JldC12YWx1ZQ";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn secret_values_never_reach_the_logs() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new("d");
    driver.fail("PromoteVolume", Code::Unauthenticated, "secret rejected");
    let served = serve(driver, &dir.path().join("csi.sock"));
    let client = connect(&served.endpoint()).unwrap();
    let r = ReplicationRequest::new(Target::Volume("vol-1".into()))
        .with_secrets(Secrets::from_iter([("userKey", SECRET_VALUE)]));

    client.enable(&r).await.unwrap();
    client.promote(&r, false).await.unwrap_err();
    client.demote(&r, false).await.unwrap();
    client.resync(&r, true).await.unwrap();
    client.replication_info(&r).await.unwrap();
    client.destination_info(&r).await.unwrap();
    client.disable(&r).await.unwrap();
    // The volume group calls too, one of them failing.
    let none = std::collections::BTreeMap::new();
    let members = ["vol-1".to_owned()];
    let group = client
        .create_volume_group("g", &members, &none, &r.secrets)
        .await
        .unwrap();
    client
        .modify_volume_group_membership(&group.id, &members, &none, &r.secrets)
        .await
        .unwrap();
    client
        .get_volume_group(&group.id, &r.secrets)
        .await
        .unwrap();
    client.list_volume_groups(0, "", &r.secrets).await.unwrap();
    client
        .delete_volume_group(&group.id, &r.secrets)
        .await
        .unwrap();
    client
        .get_volume_group(&group.id, &r.secrets)
        .await
        .unwrap_err();
    // What a careless caller might log: the request and every wire message built from it.
    tracing::info!(request = ?r, secrets = %r.secrets, "about to call");
    tracing::info!(enable = ?r.enable(), promote = ?r.promote(true), info = ?r.info(), "wire");
    tracing::info!(dest = ?r.destination_info(), disable = ?r.disable(), "wire");
    tracing::info!(demote = ?r.demote(true), resync = ?r.resync(true), "wire");
    served.stop().await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("csi_call"),
        "the capture saw the calls:\n{logs}"
    );
    assert!(logs.contains("userKey"), "key names are shown:\n{logs}");
    assert!(
        logs.contains("UNAUTHENTICATED"),
        "failures are logged:\n{logs}"
    );
    assert!(
        !logs.contains(SECRET_VALUE),
        "a secret value leaked:\n{logs}"
    );
}
