//! Serving every conforming gRPC client on a Unix socket.
//!
//! Over a Unix socket the `:authority` a client sends is not a host: grpc-core ≥ 1.57 (Python,
//! C++, Ruby) sends the percent-encoded socket path, grpc-java the raw path; only grpc-go sends
//! `localhost`. The HTTP/2 layer under tonic (h2) refuses such a request with RST_STREAM
//! PROTOCOL_ERROR before any service sees it, and has no option to accept it. So the bytes a
//! client sends are passed through [`AuthorityFix`], which rewrites each request's header block
//! with `:authority: localhost` where the client's value is not a valid authority.
//!
//! To rewrite a block it must be decoded, and HPACK blocks depend on the dynamic table the
//! client built with earlier blocks; so every block is decoded here (with the client's table)
//! and re-encoded as literals that never enter h2's table, which therefore stays empty and in
//! step. Frames other than HEADERS/CONTINUATION pass through untouched, and so does everything
//! the server sends.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use fluke_hpack::Decoder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The smallest SETTINGS_MAX_FRAME_SIZE a server may have; re-encoded blocks are split so.
const MAX_FRAME: usize = 16_384;
/// The largest header block collected from HEADERS + CONTINUATION frames; a client that sends
/// more is cut off instead of growing the buffer without end.
pub const MAX_HEADER_BLOCK: usize = 1 << 20;
/// The authority a Unix-socket request is served as (what grpc-go and Kubernetes send).
pub const UNIX_AUTHORITY: &[u8] = b"localhost";

/// A header block being received (a HEADERS frame without END_HEADERS, then CONTINUATIONs).
struct Pending {
    stream: u32,
    end_stream: bool,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
}

/// The client-to-server side of an HTTP/2 connection, with its requests' `:authority` fixed.
pub struct AuthorityFix<S> {
    inner: S,
    /// Bytes from the client not yet made into frames.
    raw: Vec<u8>,
    /// Bytes ready for h2.
    out: Vec<u8>,
    out_pos: usize,
    preface_seen: bool,
    eof: bool,
    decoder: Decoder<'static>,
    /// The decoder panicked once (fluke-hpack does on some malformed blocks, `[0x3f]`); its
    /// table is then unknown, so later blocks pass through for h2 to judge.
    decoder_broken: bool,
    pending: Option<Pending>,
    /// Why the connection is being cut (a header block over [`MAX_HEADER_BLOCK`]).
    refused: Option<String>,
}

impl<S> AuthorityFix<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            raw: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            preface_seen: false,
            eof: false,
            decoder: Decoder::new(),
            decoder_broken: false,
            pending: None,
            refused: None,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Turns every complete frame in `raw` into bytes for h2.
    fn process(&mut self) {
        if !self.preface_seen {
            if self.raw.len() < PREFACE.len() {
                return;
            }
            self.out.extend(self.raw.drain(..PREFACE.len()));
            self.preface_seen = true;
        }
        loop {
            if self.raw.len() < 9 {
                return;
            }
            let length = u32::from_be_bytes([0, self.raw[0], self.raw[1], self.raw[2]]) as usize;
            if self.raw.len() < 9 + length {
                return;
            }
            let frame: Vec<u8> = self.raw.drain(..9 + length).collect();
            let (kind, flags) = (frame[3], frame[4]);
            let stream = u32::from_be_bytes([frame[5], frame[6], frame[7], frame[8]]) & 0x7fff_ffff;
            let payload = &frame[9..];
            match kind {
                HEADERS => match headers_payload(flags, payload) {
                    Some((priority, fragment)) => {
                        let pending = Pending {
                            stream,
                            end_stream: flags & END_STREAM != 0,
                            priority,
                            fragment: fragment.to_vec(),
                        };
                        if flags & END_HEADERS != 0 {
                            self.rewrite(pending);
                        } else {
                            self.pending = Some(pending);
                        }
                    }
                    // Malformed padding: h2 says so itself.
                    None => self.out.extend(&frame),
                },
                CONTINUATION if self.pending.as_ref().is_some_and(|p| p.stream == stream) => {
                    let mut pending = self.pending.take().expect("checked");
                    if pending.fragment.len() + payload.len() > MAX_HEADER_BLOCK {
                        self.refused = Some(format!(
                            "a header block over {MAX_HEADER_BLOCK} bytes on stream {stream}"
                        ));
                        return;
                    }
                    pending.fragment.extend_from_slice(payload);
                    if flags & END_HEADERS != 0 {
                        self.rewrite(pending);
                    } else {
                        self.pending = Some(pending);
                    }
                }
                _ => self.out.extend(&frame),
            }
        }
    }

    /// The block's fields, or `None` when it cannot be decoded. Every call is guarded: a panic
    /// in the decoder on a client's bytes must not take the driver down.
    fn decode(&mut self, fragment: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
        if self.decoder_broken {
            return None;
        }
        let decoder = &mut self.decoder;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decoder.decode(fragment))) {
            Ok(decoded) => decoded.ok(),
            Err(_) => {
                self.decoder_broken = true;
                None
            }
        }
    }

    /// Decodes one whole header block and writes it again as HEADERS (+ CONTINUATION) frames.
    fn rewrite(&mut self, pending: Pending) {
        let block = match self.decode(&pending.fragment) {
            Some(mut fields) => {
                for (name, value) in &mut fields {
                    if name.as_slice() == b":authority" && !valid_authority(value) {
                        *value = UNIX_AUTHORITY.to_vec();
                    }
                }
                encode(&fields)
            }
            // A block we cannot decode, h2 cannot either: it answers COMPRESSION_ERROR.
            None => pending.fragment,
        };
        let mut first = Vec::with_capacity(block.len().min(MAX_FRAME) + 5);
        let mut flags = 0;
        if pending.end_stream {
            flags |= END_STREAM;
        }
        if let Some(priority) = pending.priority {
            flags |= PRIORITY;
            first.extend_from_slice(&priority);
        }
        let room = MAX_FRAME - first.len();
        let (head, mut rest) = block.split_at(block.len().min(room));
        first.extend_from_slice(head);
        if rest.is_empty() {
            flags |= END_HEADERS;
        }
        frame(&mut self.out, HEADERS, flags, pending.stream, &first);
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(rest.len().min(MAX_FRAME));
            let flags = if tail.is_empty() { END_HEADERS } else { 0 };
            frame(&mut self.out, CONTINUATION, flags, pending.stream, chunk);
            rest = tail;
        }
    }
}

