//! Two driver instances on loopback, driven over their real gRPC sockets with
//! lifeline-csi-client, moving real files between two site roots.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lifeline_csi_client::{CsiClient, ErrorClass, ReplicationRequest, Secrets, Target, connect};
use lifeline_hostpath_driver::{Config, Running, start};
use tonic::Code;

const VOLUME: &str = "pvc-0001";

fn free_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

struct SiteSpec {
    root: PathBuf,
    socket: PathBuf,
    listen: String,
    peer: String,
    secret_key: Option<(String, String)>,
}

async fn run(spec: &SiteSpec) -> Running {
    start(Config {
        peer_listen: spec.listen.clone(),
        peer: Some(spec.peer.clone()),
        required_secret: spec.secret_key.clone(),
        // Syncs happen when a test asks, never behind its back (lone's hour-long interval).
        ..Config::lone(
            "hostpath.lifeline.dev",
            format!("unix://{}", spec.socket.display()).parse().unwrap(),
            spec.root.clone(),
        )
    })
    .await
    .unwrap()
}

struct Pair {
    _dir: tempfile::TempDir,
    a_spec: SiteSpec,
    a: Running,
    b: Running,
    ca: CsiClient,
    cb: CsiClient,
}

impl Pair {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (pa, pb) = (free_port(), free_port());
        let spec = |name: &str, listen: &str, peer: &str| SiteSpec {
            root: dir.path().join(name),
            socket: dir.path().join(format!("{name}.sock")),
            listen: listen.to_owned(),
            peer: peer.to_owned(),
            secret_key: None,
        };
        let a_spec = spec("a", &pa, &pb);
        let b_spec = spec("b", &pb, &pa);
        let a = run(&a_spec).await;
        let b = run(&b_spec).await;
        let ca = connect(&format!("unix://{}", a_spec.socket.display())).unwrap();
        let cb = connect(&format!("unix://{}", b_spec.socket.display())).unwrap();
        fs::create_dir_all(a_spec.root.join("volumes").join(VOLUME)).unwrap();
        Self {
            _dir: dir,
            a_spec,
            a,
            b,
            ca,
            cb,
        }
    }

    fn vol_a(&self) -> PathBuf {
        self.a.site.store.volume_dir(VOLUME)
    }

    fn vol_b(&self) -> PathBuf {
        self.b.site.store.volume_dir(VOLUME)
    }

    /// A primary on A that has synced once to B.
    async fn primary_on_a(&self) {
        write_tree(&self.vol_a());
        self.ca.enable(&req()).await.unwrap();
        self.ca.promote(&req(), false).await.unwrap();
        self.a.site.sync_now(VOLUME).await.unwrap();
        assert_same(&self.vol_a(), &self.vol_b());
    }
}

fn req() -> ReplicationRequest {
    ReplicationRequest::new(Target::Volume(VOLUME.into()))
        .with_parameters([("schedulingInterval".to_owned(), "1h".to_owned())].into())
}

