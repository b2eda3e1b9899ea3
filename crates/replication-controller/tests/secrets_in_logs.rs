//! No secret value reaches the logs, at any level, through any path the controller takes with
//! it: the Secret read, every RPC that carries it, failures and retries.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use support::{Harness, SECRET_VALUE};
use tonic::Code;

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

#[tokio::test]
async fn trace_logs_of_every_path_hold_no_secret_value() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();

    let h = Harness::new().await;
    h.seed("1m");
    h.put_vr("primary", "");
    h.driver
        .fail_times("PromoteVolume", Code::FailedPrecondition, "peer gone", 1);
    h.reconcile().await.unwrap();
    h.driver.fail(
        "GetVolumeReplicationInfo",
        Code::Unauthenticated,
        "rejected credentials",
    );
    h.ctx.forget(&h.vr().unwrap().metadata.uid.unwrap());
    let _ = h.reconcile().await;
    h.put_vr("secondary", "  autoResync: true");
    h.driver.fail("DemoteVolume", Code::InvalidArgument, "bad");
    if let Err(error) = h.reconcile().await {
        h.error_policy(&error);
    }

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("csi_call"),
        "the capture saw the calls:\n{logs}"
    );
    assert!(
        !logs.contains(SECRET_VALUE),
        "secret value in logs:\n{logs}"
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(SECRET_VALUE);
    assert!(!logs.contains(&encoded), "base64 secret value in logs");
}
