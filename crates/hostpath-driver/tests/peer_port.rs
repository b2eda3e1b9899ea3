//! The peer port under attack and under a mistaken operator: names that leave the driver's
//! root, strangers without the sites' certificate, a forced promotion while the other site is
//! primary, a demotion whose final sync cannot ship. Two real driver instances on loopback.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lifeline_csi_client::{CsiClient, ReplicationRequest, Target, connect};
use lifeline_hostpath_driver::{Config, Running, peer_certs, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::Code;

const VOLUME: &str = "pvc-0001";

fn free_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn req() -> ReplicationRequest {
    ReplicationRequest::new(Target::Volume(VOLUME.into()))
        .with_parameters([("schedulingInterval".to_owned(), "1h".to_owned())].into())
}

struct Pair {
    dir: tempfile::TempDir,
    a: Running,
    b: Running,
    a_listen: String,
    ca: CsiClient,
    cb: CsiClient,
}

impl Pair {
    /// Sites A and B; with `tls`, over mutual TLS with certificates of one CA.
    async fn new(tls: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        if tls {
            peer_certs::write(&dir.path().join("certs"), &["a", "b"]).unwrap();
        }
        let (pa, pb) = (free_port(), free_port());
        let config = |name: &str, listen: &str, peer: &str| Config {
            peer_listen: listen.to_owned(),
            peer: Some(peer.to_owned()),
            peer_tls_dir: tls.then(|| dir.path().join("certs").join(name)),
            ..Config::lone(
                "hostpath.lifeline.dev",
                format!(
                    "unix://{}",
                    dir.path().join(format!("{name}.sock")).display()
                )
                .parse()
                .unwrap(),
                dir.path().join(name),
            )
        };
        let a = start(config("a", &pa, &pb)).await.unwrap();
        let b = start(config("b", &pb, &pa)).await.unwrap();
        let ca = connect(&format!("unix://{}", dir.path().join("a.sock").display())).unwrap();
        let cb = connect(&format!("unix://{}", dir.path().join("b.sock").display())).unwrap();
        fs::create_dir_all(a.site.store.volume_dir(VOLUME)).unwrap();
        fs::write(
            a.site.store.volume_dir(VOLUME).join("data"),
            b"site A's data",
        )
        .unwrap();
        Self {
            dir,
            a,
            b,
            a_listen: pa,
            ca,
            cb,
        }
    }

    /// A primary on A that has synced once to B, and B enabled as its secondary.
    async fn primary_on_a(&self) {
        self.ca.enable(&req()).await.unwrap();
        self.ca.promote(&req(), false).await.unwrap();
        self.a.site.sync_now(VOLUME).await.unwrap();
        self.cb.enable(&req()).await.unwrap();
    }

    fn root(&self, site: &str) -> PathBuf {
        self.dir.path().join(site)
    }
}

/// Sends one frame (length-prefixed JSON) on a raw connection and reads whatever comes back
/// until the peer closes.
async fn raw_frame(address: &str, json: &str) -> Vec<u8> {
    let mut tcp = TcpStream::connect(address).await.unwrap();
    let _ = tcp.write_all(&(json.len() as u32).to_be_bytes()).await;
    let _ = tcp.write_all(json.as_bytes()).await;
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut reply)).await;
    reply
}

