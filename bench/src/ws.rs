//! A lean WebSocket client (RFC 6455, client side only), made for a load
//! generator on a single-threaded runtime:
//!
//! - reads go into one buffer shared by every connection of the thread and
//!   are parsed in place; only an incomplete frame's bytes are kept per
//!   connection, so an idle connection holds no read buffer;
//! - a short read marks the socket not-ready without a second `read`
//!   syscall that would only return `EAGAIN`;
//! - outbound frames are masked into a per-connection buffer that is reused,
//!   and written without waiting when the socket takes them.
//!
//! It speaks what the servers under test send: binary messages, possibly
//! fragmented; ping (answered with pong), pong, close. The server's
//! `Sec-WebSocket-Accept` is not verified.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Size of the shared read buffer; frames larger than half of it are read
/// straight into their connection's own buffer.
const SCRATCH: usize = 256 << 10;

thread_local! {
    static SCRATCH_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH]);
}

/// One client connection: the socket and its state.
pub struct Conn {
    pub fd: AsyncFd<std::net::TcpStream>,
    pub st: ConnState,
}

/// Everything of a connection but the socket, so a handler can queue
/// messages while the socket is borrowed for readiness.
pub struct ConnState {
    /// Received bytes not parsed yet: the start of an incomplete frame.
    inbuf: Vec<u8>,
    /// Total length of the frame `inbuf` starts, once its header is known.
    frame_len: usize,
    /// A fragmented message being put together.
    frag: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    rng: u64,
    /// The close code the server sent, if it closed (1005: none given).
    pub close_code: Option<u16>,
    /// The server closed the TCP connection.
    pub eof: bool,
    /// Frames of a type this client never expects (text, continuation
    /// without start).
    pub odd_frames: u64,
}

impl Conn {
    /// Opens a WebSocket to `ws://addr{path}`.
    pub async fn connect(addr: SocketAddr, path: &str) -> io::Result<Conn> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut rng = seed();
        let mut key = [0u8; 16];
        for chunk in key.chunks_mut(8) {
            chunk.copy_from_slice(&next_rand(&mut rng).to_le_bytes()[..chunk.len()]);
        }
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
            base64(&key)
        );
        stream.write_all(request.as_bytes()).await?;
        let mut buf = Vec::with_capacity(1024);
        let header_end = loop {
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed during the WebSocket handshake",
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 16 << 10 {
                return Err(io::Error::other("handshake response too long"));
            }
        };
        let status = String::from_utf8_lossy(&buf[..header_end]);
        let first = status.lines().next().unwrap_or_default().to_string();
        if !first.starts_with("HTTP/1.1 101") {
            return Err(io::Error::other(format!("handshake refused: {first}")));
        }
        let inbuf = buf[header_end..].to_vec();
        let std = stream.into_std()?;
        let mut st = ConnState {
            inbuf,
            frame_len: 0,
            frag: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            rng,
            close_code: None,
            eof: false,
            odd_frames: 0,
        };
        st.frame_len = frame_total(&st.inbuf).unwrap_or(0);
        // SAFETY: the TcpStream owns its descriptor, which stays open and
        // the same until the AsyncFd (its only owner) is dropped.
        let fd = unsafe { AsyncFd::register(std) }.map_err(io::Error::from)?;
        Ok(Conn { fd, st })
    }

    /// Handles frames that arrived together with the handshake response.
    /// Call once after `connect`, before waiting for readiness.
    pub fn drain_buffered(&mut self, on_msg: &mut impl FnMut(&mut ConnState, &[u8])) {
        let buf = std::mem::take(&mut self.st.inbuf);
        let used = self.st.parse(&buf, on_msg);
        self.st.inbuf = buf[used..].to_vec();
        self.st.frame_len = frame_total(&self.st.inbuf).unwrap_or(0);
    }

    /// Waits until the socket is readable, then reads everything available
    /// and calls `on_msg` with each complete binary message.
    pub async fn read_some(
        &mut self,
        on_msg: &mut impl FnMut(&mut ConnState, &[u8]),
    ) -> io::Result<()> {
        let mut guard = self.fd.readable().await?;
        pump(&mut guard, &mut self.st, on_msg)
    }

    /// Writes what is queued, waiting for the socket as needed.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.st.try_flush(&self.fd)?;
        while self.st.wants_write() {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|s| {
                let st = &mut self.st;
                s.get_ref().write(&st.out[st.out_pos..])
            }) {
                Ok(Ok(n)) => self.st.wrote(n),
                Ok(Err(e)) => return Err(e),
                Err(_) => continue,
            }
        }
        Ok(())
    }

    /// Sends a close frame (best effort) and drops the connection.
    pub fn close(mut self) {
        self.st.queue_frame(0x8, &1000u16.to_be_bytes());
        let _ = self.st.try_flush(&self.fd);
    }
}

