//! The client side of a SPDY/3.1 session (draft-mbelshe-httpbis-spdy-00), as much of it as
//! the kubelet's streaming protocols use: the client opens streams with SYN_STREAM, waits for
//! their SYN_REPLY, and exchanges DATA frames; either side ends a stream with FIN or
//! RST_STREAM. Header blocks are zlib-compressed as one stream per direction. Ours are written
//! without the preset dictionary (the zlib header says so and receivers accept it); the
//! server's are never needed and are skipped undecoded. Flow control is not enforced, as by the
//! Go implementation the kubelet and container runtimes use (moby/spdystream).

use bytes::{BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, FlushCompress};
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

const VERSION: u16 = 3;
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const FLAG_FIN: u8 = 0x01;
/// RST_STREAM status for a stream we refuse (the server may not push streams to us).
const REFUSED_STREAM: u32 = 3;
/// DATA frames we write carry at most this much.
const MAX_DATA: usize = 32 * 1024;

/// What the session's reader saw, in arrival order.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// SYN_REPLY: the stream was accepted.
    Reply(u32),
    Data(u32, Bytes),
    /// The server will send nothing more on the stream (FIN).
    Fin(u32),
    /// RST_STREAM with its status code.
    Reset(u32, u32),
    /// A PING the server initiated; echo it with [`Writer::pong`].
    Ping(u32),
    GoAway,
}

/// A control frame: the 8-byte head, then `payload`.
fn control(kind: u16, flags: u8, payload: &[u8]) -> io::Result<Vec<u8>> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|l| *l < 1 << 24)
        .ok_or_else(|| io::Error::other("spdy: frame too large"))?;
    let mut out = Vec::with_capacity(8 + payload.len());
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    out.put_u32((u32::from(flags) << 24) | len);
    out.extend_from_slice(payload);
    Ok(out)
}