/// A HEADERS payload's priority fields and header block fragment, or `None` if its padding
/// does not fit.
fn headers_payload(flags: u8, payload: &[u8]) -> Option<(Option<[u8; 5]>, &[u8])> {
    let mut body = payload;
    let mut padding = 0;
    if flags & PADDED != 0 {
        padding = *body.first()? as usize;
        body = &body[1..];
    }
    let mut priority = None;
    if flags & PRIORITY != 0 {
        priority = Some(<[u8; 5]>::try_from(body.get(..5)?).ok()?);
        body = &body[5..];
    }
    let end = body.len().checked_sub(padding)?;
    Some((priority, &body[..end]))
}

fn valid_authority(value: &[u8]) -> bool {
    http::uri::Authority::try_from(value).is_ok()
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let length = (payload.len() as u32).to_be_bytes();
    out.extend_from_slice(&length[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// An HPACK integer with an `n`-bit prefix whose other bits are `first`.
fn integer(out: &mut Vec<u8>, first: u8, n: u32, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// Every field as a literal without indexing, with a literal name and no Huffman coding:
/// nothing enters the receiver's dynamic table.
fn encode(fields: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x00);
        integer(&mut out, 0x00, 7, name.len());
        out.extend_from_slice(name);
        integer(&mut out, 0x00, 7, value.len());
        out.extend_from_slice(value);
    }
    out
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.out_pos < this.out.len() {
                let n = buf.remaining().min(this.out.len() - this.out_pos);
                buf.put_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.out.len() {
                    this.out.clear();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 8192];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if read.filled().is_empty() => {
                    // The client is done: whatever is left is an incomplete frame for h2.
                    this.eof = true;
                    let rest = std::mem::take(&mut this.raw);
                    this.out.extend(rest);
                }
                Poll::Ready(Ok(())) => {
                    this.raw.extend_from_slice(read.filled());
                    this.process();
                    if let Some(why) = &this.refused {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("closing the connection: {why}"),
                        )));
                    }
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for AuthorityFix<tokio::net::UnixStream> {
    type ConnectInfo = tonic::transport::server::UdsConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(fields: &[(&str, &str)]) -> Vec<u8> {
        encode(
            &fields
                .iter()
                .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect::<Vec<_>>(),
        )
    }

    fn decode_all(out: &[u8]) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut decoder = Decoder::new();
        let mut blocks = Vec::new();
        let mut rest = &out[PREFACE.len()..];
        let mut fragment = Vec::new();
        while rest.len() >= 9 {
            let length = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
            let (kind, flags) = (rest[3], rest[4]);
            let payload = &rest[9..9 + length];
            if kind == HEADERS || kind == CONTINUATION {
                let (_, f) =
                    headers_payload(if kind == HEADERS { flags } else { 0 }, payload).unwrap();
                fragment.extend_from_slice(f);
                if flags & END_HEADERS != 0 {
                    blocks.push(decoder.decode(&fragment).unwrap());
                    fragment.clear();
                }
            }
            rest = &rest[9 + length..];
        }
        blocks
    }

    fn run(input: &[u8]) -> Vec<u8> {
        let mut fix = AuthorityFix::new(());
        // Fed in small pieces, as a socket delivers it.
        for piece in input.chunks(7) {
            fix.raw.extend_from_slice(piece);
            fix.process();
        }
        fix.out
    }

    #[test]
    fn an_invalid_authority_becomes_localhost_and_others_stay() {
        let mut input = PREFACE.to_vec();
        frame(&mut input, 0x4, 0, 0, &[]); // SETTINGS passes through
        for authority in [
            "%2Ftmp%2Fdriver.sock",
            "/tmp/driver.sock",
            "driver.example:50051",
        ] {
            frame(
                &mut input,
                HEADERS,
                END_HEADERS,
                1,
                &block(&[
                    (":method", "POST"),
                    (":authority", authority),
                    (":path", "/x"),
                ]),
            );
        }
        let out = run(&input);
        let authorities: Vec<String> = decode_all(&out)
            .iter()
            .map(|fields| {
                let (_, v) = fields.iter().find(|(n, _)| n == b":authority").unwrap();
                String::from_utf8(v.clone()).unwrap()
            })
            .collect();
        assert_eq!(
            authorities,
            ["localhost", "localhost", "driver.example:50051"]
        );
        assert_eq!(
            &out[PREFACE.len()..PREFACE.len() + 9],
            &[0, 0, 0, 4, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn a_block_split_over_continuations_with_padding_and_priority_is_rewritten_whole() {
        let whole = block(&[
            (":authority", "%2Frun%2Fcsi.sock"),
            ("x-big", &"v".repeat(40_000)),
        ]);
        let mut input = PREFACE.to_vec();
        let mut first = vec![3]; // pad length
        first.extend_from_slice(&[0, 0, 0, 0, 16]); // priority
        first.extend_from_slice(&whole[..100]);
        first.extend_from_slice(&[0, 0, 0]);
        frame(
            &mut input,
            HEADERS,
            PADDED | PRIORITY | END_STREAM,
            3,
            &first,
        );
        frame(&mut input, CONTINUATION, 0, 3, &whole[100..20_000]);
        frame(&mut input, CONTINUATION, END_HEADERS, 3, &whole[20_000..]);
        let out = run(&input);
        let blocks = decode_all(&out);
        assert_eq!(blocks.len(), 1);
        assert_eq!(
            blocks[0][0],
            (b":authority".to_vec(), b"localhost".to_vec())
        );
        assert_eq!(blocks[0][1].1.len(), 40_000);
        // END_STREAM and the priority fields survive; every frame fits the smallest limit.
        assert_eq!(
            out[PREFACE.len() + 4] & (END_STREAM | PRIORITY),
            END_STREAM | PRIORITY
        );
        let mut rest = &out[PREFACE.len()..];
        while !rest.is_empty() {
            let length = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
            assert!(length <= MAX_FRAME);
            rest = &rest[9 + length..];
        }
    }

    #[test]
    fn the_clients_dynamic_table_is_followed_across_blocks() {
        // A client that indexes its authority (literal with incremental indexing, 0x41 = the
        // static table's :authority name) and then refers to it by index 62.
        let mut with_index = vec![0x41];
        integer(&mut with_index, 0, 7, "%2Fsock".len());
        with_index.extend_from_slice(b"%2Fsock");
        let by_index = vec![0x80 | 62];
        let mut input = PREFACE.to_vec();
        frame(&mut input, HEADERS, END_HEADERS, 1, &with_index);
        frame(&mut input, HEADERS, END_HEADERS, 3, &by_index);
        let blocks = decode_all(&run(&input));
        assert_eq!(blocks.len(), 2);
        for fields in blocks {
            assert_eq!(fields, [(b":authority".to_vec(), b"localhost".to_vec())]);
        }
    }

    #[test]
    fn a_block_that_panics_the_decoder_passes_through_and_the_next_ones_too() {
        let mut input = PREFACE.to_vec();
        frame(&mut input, HEADERS, END_HEADERS, 1, &[0x3f]);
        let good = block(&[(":authority", "/tmp/x.sock")]);
        frame(&mut input, HEADERS, END_HEADERS, 3, &good);
        let out = run(&input);
        // Both blocks reach h2 as sent (it answers COMPRESSION_ERROR); the driver lives on.
        let mut expected = PREFACE.to_vec();
        frame(&mut expected, HEADERS, END_HEADERS, 1, &[0x3f]);
        frame(&mut expected, HEADERS, END_HEADERS, 3, &good);
        assert_eq!(out, expected);
    }

    #[test]
    fn endless_continuations_cut_the_connection_at_the_cap() {
        let mut fix = AuthorityFix::new(());
        fix.raw.extend_from_slice(PREFACE);
        frame(&mut fix.raw, HEADERS, 0, 1, &[0; 16]);
        let chunk = vec![0u8; MAX_FRAME];
        for _ in 0..=(MAX_HEADER_BLOCK / MAX_FRAME) {
            frame(&mut fix.raw, CONTINUATION, 0, 1, &chunk);
            fix.process();
        }
        let why = fix.refused.expect("cut off");
        assert!(why.contains("header block over"), "{why}");
        assert!(
            fix.pending
                .is_none_or(|p| p.fragment.len() <= MAX_HEADER_BLOCK)
        );
    }
}