fn write_tree(root: &Path) {
    fs::create_dir_all(root.join("db/wal/2026")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    let big: Vec<u8> = (0..3 * 1024 * 1024 + 17)
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    fs::write(root.join("db/data.bin"), &big).unwrap();
    fs::write(root.join("db/wal/2026/0001.log"), b"first entry\n").unwrap();
    fs::write(root.join("README"), b"hello from site A\n").unwrap();
    fs::write(root.join("zero"), b"").unwrap();
}

/// Every file and directory, with content, relative to `root`.
fn snapshot(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    for entry in lifeline_hostpath_driver::tree::manifest(root).unwrap() {
        let content = (!entry.dir).then(|| fs::read(root.join(&entry.path)).unwrap());
        out.insert(entry.path, content);
    }
    out
}

fn assert_same(a: &Path, b: &Path) {
    let (sa, sb) = (snapshot(a), snapshot(b));
    assert_eq!(sa.keys().collect::<Vec<_>>(), sb.keys().collect::<Vec<_>>());
    assert!(
        sa == sb,
        "contents differ between {} and {}",
        a.display(),
        b.display()
    );
}

#[tokio::test]
async fn a_tree_with_changes_deletions_and_renames_replicates_byte_exact() {
    let p = Pair::new().await;
    p.primary_on_a().await;

    let a = p.vol_a();
    fs::remove_file(a.join("zero")).unwrap();
    fs::rename(a.join("README"), a.join("db/README.moved")).unwrap();
    fs::write(
        a.join("db/wal/2026/0001.log"),
        b"first entry\nsecond entry\n",
    )
    .unwrap();
    fs::remove_dir(a.join("empty")).unwrap();
    fs::create_dir_all(a.join("new/deeper")).unwrap();
    fs::write(a.join("new/deeper/file"), vec![7u8; 100_000]).unwrap();
    let bytes = p.a.site.sync_now(VOLUME).await.unwrap();

    assert_same(&a, &p.vol_b());
    assert!(!p.vol_b().join("zero").exists());
    // Only what changed travelled: the log, the moved README and the new file, not data.bin.
    assert_eq!(bytes, 25 + 18 + 100_000);
}

#[tokio::test]
async fn an_interrupted_sync_leaves_the_previous_copy_intact() {
    let p = Pair::new().await;
    p.primary_on_a().await;
    let before = snapshot(&p.vol_b());

    fs::write(p.vol_a().join("db/data.bin"), vec![1u8; 2 * 1024 * 1024]).unwrap();
    fs::write(p.vol_a().join("README"), b"changed\n").unwrap();
    p.a.site.faults.interrupt_sync_after(Some(1000));
    let err = p.a.site.sync_now(VOLUME).await.unwrap_err();
    assert!(err.to_string().contains("sync"), "{err}");
    assert_eq!(
        snapshot(&p.vol_b()),
        before,
        "the secondary kept the last complete copy"
    );

    // The failure is reported as degraded, with why.
    let info = p.ca.replication_info(&req()).await.unwrap();
    assert_eq!(
        info.health,
        lifeline_csi_client::ReplicationHealth::Degraded
    );
    assert!(
        info.status_message.contains("last sync failed"),
        "{}",
        info.status_message
    );

    // The peer refuses (busy) until it has noticed the broken transfer and cleaned up.
    sync_eventually(&p.a).await;
    assert_same(&p.vol_a(), &p.vol_b());
}

/// Syncs, retrying while the peer still reports the volume busy (bounded).
async fn sync_eventually(site: &Running) {
    sync_unit_eventually(site, VOLUME).await
}

/// The same for any replicated unit (a volume or a group).
async fn sync_unit_eventually(site: &Running, unit: &str) {
    for _ in 0..100 {
        match site.site.sync_now(unit).await {
            Ok(_) => return,
            Err(e) if e.to_string().contains("busy") => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("sync failed: {e}"),
        }
    }
    panic!("the peer stayed busy");
}

#[tokio::test]
async fn planned_switchover_needs_no_force_and_loses_nothing() {
    let p = Pair::new().await;
    p.primary_on_a().await;
    fs::write(
        p.vol_a().join("late-write"),
        b"written just before the switchover",
    )
    .unwrap();

    p.cb.enable(&req()).await.unwrap();
    let refused = p.cb.promote(&req(), false).await.unwrap_err();
    assert_eq!(
        refused.class(),
        ErrorClass::FailedPrecondition,
        "A is still primary: {refused}"
    );

    p.ca.demote(&req(), false).await.unwrap();
    p.cb.promote(&req(), false).await.unwrap();
    assert_same(&p.vol_a(), &p.vol_b());
    assert!(p.vol_b().join("late-write").exists());

    // B now ships to A.
    fs::write(p.vol_b().join("from-b"), b"B is primary").unwrap();
    p.b.site.sync_now(VOLUME).await.unwrap();
    assert_same(&p.vol_b(), &p.vol_a());
}

#[tokio::test]
async fn disaster_force_promote_then_resync_the_old_primary() {
    let p = Pair::new().await;
    p.primary_on_a().await;
    let last_synced = snapshot(&p.vol_b());
    fs::write(p.vol_a().join("unsynced"), b"lost in the disaster").unwrap();

    // The link is cut: A is gone as far as B can tell.
    p.a.site.faults.sever(true);
    p.b.site.faults.sever(true);
    p.cb.enable(&req()).await.unwrap();
    let err = p.cb.promote(&req(), false).await.unwrap_err();
    assert_eq!(err.code, Code::FailedPrecondition);
    assert!(err.message.contains("unreachable"), "{err}");
    p.cb.promote(&req(), true).await.unwrap();
    assert_eq!(
        snapshot(&p.vol_b()),
        last_synced,
        "B holds the last completed sync"
    );

    // B's primary is degraded while the peer is gone.
    let info = p.cb.replication_info(&req()).await;
    assert!(
        info.is_err() || info.unwrap().health != lifeline_csi_client::ReplicationHealth::Healthy
    );

    // A returns, divergent: it refuses B's data until demoted, then resyncs.
    p.a.site.faults.sever(false);
    p.b.site.faults.sever(false);
    assert!(
        p.b.site.sync_now(VOLUME).await.is_err(),
        "A is still primary there"
    );
    p.ca.demote(&req(), false).await.unwrap();
    let ready = wait_resync(&p.ca).await;
    assert!(ready);
    assert_same(&p.vol_b(), &p.vol_a());
    assert!(!p.vol_a().join("unsynced").exists());

    // Resync is refused on a primary.
    let err = p.cb.resync(&req(), true).await.unwrap_err();
    assert_eq!(err.code, Code::FailedPrecondition);
}

/// Calls Resync until it reports ready (bounded).
async fn wait_resync(client: &CsiClient) -> bool {
    for _ in 0..200 {
        if client.resync(&req(), false).await.unwrap() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_restart_keeps_roles_and_last_sync() {
    let p = Pair::new().await;
    p.primary_on_a().await;
    let before = p.ca.replication_info(&req()).await.unwrap();

    let Pair {
        a,
        a_spec,
        ca,
        b,
        _dir,
        ..
    } = p;
    a.stop().await;
    assert_eq!(ca.probe().await.unwrap_err().class(), ErrorClass::Retry);
    let a = run(&a_spec).await;
    let after = ca.replication_info(&req()).await.unwrap();
    assert_eq!(after.last_sync_time, before.last_sync_time);
    assert_eq!(after.last_sync_bytes, before.last_sync_bytes);
    // Still primary: demote works, and promote on the restarted site is idempotent.
    ca.promote(&req(), false).await.unwrap();
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn error_codes_follow_the_contract() {
    let p = Pair::new().await;
    let unknown = ReplicationRequest::new(Target::Volume("no-such-volume".into()));
    assert_eq!(
        p.ca.disable(&unknown).await.unwrap_err().code,
        Code::NotFound
    );
    assert_eq!(
        p.ca.enable(&unknown).await.unwrap_err().code,
        Code::NotFound
    );

    let bad = ReplicationRequest::new(Target::Volume(VOLUME.into()))
        .with_parameters([("schedulingInterval".to_owned(), "5s".to_owned())].into());
    let err = p.ca.enable(&bad).await.unwrap_err();
    assert_eq!(err.code, Code::InvalidArgument);
    assert!(err.message.contains("schedulingInterval"), "{err}");

    assert_eq!(
        p.ca.promote(&req(), false).await.unwrap_err().code,
        Code::FailedPrecondition
    );
    assert_eq!(
        p.ca.replication_info(&req()).await.unwrap_err().code,
        Code::FailedPrecondition
    );

    p.ca.enable(&req()).await.unwrap();
    p.ca.enable(&req()).await.unwrap(); // idempotent
    let held = p.a.site.hold(VOLUME).unwrap();
    assert_eq!(
        p.ca.promote(&req(), false).await.unwrap_err().code,
        Code::Aborted
    );
    assert_eq!(p.ca.disable(&req()).await.unwrap_err().code, Code::Aborted);
    drop(held);
    p.ca.promote(&req(), false).await.unwrap();
    // Primary but never synced: no info yet.
    assert_eq!(
        p.ca.replication_info(&req()).await.unwrap_err().code,
        Code::NotFound
    );
    p.ca.disable(&req()).await.unwrap();
    p.ca.disable(&req()).await.unwrap(); // idempotent

    p.a.site
        .faults
        .fail_next("PromoteVolume", Code::Unavailable, 1);
    assert_eq!(
        p.ca.promote(&req(), false).await.unwrap_err().code,
        Code::Unavailable
    );

    let caps = p.ca.capabilities().await.unwrap();
    assert!(
        caps.controller_service && caps.volume_replication && caps.get_replication_destination_info
    );
}

#[tokio::test]
async fn a_required_secret_is_checked_by_value_and_the_socket_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let spec = SiteSpec {
        root: dir.path().join("s"),
        socket: dir.path().join("s.sock"),
        listen: free_port(),
        peer: free_port(),
        secret_key: Some(("userKey".into(), "s3cret".into())),
    };
    let site = run(&spec).await;
    let mode = fs::metadata(&spec.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let client = connect(&format!("unix://{}", spec.socket.display())).unwrap();
    let err = client.disable(&req()).await.unwrap_err();
    assert_eq!(err.code, Code::Unauthenticated);
    // The key with another value is not the secret.
    for wrong in ["x", "s3cre", "s3cret ", ""] {
        let with_key = req().with_secrets(Secrets::from_iter([("userKey", wrong)]));
        let err = client.disable(&with_key).await.unwrap_err();
        assert_eq!(err.code, Code::Unauthenticated, "{wrong:?}");
        assert!(!err.message.contains("s3cret"), "{err}");
    }
    let with_key = req().with_secrets(Secrets::from_iter([("userKey", "s3cret")]));
    assert_eq!(
        client.disable(&with_key).await.unwrap_err().code,
        Code::NotFound
    );
    site.stop().await;
}

/// Sends one HTTP request to the admin endpoint and returns the response text.
async fn admin(address: std::net::SocketAddr, request_line: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(format!("{request_line} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn the_admin_endpoint_injects_faults_and_forces_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = (free_port(), free_port());
    let mk = |name: &str, listen: &str, peer: &str, admin: Option<String>| Config {
        peer_listen: listen.to_owned(),
        peer: Some(peer.to_owned()),
        admin_listen: admin,
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
    let a = start(mk("a", &pa, &pb, Some("127.0.0.1:0".into())))
        .await
        .unwrap();
    let b = start(mk("b", &pb, &pa, None)).await.unwrap();
    let address = a.admin_address.unwrap();
    let ca = connect(&format!("unix://{}", dir.path().join("a.sock").display())).unwrap();
    fs::create_dir_all(a.site.store.volume_dir(VOLUME)).unwrap();
    write_tree(&a.site.store.volume_dir(VOLUME));
    ca.enable(&req()).await.unwrap();
    ca.promote(&req(), false).await.unwrap();

    assert!(
        admin(address, "GET /healthz")
            .await
            .starts_with("HTTP/1.1 200")
    );
    let synced = admin(address, &format!("POST /sync?volume={VOLUME}")).await;
    assert!(
        synced.starts_with("HTTP/1.1 200") && synced.contains("synced"),
        "{synced}"
    );
    assert_same(
        &a.site.store.volume_dir(VOLUME),
        &b.site.store.volume_dir(VOLUME),
    );

    assert!(
        admin(address, "POST /link/sever")
            .await
            .starts_with("HTTP/1.1 200")
    );
    let refused = admin(address, &format!("POST /sync?volume={VOLUME}")).await;
    assert!(
        refused.starts_with("HTTP/1.1 409") && refused.contains("severed"),
        "{refused}"
    );
    admin(address, "POST /link/restore").await;

    admin(
        address,
        "POST /faults/fail?method=DemoteVolume&code=ABORTED&count=1",
    )
    .await;
    assert_eq!(
        ca.demote(&req(), false).await.unwrap_err().code,
        Code::Aborted
    );
    admin(address, "POST /faults/latency?method=*&ms=1").await;
    admin(address, "POST /faults/clear").await;
    ca.demote(&req(), false).await.unwrap();

    let bad = admin(address, "POST /faults/fail?method=X&code=NOPE&count=1").await;
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    a.stop().await;
    b.stop().await;
}

/// A secondary whose peer is secondary too has nothing to resync from: every Resync reports
/// the same FAILED_PRECONDITION (no alternating "running"/"failed" for a controller to flap between), and
/// the resync goes through once the peer is primary again.
#[tokio::test]
async fn a_resync_without_a_primary_anywhere_fails_the_same_way_until_one_appears() {
    let p = Pair::new().await;
    p.primary_on_a().await;
    p.ca.demote(&req(), false).await.unwrap();
    p.cb.enable(&req()).await.unwrap();
    p.cb.demote(&req(), false).await.unwrap();
    // The first call starts a pull; from the first failure on, every answer is that failure.
    let mut answers = Vec::new();
    let first_failure = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match p.ca.resync(&req(), false).await {
                Ok(ready) => assert!(!ready, "nothing to resync from"),
                Err(e) => return e,
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the resync fails while no site is primary");
    // A precondition (no primary yet), not a failure: the controller waits for it quietly.
    assert_eq!(first_failure.code, Code::FailedPrecondition);
    assert!(
        first_failure
            .message
            .contains("not primary at the peer site"),
        "{first_failure}"
    );
    for _ in 0..20 {
        let answer = p.ca.resync(&req(), false).await;
        answers.push(answer.map_err(|e| e.message));
    }
    assert!(
        answers
            .iter()
            .all(|a| a == &Err(first_failure.message.clone())),
        "{answers:?}"
    );
    p.cb.promote(&req(), false).await.unwrap();
    assert!(wait_resync_through_failures(&p.ca).await);
}

/// Calls Resync until it reports ready (bounded), failures included.
async fn wait_resync_through_failures(client: &CsiClient) -> bool {
    for _ in 0..200 {
        if client.resync(&req(), false).await.unwrap_or(false) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Lifeline's extension: a secondary answers GetVolumeReplicationInfo with the last sync it
/// received, dated when the primary took the data, and keeps answering when the primary is
/// gone; promoted, it has shipped nothing yet.
#[tokio::test]
async fn a_secondary_reports_the_sync_it_received() {
    let p = Pair::new().await;
    p.primary_on_a().await;
    let shipped = p.ca.replication_info(&req()).await.unwrap();
    let received = p.cb.replication_info(&req()).await.unwrap();
    let (a_time, a_took) = (
        shipped.last_sync_time.unwrap(),
        shipped.last_sync_duration.unwrap(),
    );
    let b_time = received.last_sync_time.unwrap();
    // Taken after A's sync started (to the millisecond the wire carries) and before it ended.
    assert!(
        b_time + Duration::from_millis(1) >= a_time,
        "{b_time:?} {a_time:?}"
    );
    assert!(
        b_time <= a_time + a_took,
        "{b_time:?} {a_time:?} {a_took:?}"
    );
    assert_eq!(
        received.last_sync_bytes, shipped.last_sync_bytes,
        "every byte A sent"
    );
    assert_eq!(
        received.health,
        lifeline_csi_client::ReplicationHealth::Healthy
    );

    p.a.site.faults.sever(true);
    p.b.site.faults.sever(true);
    let later = p.cb.replication_info(&req()).await.unwrap();
    assert_eq!(
        later.last_sync_time,
        Some(b_time),
        "the primary gone, the data here is as old as it was"
    );

    p.cb.promote(&req(), true).await.unwrap();
    assert_eq!(
        p.cb.replication_info(&req()).await.unwrap_err().code,
        Code::NotFound,
        "a new primary has shipped nothing yet"
    );
}

/// A resync that arrives while the primary is busy with the volume (a sync in flight) waits for
/// it instead of failing: with syncs every second a refusal would fail most resyncs.
#[tokio::test]
async fn a_resync_waits_for_the_primarys_sync_in_flight() {
    let p = Pair::new().await;
    p.primary_on_a().await;
    p.cb.enable(&req()).await.unwrap();
    p.cb.demote(&req(), false).await.unwrap();
    let held = p.a.site.hold(VOLUME).unwrap();
    assert!(
        !p.cb.resync(&req(), false).await.unwrap(),
        "started, not done"
    );
    // The pull is waiting on A's lock; release it as a finished sync would.
    drop(held);
    assert!(
        wait_resync(&p.cb).await,
        "the resync went through after the sync"
    );
    assert_same(&p.vol_a(), &p.vol_b());
}

/// The members of the two-disk "VM" the group tests replicate.
const MEMBERS: [&str; 2] = ["pvc-boot", "pvc-data"];

fn members() -> Vec<String> {
    MEMBERS.iter().map(|m| m.to_string()).collect()
}

/// Writes `generation` into a marker on every member, each replaced by a rename (as
/// applications write), and a larger file so a sync takes more than one frame.
fn write_generation(site: &Running, members: &[String], generation: u32) {
    for m in members {
        let dir = site.site.store.volume_dir(m);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("bulk"), vec![generation as u8; 256 * 1024]).unwrap();
        fs::write(dir.join("marker.tmp"), generation.to_string()).unwrap();
        fs::rename(dir.join("marker.tmp"), dir.join("marker")).unwrap();
    }
}

fn generations(site: &Running, members: &[String]) -> Vec<Option<String>> {
    members
        .iter()
        .map(|m| fs::read_to_string(site.site.store.volume_dir(m).join("marker")).ok())
        .collect()
}

#[tokio::test]
async fn a_volume_group_is_one_unit_and_a_cut_mid_sync_keeps_every_member_at_the_last_sync() {
    let p = Pair::new().await;
    let none = Secrets::default();
    let params = BTreeMap::new();
    let caps = p.ca.capabilities().await.unwrap();
    assert!(caps.volume_group && caps.modify_volume_group);
    assert!(caps.get_volume_group && caps.list_volume_groups);
    // The "VM"'s disks at A, and pre-provisioned at B, grouped under one name at both sites.
    write_generation(&p.a, &members(), 1);
    for m in MEMBERS {
        fs::create_dir_all(p.b.site.store.volume_dir(m)).unwrap();
    }
    let group =
        p.ca.create_volume_group("vm-1", &members(), &params, &none)
            .await
            .unwrap();
    let at_b =
        p.cb.create_volume_group("vm-1", &members(), &params, &none)
            .await
            .unwrap();
    assert_eq!(
        group.id, at_b.id,
        "the same name is the same group at both sites"
    );
    let unit = ReplicationRequest::new(Target::VolumeGroup(group.id.clone()));
    p.ca.enable(&unit).await.unwrap();
    p.ca.promote(&unit, false).await.unwrap();
    p.cb.enable(&unit).await.unwrap();
    p.a.site.sync_now(&group.id).await.unwrap();
    assert_eq!(
        generations(&p.b, &members()),
        [Some("1".into()), Some("1".into())]
    );

    // Generation 2 on both disks; the link is cut after the first disk's data went out.
    write_generation(&p.a, &members(), 2);
    p.a.site.faults.interrupt_sync_after(Some(300 * 1024));
    p.a.site.sync_now(&group.id).await.unwrap_err();
    assert_eq!(
        generations(&p.b, &members()),
        [Some("1".into()), Some("1".into())],
        "neither disk moved on: the group is swapped in whole or not at all"
    );
    sync_unit_eventually(&p.a, &group.id).await;
    assert_eq!(
        generations(&p.b, &members()),
        [Some("2".into()), Some("2".into())]
    );
    for m in MEMBERS {
        assert_same(&p.a.site.store.volume_dir(m), &p.b.site.store.volume_dir(m));
        assert!(
            !p.b.site
                .store
                .volume_dir(m)
                .join(lifeline_hostpath_driver::store::STAGED_MARK)
                .exists()
        );
    }
    // B reports the sync it received for the group, and A names B's copies.
    assert!(
        p.cb.replication_info(&unit)
            .await
            .unwrap()
            .last_sync_time
            .is_some()
    );
    let lifeline_csi_client::Destination::VolumeGroup { id, volume_ids } =
        p.ca.destination_info(&unit).await.unwrap()
    else {
        panic!("a group's destination is a group")
    };
    assert_eq!(id, group.id);
    assert_eq!(volume_ids.keys().cloned().collect::<Vec<_>>(), members());

    // A disk added at A joins the group and arrives at B with its data, B's group with it.
    let mut three = members();
    three.push("pvc-logs".into());
    write_generation(&p.a, &three, 3);
    p.ca.modify_volume_group_membership(&group.id, &three, &params, &none)
        .await
        .unwrap();
    sync_unit_eventually(&p.a, &group.id).await;
    assert_eq!(generations(&p.b, &three), vec![Some("3".into()); 3]);
    assert_eq!(
        p.cb.get_volume_group(&group.id, &none)
            .await
            .unwrap()
            .volume_ids,
        three
    );

    // Planned switch of the whole group: demote ships the last state, B promotes without force.
    write_generation(&p.a, &three, 4);
    p.ca.demote(&unit, false).await.unwrap();
    p.cb.promote(&unit, false).await.unwrap();
    assert_eq!(generations(&p.b, &three), vec![Some("4".into()); 3]);
    write_generation(&p.b, &three, 5);
    sync_unit_eventually(&p.b, &group.id).await;
    assert_eq!(generations(&p.a, &three), vec![Some("5".into()); 3]);

    // A replicated group is not deleted; once disabled it is, and its volumes stay.
    let refused =
        p.cb.delete_volume_group(&group.id, &none)
            .await
            .unwrap_err();
    assert_eq!(refused.code, Code::FailedPrecondition, "{refused}");
    p.cb.disable(&unit).await.unwrap();
    p.cb.delete_volume_group(&group.id, &none).await.unwrap();
    p.cb.delete_volume_group(&group.id, &none).await.unwrap();
    assert!(
        p.b.site
            .store
            .volume_dir("pvc-boot")
            .join("marker")
            .exists()
    );
    let listed = p.cb.list_volume_groups(0, "", &none).await.unwrap();
    assert!(listed.groups.is_empty(), "{listed:?}");
}

#[tokio::test]
async fn bad_volume_group_requests_are_refused_with_the_contracts_codes() {
    let p = Pair::new().await;
    let none = Secrets::default();
    let params = BTreeMap::new();
    write_generation(&p.a, &members(), 1);
    let cases: [(&str, Vec<String>, Code); 5] = [
        ("vm-1", vec!["pvc-missing".into()], Code::NotFound),
        ("bad name/", members(), Code::InvalidArgument),
        ("", members(), Code::InvalidArgument),
        (
            "vm-1",
            vec!["pvc-boot".into(), "pvc-boot".into()],
            Code::InvalidArgument,
        ),
        ("vm-1", vec!["../escape".into()], Code::InvalidArgument),
    ];
    for (name, volumes, code) in cases {
        let e =
            p.ca.create_volume_group(name, &volumes, &params, &none)
                .await
                .unwrap_err();
        assert_eq!(e.code, code, "{name:?} {volumes:?}: {e}");
    }
    let group =
        p.ca.create_volume_group("vm-1", &members(), &params, &none)
            .await
            .unwrap();
    let clash =
        p.ca.create_volume_group("vm-1", &members()[..1], &params, &none)
            .await
            .unwrap_err();
    assert_eq!(clash.code, Code::AlreadyExists);
    let e = p.ca.get_volume_group("vg-nope", &none).await.unwrap_err();
    assert_eq!(e.code, Code::NotFound);
    let e =
        p.ca.modify_volume_group_membership(&group.id, &["pvc-missing".to_owned()], &params, &none)
            .await
            .unwrap_err();
    assert_eq!(e.code, Code::NotFound);
    // Listing pages by id and ends.
    p.ca.create_volume_group("vm-2", &members()[..1], &params, &none)
        .await
        .unwrap();
    let first = p.ca.list_volume_groups(1, "", &none).await.unwrap();
    assert_eq!(first.groups.len(), 1);
    let second =
        p.ca.list_volume_groups(1, &first.next_token, &none)
            .await
            .unwrap();
    assert_eq!(second.groups.len(), 1);
    assert!(second.next_token.is_empty());
    assert_ne!(first.groups[0].id, second.groups[0].id);
}

#[test]
fn a_group_commit_cut_by_a_crash_is_finished_at_start() {
    use lifeline_hostpath_driver::store::{STAGED_MARK, Store};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for d in [
        "volumes/boot",
        "volumes/data",
        "staging/boot",
        "staging/data",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    // boot was swapped (its volume holds the new copy and the mark, staging the old one);
    // data was not (staging holds the new copy and the mark).
    fs::write(root.join("volumes/boot/marker"), "new").unwrap();
    fs::write(root.join("volumes/boot").join(STAGED_MARK), "").unwrap();
    fs::write(root.join("staging/boot/marker"), "old").unwrap();
    fs::write(root.join("volumes/data/marker"), "old").unwrap();
    fs::write(root.join("staging/data/marker"), "new").unwrap();
    fs::write(root.join("staging/data").join(STAGED_MARK), "").unwrap();
    fs::write(root.join("staging/vg-vm.commit"), r#"["boot","data"]"#).unwrap();
    // And a transfer that died before its commit: garbage.
    fs::create_dir_all(root.join("staging/other")).unwrap();

    let store = Store::open(root).unwrap();
    for m in ["boot", "data"] {
        let volume = store.volume_dir(m);
        assert_eq!(
            fs::read_to_string(volume.join("marker")).unwrap(),
            "new",
            "{m}"
        );
        assert!(!volume.join(STAGED_MARK).exists(), "{m}");
    }
    assert_eq!(fs::read_dir(root.join("staging")).unwrap().count(), 0);
}