fn tree_of(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn dot_dot_names_on_the_raw_peer_port_touch_nothing() {
    let p = Pair::new(false).await;
    p.primary_on_a().await;
    let before = tree_of(p.dir.path());
    let probes = [
        r#"{"Push":{"volume":"..","entries":[],"taken_ms":null}}"#,
        r#"{"Push":{"volume":".","entries":[],"taken_ms":null}}"#,
        r#"{"Push":{"volume":"pvc-x","entries":[{"path":"../../escape","dir":false,"size":1,"mtime_ns":0,"mode":420}],"taken_ms":null}}"#,
        r#"{"PushGroup":{"group":"..","members":[],"taken_ms":null}}"#,
        r#"{"PushGroup":{"group":"vg-g","members":[{"volume":"../state","entries":[]}],"taken_ms":null}}"#,
        r#"{"Pull":{"volume":"../volumes"}}"#,
        r#"{"RoleQuery":{"volume":"../../etc"}}"#,
        r#"{"Push":{"volume":"pvc-x","entries":[{"path":"f","dir":false,"size":1,"mtime_ns":170141183460469231731687303715884105727,"mode":420}],"taken_ms":null}}"#,
    ];
    for probe in probes {
        let reply = raw_frame(&p.a_listen, probe).await;
        assert!(reply.is_empty(), "{probe} got a reply: {reply:?}");
    }
    assert_eq!(tree_of(p.dir.path()), before, "a probe changed the disk");
    assert!(
        p.root("a")
            .join("volumes")
            .join(VOLUME)
            .join("data")
            .exists()
    );
    // The port still serves the real peer.
    p.a.site.sync_now(VOLUME).await.unwrap();
}

#[tokio::test]
async fn over_mutual_tls_the_sites_sync_and_strangers_are_refused_before_any_message() {
    let p = Pair::new(true).await;
    p.primary_on_a().await;
    assert_eq!(
        fs::read(p.b.site.store.volume_dir(VOLUME).join("data")).unwrap(),
        b"site A's data",
        "the sync went over TLS"
    );
    let before = tree_of(p.dir.path());

    // Plain TCP speaking the protocol: the handshake fails, nothing is read.
    let reply = raw_frame(&p.a_listen, r#"{"Pull":{"volume":"pvc-0001"}}"#).await;
    assert!(
        !String::from_utf8_lossy(&reply).contains("data"),
        "a plain-TCP client was served"
    );

    // A client with a certificate of another CA is refused in the handshake.
    let elsewhere = tempfile::tempdir().unwrap();
    let other = elsewhere.path().join("other");
    peer_certs::write(&other, &["mallory"]).unwrap();
    let mallory =
        lifeline_hostpath_driver::peer_link::PeerLink::tls(&other.join("mallory")).unwrap();
    let refused = mallory.connect(&p.a_listen).await;
    assert!(refused.is_err(), "a certificate of another CA was accepted");

    // A site without certificates cannot talk to a TLS site either.
    let plain = lifeline_hostpath_driver::peer_link::PeerLink::plain("127.0.0.1:0").unwrap();
    let mut stream = plain.connect(&p.a_listen).await.unwrap();
    let sent = lifeline_hostpath_driver::peer::send(
        &mut stream,
        &lifeline_hostpath_driver::peer::Msg::Pull {
            volume: VOLUME.into(),
        },
    )
    .await;
    let answer = match sent {
        Ok(()) => lifeline_hostpath_driver::peer::recv(&mut stream)
            .await
            .is_ok(),
        Err(_) => false,
    };
    assert!(!answer, "a plain peer got an answer from a TLS site");
    assert_eq!(tree_of(p.dir.path()), before);
}

#[tokio::test]
async fn a_driver_refuses_to_start_with_plain_tcp_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let started = start(Config {
        peer_listen: "0.0.0.0:0".into(),
        ..Config::lone(
            "hostpath.lifeline.dev",
            format!("unix://{}", dir.path().join("s.sock").display())
                .parse()
                .unwrap(),
            dir.path().join("root"),
        )
    })
    .await;
    let Err(e) = started else {
        panic!("started with plain TCP on 0.0.0.0");
    };
    assert!(e.to_string().contains("--peer-tls-dir"), "{e}");
}

#[tokio::test]
async fn a_forced_promotion_is_refused_while_the_peer_answers_as_primary() {
    let p = Pair::new(false).await;
    p.primary_on_a().await;
    for force in [false, true] {
        let err = p.cb.promote(&req(), force).await.unwrap_err();
        assert_eq!(err.code, Code::FailedPrecondition, "force={force}");
        assert!(err.message.contains("still holds it as primary"), "{err}");
        assert!(err.message.contains("demote it there first"), "{err}");
    }
    // The disaster path: with the peer unreachable, force still promotes.
    p.b.site.faults.sever(true);
    p.cb.promote(&req(), true).await.unwrap();
}

#[tokio::test]
async fn a_demotion_whose_final_sync_fails_keeps_the_volume_primary_unless_forced() {
    let p = Pair::new(false).await;
    p.primary_on_a().await;
    fs::write(
        p.a.site.store.volume_dir(VOLUME).join("last-writes"),
        b"written after the last sync",
    )
    .unwrap();
    p.a.site.faults.sever(true);
    let err = p.ca.demote(&req(), false).await.unwrap_err();
    assert_eq!(err.code, Code::Unavailable);
    assert!(err.message.contains("still primary"), "{err}");
    // Still primary: B cannot take over without force...
    p.a.site.faults.sever(false);
    let err = p.cb.promote(&req(), false).await.unwrap_err();
    assert!(err.message.contains("still holds it as primary"), "{err}");
    // ...and once the link is back the demotion ships the last writes.
    p.ca.demote(&req(), false).await.unwrap();
    assert!(
        p.b.site
            .store
            .volume_dir(VOLUME)
            .join("last-writes")
            .exists()
    );

    // Forced, a demotion gives the unshipped writes up knowingly.
    p.cb.promote(&req(), false).await.unwrap();
    p.cb.demote(&req(), false).await.unwrap();
    p.ca.promote(&req(), false).await.unwrap();
    p.a.site.faults.sever(true);
    p.ca.demote(&req(), true).await.unwrap();
}