/// Reads from a readable socket until it has nothing more, parsing as it
/// goes. Marks the socket not ready after a short read.
pub fn pump(
    guard: &mut tokio::io::unix::AsyncFdReadyGuard<'_, std::net::TcpStream>,
    st: &mut ConnState,
    on_msg: &mut impl FnMut(&mut ConnState, &[u8]),
) -> io::Result<()> {
    let sock = guard.get_inner();
    loop {
        if st.eof || st.close_code.is_some() {
            return Ok(());
        }
        // A frame too big for the shared buffer is read in place.
        if st.frame_len > SCRATCH / 2 {
            let have = st.inbuf.len();
            st.inbuf.resize(st.frame_len, 0);
            match (&*sock).read(&mut st.inbuf[have..]) {
                Ok(0) => {
                    st.inbuf.truncate(have);
                    st.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    st.inbuf.truncate(have + n);
                    if st.inbuf.len() == st.frame_len {
                        let buf = std::mem::take(&mut st.inbuf);
                        let used = st.parse(&buf, on_msg);
                        debug_assert_eq!(used, buf.len());
                        st.frame_len = 0;
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    st.inbuf.truncate(have);
                    guard.clear_ready();
                    return Ok(());
                }
                Err(e) => {
                    st.inbuf.truncate(have);
                    return Err(e);
                }
            }
        }
        let short = SCRATCH_BUF.with(|cell| -> io::Result<Option<bool>> {
            let mut buf = cell.borrow_mut();
            let have = st.inbuf.len();
            buf[..have].copy_from_slice(&st.inbuf);
            let room = buf.len() - have;
            let n = match (&*sock).read(&mut buf[have..]) {
                Ok(0) => {
                    st.eof = true;
                    return Ok(None);
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            };
            let end = have + n;
            let used = st.parse(&buf[..end], on_msg);
            st.inbuf.clear();
            st.inbuf.extend_from_slice(&buf[used..end]);
            if st.inbuf.is_empty() && st.inbuf.capacity() > 4096 {
                st.inbuf = Vec::new();
            }
            st.frame_len = frame_total(&st.inbuf).unwrap_or(0);
            Ok(Some(n < room))
        })?;
        match short {
            None => {
                if !st.eof {
                    guard.clear_ready();
                }
                return Ok(());
            }
            Some(true) => {
                guard.clear_ready();
                return Ok(());
            }
            Some(false) => {}
        }
    }
}

impl ConnState {
    pub fn wants_write(&self) -> bool {
        self.out_pos < self.out.len()
    }

    pub fn closed(&self) -> bool {
        self.eof || self.close_code.is_some()
    }

    fn wrote(&mut self, n: usize) {
        self.out_pos += n;
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
    }

    /// Writes as much of what is queued as the socket takes now.
    pub fn try_flush(&mut self, fd: &AsyncFd<std::net::TcpStream>) -> io::Result<()> {
        while self.wants_write() {
            match fd.get_ref().write(&self.out[self.out_pos..]) {
                Ok(n) => self.wrote(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Queues one binary message.
    pub fn queue_binary(&mut self, payload: &[u8]) {
        self.queue_frame(0x2, payload);
    }

    fn queue_frame(&mut self, opcode: u8, payload: &[u8]) {
        let out = &mut self.out;
        out.reserve(payload.len() + 14);
        out.push(0x80 | opcode);
        let len = payload.len();
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len <= 0xffff {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let mask = (next_rand(&mut self.rng) as u32).to_ne_bytes();
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    }

    /// Parses the complete frames at the start of `buf`; returns how many
    /// bytes they took.
    fn parse(&mut self, buf: &[u8], on_msg: &mut impl FnMut(&mut ConnState, &[u8])) -> usize {
        let mut pos = 0;
        while let Some(h) = header(&buf[pos..]) {
            let total = h.header_len + h.payload_len;
            if buf.len() - pos < total {
                break;
            }
            let start = pos + h.header_len;
            let mut unmasked;
            let mut payload = &buf[start..pos + total];
            if let Some(mask) = h.mask {
                unmasked = payload.to_vec();
                for (i, b) in unmasked.iter_mut().enumerate() {
                    *b ^= mask[i & 3];
                }
                payload = &unmasked;
            } else {
                unmasked = Vec::new();
            }
            pos += total;
            match h.opcode {
                0x2 if h.fin && self.frag.is_empty() => on_msg(self, payload),
                0x2 | 0x0 => {
                    if h.opcode == 0x0 && self.frag.is_empty() {
                        self.odd_frames += 1;
                        continue;
                    }
                    self.frag.extend_from_slice(payload);
                    if h.fin {
                        let msg = std::mem::take(&mut self.frag);
                        on_msg(self, &msg);
                    }
                }
                0x9 => self.queue_frame(0xA, payload),
                0xA => {}
                0x8 => {
                    let code = if payload.len() >= 2 {
                        u16::from_be_bytes([payload[0], payload[1]])
                    } else {
                        1005
                    };
                    self.close_code = Some(code);
                    self.queue_frame(0x8, &payload[..payload.len().min(2)]);
                    return pos;
                }
                _ => self.odd_frames += 1,
            }
            drop(unmasked);
        }
        pos
    }
}

struct Header {
    fin: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    header_len: usize,
    payload_len: usize,
}

fn header(buf: &[u8]) -> Option<Header> {
    if buf.len() < 2 {
        return None;
    }
    let fin = buf[0] & 0x80 != 0;
    let opcode = buf[0] & 0x0f;
    let masked = buf[1] & 0x80 != 0;
    let (payload_len, mut header_len) = match buf[1] & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let mask = if masked {
        let m: [u8; 4] = buf.get(header_len..header_len + 4)?.try_into().ok()?;
        header_len += 4;
        Some(m)
    } else {
        None
    };
    Some(Header {
        fin,
        opcode,
        mask,
        header_len,
        payload_len,
    })
}

/// Total length of the frame `buf` starts with, once its header is there.
fn frame_total(buf: &[u8]) -> Option<usize> {
    header(buf).map(|h| h.header_len + h.payload_len)
}

fn seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let c = COUNTER.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    (t ^ c) | 1
}

/// xorshift64*: cheap, good enough for masking keys and jitter.
pub fn next_rand(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

pub fn new_rng() -> u64 {
    seed()
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_example() {
        assert_eq!(base64(b"the sample nonce"), "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }

    #[test]
    fn frames_are_parsed_whole_fragmented_and_split() {
        let mut st = ConnState {
            inbuf: Vec::new(),
            frame_len: 0,
            frag: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            rng: 1,
            close_code: None,
            eof: false,
            odd_frames: 0,
        };
        let mut wire = vec![0x82, 3, 1, 2, 3];
        wire.extend_from_slice(&[0x02, 1, 9, 0x80, 2, 8, 7]); // fragmented
        wire.extend_from_slice(&[0x89, 1, 5]); // ping
        let mut big = vec![0x82, 126, 0x01, 0x00];
        big.extend(std::iter::repeat_n(4u8, 256));
        wire.extend_from_slice(&big);
        wire.extend_from_slice(&[0x82, 5, 1]); // incomplete
        let mut got = Vec::new();
        let used = st.parse(&wire, &mut |_, m| got.push(m.to_vec()));
        assert_eq!(used, wire.len() - 3);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], vec![1, 2, 3]);
        assert_eq!(got[1], vec![9, 8, 7]);
        assert_eq!(got[2].len(), 256);
        assert_eq!(frame_total(&wire[used..]), Some(7));
        // The ping was answered with a masked pong carrying its payload.
        assert_eq!(st.out[0], 0x8A);
        assert_eq!(st.out[1], 0x81);
        assert_eq!(st.out[6] ^ st.out[2], 5);
    }
}