/// The uncompressed name/value block of SPDY/3: 32-bit counts and lengths.
fn header_block(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.put_u32(headers.len() as u32);
    for (name, value) in headers {
        out.put_u32(name.len() as u32);
        out.extend(name.bytes().map(|b| b.to_ascii_lowercase()));
        out.put_u32(value.len() as u32);
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// Deflates `input` as the next part of the session's header stream, ending on a sync flush
/// so that the receiver can decode the block without what follows.
fn compress(c: &mut Compress, input: &[u8]) -> io::Result<Vec<u8>> {
    let start = c.total_in();
    let mut out = Vec::with_capacity(input.len() + 64);
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(256);
        }
        let done = usize::try_from(c.total_in() - start).map_err(io::Error::other)?;
        c.compress_vec(&input[done..], &mut out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        let done = usize::try_from(c.total_in() - start).map_err(io::Error::other)?;
        if done == input.len() && out.len() < out.capacity() {
            return Ok(out);
        }
    }
}

/// The write half of a session: opens streams and sends frames. Stream ids are odd, from 1.
pub struct Writer<W> {
    io: W,
    compressor: Compress,
    next_id: u32,
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    pub fn new(io: W) -> Self {
        Writer {
            io,
            compressor: Compress::new(Compression::default(), true),
            next_id: 1,
        }
    }

    /// Sends SYN_STREAM with `headers` and returns the new stream's id; `fin` half-closes it
    /// at once. The caller waits for [`Event::Reply`] before sending data: the Go server drops
    /// data on a stream it has not replied to yet.
    pub async fn open(&mut self, headers: &[(&str, &str)], fin: bool) -> io::Result<u32> {
        let id = self.next_id;
        if id > 0x7fff_ffff {
            return Err(io::Error::other("spdy: stream ids exhausted"));
        }
        self.next_id += 2;
        let block = compress(&mut self.compressor, &header_block(headers))?;
        let mut payload = Vec::with_capacity(10 + block.len());
        payload.put_u32(id);
        payload.put_u32(0); // associated stream
        payload.put_u16(0); // priority 0, slot 0
        payload.extend_from_slice(&block);
        let frame = control(SYN_STREAM, if fin { FLAG_FIN } else { 0 }, &payload)?;
        self.io.write_all(&frame).await?;
        self.io.flush().await?;
        Ok(id)
    }

    /// DATA frames for `data` (split when large), the last one carrying FIN when `fin`.
    pub async fn data(&mut self, id: u32, data: &[u8], fin: bool) -> io::Result<()> {
        let mut chunks: Vec<&[u8]> = data.chunks(MAX_DATA).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let flags = if fin && i == last { FLAG_FIN } else { 0 };
            let mut frame = BytesMut::with_capacity(8 + chunk.len());
            frame.put_u32(id & 0x7fff_ffff);
            frame.put_u32((u32::from(flags) << 24) | chunk.len() as u32);
            frame.extend_from_slice(chunk);
            self.io.write_all(&frame).await?;
        }
        self.io.flush().await
    }

    /// Echoes a PING the server sent.
    pub async fn pong(&mut self, ping_id: u32) -> io::Result<()> {
        let frame = control(PING, 0, &ping_id.to_be_bytes())?;
        self.io.write_all(&frame).await?;
        self.io.flush().await
    }

    async fn reset(&mut self, id: u32, status: u32) -> io::Result<()> {
        let mut payload = Vec::with_capacity(8);
        payload.put_u32(id & 0x7fff_ffff);
        payload.put_u32(status);
        let frame = control(RST_STREAM, 0, &payload)?;
        self.io.write_all(&frame).await?;
        self.io.flush().await
    }

    /// GOAWAY (status OK), then the connection is shut down.
    pub async fn close(&mut self) -> io::Result<()> {
        let frame = control(GOAWAY, 0, &[0u8; 8])?;
        let _ = self.io.write_all(&frame).await;
        self.io.shutdown().await
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

/// Reads frames until the connection ends, sending what it sees to `events`. Server-initiated
/// streams are refused through `refusals`, which the owner of the [`Writer`] answers (see
/// [`Writer::refuse`]). Returns when the connection closes, breaks, or nobody listens.
pub async fn read_frames<R: AsyncRead + Unpin>(
    mut io: R,
    events: mpsc::Sender<Event>,
    refusals: mpsc::UnboundedSender<u32>,
) -> io::Result<()> {
    let mut head = [0u8; 8];
    loop {
        match io.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let flags = head[4];
        let len = (u32::from_be_bytes([0, head[5], head[6], head[7]])) as usize;
        let mut payload = vec![0u8; len];
        io.read_exact(&mut payload).await?;
        let event = if head[0] & 0x80 == 0 {
            let id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) & 0x7fff_ffff;
            let fin = flags & FLAG_FIN != 0;
            if !payload.is_empty() && events.send(Event::Data(id, payload.into())).await.is_err() {
                return Ok(());
            }
            fin.then_some(Event::Fin(id))
        } else {
            let kind = u16::from_be_bytes([head[2], head[3]]);
            let id = be32(&payload, 0) & 0x7fff_ffff;
            let fin = flags & FLAG_FIN != 0;
            match kind {
                SYN_REPLY => {
                    if events.send(Event::Reply(id)).await.is_err() {
                        return Ok(());
                    }
                    fin.then_some(Event::Fin(id))
                }
                HEADERS => fin.then_some(Event::Fin(id)),
                RST_STREAM => Some(Event::Reset(id, be32(&payload, 4))),
                PING => {
                    let ping = be32(&payload, 0);
                    // Even ids are the server's; odd ones answer ours (we send none).
                    ping.is_multiple_of(2).then_some(Event::Ping(ping))
                }
                GOAWAY => Some(Event::GoAway),
                SYN_STREAM => {
                    let _ = refusals.send(id);
                    None
                }
                // SETTINGS, WINDOW_UPDATE and unknown control frames need nothing from us.
                _ => None,
            }
        };
        if let Some(e) = event
            && events.send(e).await.is_err()
        {
            return Ok(());
        }
    }
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    /// Refuses a stream the server tried to open.
    pub async fn refuse(&mut self, id: u32) -> io::Result<()> {
        self.reset(id, REFUSED_STREAM).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress};

    fn inflate(d: &mut Decompress, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(4096);
        d.decompress_vec(input, &mut out, FlushDecompress::Sync)
            .unwrap();
        out
    }

    fn parse_block(b: &[u8]) -> Vec<(String, String)> {
        let n = be32(b, 0) as usize;
        let mut at = 4;
        let mut out = Vec::new();
        for _ in 0..n {
            let l = be32(b, at) as usize;
            let name = String::from_utf8(b[at + 4..at + 4 + l].to_vec()).unwrap();
            at += 4 + l;
            let l = be32(b, at) as usize;
            let value = String::from_utf8(b[at + 4..at + 4 + l].to_vec()).unwrap();
            at += 4 + l;
            out.push((name, value));
        }
        out
    }

    #[tokio::test]
    async fn frames_on_the_wire() {
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let mut w = Writer::new(client);
        assert_eq!(w.open(&[("streamType", "error")], false).await.unwrap(), 1);
        assert_eq!(w.open(&[("streamtype", "stdin")], true).await.unwrap(), 3);
        w.data(3, &vec![7u8; MAX_DATA + 5], true).await.unwrap();
        w.pong(4).await.unwrap();
        drop(w);
        let mut wire = Vec::new();
        server.read_to_end(&mut wire).await.unwrap();

        // Two SYN_STREAMs whose header blocks continue one zlib stream.
        let mut d = Decompress::new(true);
        let mut at = 0;
        for (id, fin, kind) in [(1u32, false, "error"), (3, true, "stdin")] {
            assert_eq!(&wire[at..at + 4], &[0x80, 0x03, 0x00, 0x01]);
            assert_eq!(wire[at + 4] & FLAG_FIN != 0, fin);
            let len = be32(&wire, at + 4) as usize & 0xff_ffff;
            let p = &wire[at + 8..at + 8 + len];
            assert_eq!(be32(p, 0), id);
            assert_eq!(be32(p, 4), 0);
            let block = inflate(&mut d, &p[10..]);
            assert_eq!(
                parse_block(&block),
                vec![("streamtype".to_string(), kind.to_string())]
            );
            at += 8 + len;
        }
        // The data is split, FIN on the last frame only.
        assert_eq!(be32(&wire, at), 3);
        assert_eq!(be32(&wire, at + 4), MAX_DATA as u32);
        at += 8 + MAX_DATA;
        assert_eq!(be32(&wire, at), 3);
        assert_eq!(be32(&wire, at + 4), (1 << 24) | 5);
        at += 8 + 5;
        // PING echo.
        assert_eq!(&wire[at..at + 8], &[0x80, 0x03, 0x00, 0x06, 0, 0, 0, 4]);
        assert_eq!(be32(&wire, at + 8), 4);
        assert_eq!(wire.len(), at + 12);
    }

    #[tokio::test]
    async fn events_from_the_wire() {
        let (mut server, client) = tokio::io::duplex(1 << 16);
        let (tx, mut rx) = mpsc::channel(16);
        let (rtx, mut rrx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_frames(client, tx, rtx));
        let mut wire = Vec::new();
        // SYN_REPLY for 1 (its header block is not decoded), FIN'd SYN_REPLY for 3.
        wire.extend(control(SYN_REPLY, 0, &[0, 0, 0, 1, 0x78, 0x9c]).unwrap());
        wire.extend(control(SYN_REPLY, FLAG_FIN, &[0, 0, 0, 3]).unwrap());
        // DATA on 5, then an empty DATA with FIN.
        wire.extend([0, 0, 0, 5, 0, 0, 0, 2, b'h', b'i']);
        wire.extend([0, 0, 0, 5, 1, 0, 0, 0]);
        wire.extend(control(RST_STREAM, 0, &[0, 0, 0, 7, 0, 0, 0, 5]).unwrap());
        wire.extend(control(PING, 0, &[0, 0, 0, 2]).unwrap());
        wire.extend(control(PING, 0, &[0, 0, 0, 1]).unwrap());
        wire.extend(control(SYN_STREAM, 0, &[0, 0, 0, 2, 0, 0, 0, 0, 0, 0]).unwrap());
        wire.extend(control(9, 0, &[0, 0, 0, 1, 0, 0, 1, 0]).unwrap()); // WINDOW_UPDATE
        wire.extend(control(GOAWAY, 0, &[0; 8]).unwrap());
        server.write_all(&wire).await.unwrap();
        drop(server);
        let mut got = Vec::new();
        while let Some(e) = rx.recv().await {
            got.push(e);
        }
        assert_eq!(
            got,
            vec![
                Event::Reply(1),
                Event::Reply(3),
                Event::Fin(3),
                Event::Data(5, Bytes::from_static(b"hi")),
                Event::Fin(5),
                Event::Reset(7, 5),
                Event::Ping(2),
                Event::GoAway,
            ]
        );
        assert_eq!(rrx.recv().await, Some(2));
        reader.await.unwrap().unwrap();
    }
}
