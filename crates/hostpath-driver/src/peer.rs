//! The link between the two sites: a framed TCP protocol carrying roles and volume data.
//!
//! A frame is a big-endian u32 length and that many bytes. Control messages are JSON; file
//! content follows a `Need` as raw frames, each file ended by an empty frame.
//!
//! Push (the primary ships a volume): `Push{entries}` → `Need{paths}` | `Refused`; the content
//! of each needed path; → `Committed{bytes}` | `Refused`. Pull (a demoted site resyncs):
//! `Pull{volume}`, then the peer runs a push on the same connection. A volume group: the same
//! with `PushGroup{members}` → `NeedGroup{paths per member}`, and `Pull{volume: group id}`.

use std::io;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::store::Role;
use crate::tree::Entry;

const CHUNK: usize = 1 << 20;
/// A control message larger than this is a protocol error, not an allocation.
const MAX_FRAME: u32 = 64 << 20;
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one frame may take to arrive or leave once its turn has come: a peer that stops
/// mid-conversation fails this connection instead of holding the volume's lock for ever.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// What a peer connection runs over: TCP, or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One connection to or from the peer site.
pub type Stream = Box<dyn Io>;

fn timed_out(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "the peer sent no {what} within {}s",
            FRAME_TIMEOUT.as_secs()
        ),
    )
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Msg {
    RoleQuery {
        volume: String,
    },
    RoleReply {
        replicated: bool,
        role: Option<Role>,
    },
    Push {
        volume: String,
        entries: Vec<Entry>,
        /// When the sender took the manifest (ms since the Unix epoch): the moment the data in
        /// this push is from, which the receiver reports as its last sync. Absent from older
        /// senders; the receiver then uses the time the push arrived.
        #[serde(default)]
        taken_ms: Option<u64>,
    },
    Need {
        paths: Vec<String>,
    },
    /// A group's members captured at one instant, shipped as one sync: the receiver stages
    /// every member and swaps them all in, or none.
    PushGroup {
        group: String,
        members: Vec<GroupMember>,
        taken_ms: Option<u64>,
    },
    /// The paths the receiver needs, per member in the order of `PushGroup.members`.
    NeedGroup {
        paths: Vec<Vec<String>>,
    },
    Committed {
        bytes: u64,
    },
    Pull {
        volume: String,
    },
    Refused {
        reason: String,
    },
}

/// One member of a [`Msg::PushGroup`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupMember {
    pub volume: String,
    pub entries: Vec<Entry>,
}

pub async fn write_frame(stream: &mut Stream, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    let write = async {
        stream.write_all(&len.to_be_bytes()).await?;
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    tokio::time::timeout(FRAME_TIMEOUT, write)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the peer stopped reading"))?
}

pub async fn read_frame(stream: &mut Stream) -> io::Result<Vec<u8>> {
    let read = async {
        let len = stream.read_u32().await?;
        if len > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("frame of {len} bytes from the peer exceeds {MAX_FRAME}"),
            ));
        }
        let mut buf = vec![0; len as usize];
        stream.read_exact(&mut buf).await?;
        Ok(buf)
    };
    tokio::time::timeout(FRAME_TIMEOUT, read)
        .await
        .map_err(|_| timed_out("frame"))?
}

pub async fn send(stream: &mut Stream, msg: &Msg) -> io::Result<()> {
    write_frame(stream, &serde_json::to_vec(msg)?).await
}

/// The next control message, checked ([`crate::wire_check`]): every name in it is a safe
/// path component, every mode and mtime in range. Nothing unchecked from the peer reaches the
/// store.
pub async fn recv(stream: &mut Stream) -> io::Result<Msg> {
    let frame = read_frame(stream).await?;
    let msg = serde_json::from_slice(&frame)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    crate::wire_check::message(msg).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("refused from the peer: {e}"),
        )
    })
}

/// Streams one file's content, then the empty end frame. `budget` is how many more content
/// bytes may go out before an injected interruption; it is decremented as bytes are sent.
pub async fn send_file(
    stream: &mut Stream,
    path: &Path,
    budget: &mut Option<u64>,
) -> io::Result<u64> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut buf = vec![0; CHUNK];
    let mut sent = 0;
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        let mut chunk = &buf[..n];
        if let Some(left) = budget {
            if (*left as usize) < chunk.len() {
                chunk = &chunk[..*left as usize];
                write_frame(stream, chunk).await?;
                stream.shutdown().await?;
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "sync interrupted by an injected fault",
                ));
            }
            *left -= chunk.len() as u64;
        }
        write_frame(stream, chunk).await?;
        sent += chunk.len() as u64;
    }
    write_frame(stream, &[]).await?;
    Ok(sent)
}

/// Receives one file's content into `path`: at most `size` bytes, the size its manifest entry
/// declared (a peer cannot fill the disk past what it announced).
pub async fn recv_file(stream: &mut Stream, path: &Path, size: u64) -> io::Result<u64> {
    let mut file = tokio::fs::File::create(path).await?;
    let mut written = 0;
    loop {
        let frame = read_frame(stream).await?;
        if frame.is_empty() {
            break;
        }
        written += frame.len() as u64;
        if written > size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the peer sent more than the {size} bytes it declared for {}",
                    path.display()
                ),
            ));
        }
        file.write_all(&frame).await?;
    }
    file.sync_all().await?;
    Ok(written)
}
