//! Failures: every gRPC code maps to the reaction the contract asks for; a stuck driver hits
//! the deadline; a restarted driver is reached again on the same socket.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lifeline_csi_client::fake::{FakeDriver, serve};
use lifeline_csi_client::{
    CallObserver, ErrorClass, Method, ReplicationRequest, Target, code_name, connect,
};
use tonic::Code;

#[test]
fn every_code_maps_to_its_class() {
    let table = [
        (Code::Aborted, ErrorClass::Retry),
        (Code::Unavailable, ErrorClass::Retry),
        (Code::Unknown, ErrorClass::Retry),
        (Code::DeadlineExceeded, ErrorClass::Retry),
        (Code::InvalidArgument, ErrorClass::Permanent),
        (Code::Unauthenticated, ErrorClass::Permanent),
        (Code::NotFound, ErrorClass::NotFound),
        (Code::Unimplemented, ErrorClass::NotImplemented),
        (Code::FailedPrecondition, ErrorClass::FailedPrecondition),
    ];
    for (code, class) in table {
        assert_eq!(ErrorClass::of(code), class, "{code:?}");
    }
    assert!(ErrorClass::Retry.is_retryable());
    assert!(!ErrorClass::NotImplemented.is_retryable());
    assert!(!ErrorClass::Permanent.is_retryable());
}

#[tokio::test]
async fn driver_statuses_arrive_classified_with_code_and_message() {
    let dir = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new("d");
    let served = serve(driver.clone(), &dir.path().join("csi.sock"));
    let client = connect(&served.endpoint()).unwrap();
    let r = ReplicationRequest::new(Target::Volume("v".into()));

    for (code, class) in [
        (Code::FailedPrecondition, ErrorClass::FailedPrecondition),
        (Code::Aborted, ErrorClass::Retry),
        (Code::InvalidArgument, ErrorClass::Permanent),
        (Code::Unauthenticated, ErrorClass::Permanent),
        (Code::NotFound, ErrorClass::NotFound),
        (Code::Unimplemented, ErrorClass::NotImplemented),
        (Code::Unknown, ErrorClass::Retry),
    ] {
        driver.fail("PromoteVolume", code, "peer still primary");
        let err = client.promote(&r, false).await.unwrap_err();
        assert_eq!(err.code, code);
        assert_eq!(err.class(), class, "{code:?}");
        assert_eq!(err.method, Method::PromoteVolume);
        assert_eq!(err.message, "peer still primary");
        assert_eq!(
            err.to_string(),
            format!(
                "PromoteVolume failed with {}: peer still primary",
                code_name(code)
            )
        );
    }
    served.stop().await;
}

#[tokio::test]
async fn an_absent_driver_is_unavailable_and_retryable() {
    let dir = tempfile::tempdir().unwrap();
    let client = connect(&format!("unix://{}/none.sock", dir.path().display())).unwrap();
    let err = client.probe().await.unwrap_err();
    assert_eq!(err.code, Code::Unavailable, "{err}");
    assert_eq!(err.class(), ErrorClass::Retry);
    assert!(err.message.contains("No such file"), "cause is kept: {err}");
}

#[tokio::test]
async fn a_stuck_driver_hits_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new("d");
    driver.stall();
    let served = serve(driver, &dir.path().join("csi.sock"));
    let client = connect(&served.endpoint())
        .unwrap()
        .with_timeout(Duration::from_millis(200));
    let err = client
        .enable(&ReplicationRequest::new(Target::Volume("v".into())))
        .await
        .unwrap_err();
    assert_eq!(err.code, Code::DeadlineExceeded, "{err}");
    assert_eq!(err.class(), ErrorClass::Retry);
    served.stop().await;
}

#[tokio::test]
async fn the_client_reconnects_after_the_driver_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("csi.sock");
    let first = serve(FakeDriver::new("first"), &path);
    let client = connect(&first.endpoint()).unwrap();
    assert_eq!(client.identity().await.unwrap().name, "first");

    first.stop().await;
    let err = client.identity().await.unwrap_err();
    assert_eq!(
        err.class(),
        ErrorClass::Retry,
        "a driver that is down: {err}"
    );

    let second = serve(FakeDriver::new("second"), &path);
    assert_eq!(client.identity().await.unwrap().name, "second");
    second.stop().await;
}

#[derive(Default)]
struct Recorder(Mutex<Vec<(Method, &'static str)>>);

impl CallObserver for Recorder {
    fn observe(&self, method: Method, outcome: &'static str, _latency: Duration) {
        self.0.lock().unwrap().push((method, outcome));
    }
}

#[tokio::test]
async fn the_observer_sees_every_call_and_its_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new("d");
    driver.fail("DemoteVolume", Code::Aborted, "busy");
    let served = serve(driver, &dir.path().join("csi.sock"));
    let recorder = Arc::new(Recorder::default());
    let client = connect(&served.endpoint())
        .unwrap()
        .with_observer(recorder.clone());
    let r = ReplicationRequest::new(Target::Volume("v".into()));
    client.enable(&r).await.unwrap();
    client.demote(&r, false).await.unwrap_err();
    assert_eq!(
        *recorder.0.lock().unwrap(),
        [
            (Method::EnableVolumeReplication, "OK"),
            (Method::DemoteVolume, "ABORTED")
        ]
    );
    served.stop().await;
}

/// A controller's leadership fence: with no budget no call is made at all (the driver sees
/// nothing); with a little left, the call's deadline is cut to it, so a stuck driver cannot
/// keep a call running past the Lease.
#[tokio::test]
async fn a_budget_refuses_calls_or_cuts_their_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new("d");
    let served = serve(driver.clone(), &dir.path().join("csi.sock"));
    let left: Arc<Mutex<Option<Duration>>> = Arc::new(Mutex::new(None));
    let budget = Arc::clone(&left);
    let client = connect(&served.endpoint())
        .unwrap()
        .with_timeout(Duration::from_secs(3600))
        .with_budget(Arc::new(move || *budget.lock().unwrap()));
    let r = ReplicationRequest::new(Target::Volume("v".into()));

    let err = client.promote(&r, false).await.unwrap_err();
    assert_eq!(err.code, Code::Unavailable);
    assert!(err.message.contains("Lease"), "{err}");
    assert!(
        driver.received().is_empty(),
        "a fenced call reached the driver"
    );

    *left.lock().unwrap() = Some(Duration::from_millis(200));
    driver.stall();
    let err = client.promote(&r, false).await.unwrap_err();
    assert_eq!(err.code, Code::DeadlineExceeded, "{err}");
}

#[test]
fn refused_credentials_are_told_from_other_refusals() {
    use lifeline_csi_client::{CsiError, Method};
    use tonic::Code;
    let error = |code| CsiError {
        method: Method::EnableVolumeReplication,
        code,
        message: String::new(),
    };
    assert!(error(Code::Unauthenticated).refused_credentials());
    assert!(error(Code::PermissionDenied).refused_credentials());
    assert!(!error(Code::InvalidArgument).refused_credentials());
    assert!(!error(Code::Unavailable).refused_credentials());
}
