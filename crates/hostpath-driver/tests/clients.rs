//! Conforming gRPC clients other than grpc-go and tonic, on the driver's Unix socket: grpc-core
//! ≥ 1.57 (Python, C++, Ruby) sends the percent-encoded socket path as `:authority` and
//! grpc-java the raw path. Their requests are written here byte by byte, as those clients send
//! them, and must be answered like any other.

use std::time::Duration;

use fluke_hpack::Decoder;
use lifeline_hostpath_driver::{Config, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const T: Duration = Duration::from_secs(20);

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// Literal header fields without indexing (no Huffman), as any HPACK encoder may send them.
fn literal(out: &mut Vec<u8>, name: &str, value: &str) {
    for text in [name, value] {
        assert!(text.len() < 127);
        if text == name {
            out.push(0x00);
        }
        out.push(text.len() as u8);
        out.extend_from_slice(text.as_bytes());
    }
}

/// One unary `identity.Identity/GetIdentity` call with `authority`; returns (status, grpc-status).
async fn get_identity(socket: &std::path::Path, authority: &str) -> (String, String) {
    let mut stream = UnixStream::connect(socket).await.unwrap();
    let mut request = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    frame(&mut request, 0x4, 0, 0, &[]); // SETTINGS
    let mut headers = Vec::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/identity.Identity/GetIdentity"),
        (":authority", authority),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ] {
        literal(&mut headers, name, value);
    }
    frame(&mut request, 0x1, 0x4, 1, &headers); // HEADERS, END_HEADERS
    frame(&mut request, 0x0, 0x1, 1, &[0, 0, 0, 0, 0]); // DATA: an empty message, END_STREAM
    stream.write_all(&request).await.unwrap();

    let mut decoder = Decoder::new();
    let (mut status, mut grpc_status) = (String::new(), String::new());
    let mut buffer = Vec::new();
    let read = async {
        loop {
            while buffer.len() >= 9 {
                let length = u32::from_be_bytes([0, buffer[0], buffer[1], buffer[2]]) as usize;
                if buffer.len() < 9 + length {
                    break;
                }
                let frame: Vec<u8> = buffer.drain(..9 + length).collect();
                let (kind, flags) = (frame[3], frame[4]);
                match kind {
                    0x1 => {
                        for (name, value) in decoder.decode(&frame[9..]).unwrap() {
                            let value = String::from_utf8(value).unwrap();
                            match name.as_slice() {
                                b":status" => status = value,
                                b"grpc-status" => grpc_status = value,
                                _ => {}
                            }
                        }
                        if flags & 0x1 != 0 {
                            return;
                        }
                    }
                    // RST_STREAM or GOAWAY: refused.
                    0x3 | 0x7 => return,
                    _ => {}
                }
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            if n == 0 {
                return; // the stream ended: the loop ends with it
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(T, read)
        .await
        .expect("an answer in time");
    (status, grpc_status)
}

#[tokio::test]
async fn clients_sending_a_socket_path_as_authority_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("csi-addons.sock");
    let _running = start(Config::lone(
        "hostpath.lifeline.dev",
        format!("unix://{}", socket.display()).parse().unwrap(),
        dir.path().join("root"),
    ))
    .await
    .unwrap();
    let encoded = socket.display().to_string().replace('/', "%2F");
    for authority in [
        encoded.as_str(),              // grpc-core >= 1.57
        &socket.display().to_string(), // grpc-java
        "localhost",                   // grpc-go
    ] {
        assert_eq!(
            get_identity(&socket, authority).await,
            ("200".to_owned(), "0".to_owned()),
            "{authority}"
        );
    }
}

/// Central mode over TLS: the driver serves `https://`, a client trusting its CA gets through,
/// one without a CA or with another CA does not (the class's secrets never go out in clear).
#[tokio::test]
async fn an_https_endpoint_serves_clients_that_trust_its_ca_only() {
    let dir = tempfile::tempdir().unwrap();
    lifeline_hostpath_driver::peer_certs::write(&dir.path().join("certs"), &["driver"]).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("https://localhost:{port}");
    let _running = start(Config {
        endpoint_tls_dir: Some(dir.path().join("certs/driver")),
        ..Config::lone(
            "hostpath.lifeline.dev",
            endpoint.parse().unwrap(),
            dir.path().join("root"),
        )
    })
    .await
    .unwrap();
    let ca = std::fs::read(dir.path().join("certs/ca.crt")).unwrap();
    let trusted = lifeline_csi_client::CsiClient::with_tls(
        endpoint.parse().unwrap(),
        Some(lifeline_csi_client::tls::client_config(&ca).unwrap()),
    );
    assert!(
        trusted.probe().await.unwrap(),
        "the driver over TLS answers ready"
    );

    let no_ca = lifeline_csi_client::CsiClient::new(endpoint.parse().unwrap());
    let e = no_ca.probe().await.unwrap_err();
    assert!(e.to_string().contains("--driver-ca-file"), "{e}");

    let elsewhere = tempfile::tempdir().unwrap();
    lifeline_hostpath_driver::peer_certs::write(elsewhere.path(), &["x"]).unwrap();
    let other = std::fs::read(elsewhere.path().join("ca.crt")).unwrap();
    let wrong = lifeline_csi_client::CsiClient::with_tls(
        endpoint.parse().unwrap(),
        Some(lifeline_csi_client::tls::client_config(&other).unwrap()),
    );
    assert!(
        wrong.probe().await.is_err(),
        "a driver signed by another CA was trusted"
    );
}
