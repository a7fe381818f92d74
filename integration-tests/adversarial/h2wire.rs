//! A hand-written HTTP/2 client that sends exactly the frames a test writes (RFC 9113), for
//! abuse no ordinary client would commit: header blocks are HPACK literals without indexing
//! (RFC 7541 §6.2.2), so any name or value bytes go on the wire as given.
//!
//! Reading answers needs only the `:status` of a response: the client announces a header table
//! of size 0, so the server never indexes dynamically, and `:status` comes first in a block,
//! either as a static index or as a literal with a (Huffman-coded) three-digit value.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;

pub const CANCEL: u32 = 0x8;
pub const REFUSED_STREAM: u32 = 0x7;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The error code of a RST_STREAM or GOAWAY.
    pub fn error_code(&self) -> Option<u32> {
        let at = match self.kind {
            RST_STREAM => 0,
            GOAWAY => 4,
            _ => return None,
        };
        self.payload.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// One frame's bytes.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    assert!(len < 1 << 24);
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

pub fn rst_stream(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

pub fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    frame(WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541 §5.1); `first` holds the pattern bits.
fn int(value: usize, n: u8, first: u8, out: &mut Vec<u8>) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

/// A header block of literals without indexing, new names, raw (not Huffman) strings.
pub fn hpack(fields: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x00);
        int(name.len(), 7, 0, &mut out);
        out.extend_from_slice(name);
        int(value.len(), 7, 0, &mut out);
        out.extend_from_slice(value);
    }
    out
}

/// The block of a request: pseudo-headers for `method` and `path` on authority `x`, then `extra`.
pub fn request(method: &str, path: &str, extra: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut fields: Vec<(&[u8], &[u8])> = vec![
        (b":method", method.as_bytes()),
        (b":scheme", b"http"),
        (b":authority", b"x"),
        (b":path", path.as_bytes()),
    ];
    fields.extend_from_slice(extra);
    hpack(&fields)
}

/// The `:status` at the start of a response header block (see the module comment).
pub fn status(block: &[u8]) -> Option<u16> {
    let mut i = 0;
    // A dynamic table size update to 0 (our SETTINGS) may come first.
    while block.get(i) == Some(&0x20) {
        i += 1;
    }
    let first = *block.get(i)?;
    let statics = [(8u8, 200u16), (9, 204), (10, 206), (11, 304), (12, 400), (13, 404), (14, 500)];
    if first & 0x80 != 0 {
        return statics.iter().find(|(idx, _)| first & 0x7f == *idx).map(|(_, s)| *s);
    }
    // A literal with the name `:status` (static index 8): with incremental indexing (01),
    // without (0000) or never indexed (0001).
    if !(first == 0x48 || first == 0x08 || first == 0x18) {
        return None;
    }
    let head = *block.get(i + 1)?;
    let len = usize::from(head & 0x7f);
    let value = block.get(i + 2..i + 2 + len)?;
    let digits = if head & 0x80 != 0 { huffman_digits(value)? } else { String::from_utf8(value.to_vec()).ok()? };
    digits.parse().ok()
}

/// Decode a Huffman-coded string of ASCII digits (RFC 7541 Appendix B: `0`–`2` have 5-bit codes
/// 00000–00010, `3`–`9` 6-bit codes 011001–011111).
fn huffman_digits(bytes: &[u8]) -> Option<String> {
    let bits: Vec<u8> = bytes.iter().flat_map(|b| (0..8).rev().map(move |k| (b >> k) & 1)).collect();
    let mut out = String::new();
    let mut at = 0;
    while out.len() < 3 {
        let take = |n: usize| bits.get(at..at + n).map(|b| b.iter().fold(0u8, |v, bit| v << 1 | bit));
        let five = take(5)?;
        if five <= 2 {
            out.push(char::from(b'0' + five));
            at += 5;
            continue;
        }
        let six = take(6)?;
        if (0x19..=0x1f).contains(&six) {
            out.push(char::from(b'3' + (six - 0x19)));
            at += 6;
            continue;
        }
        return None;
    }
    Some(out)
}

/// How one stream ended, as far as the client saw.
#[derive(Debug, Default, Clone)]
pub struct StreamEnd {
    pub status: Option<u16>,
    pub body: Vec<u8>,
    /// The stream's RST_STREAM error code.
    pub reset: Option<u32>,
    /// A GOAWAY's error code, when the connection ended instead.
    pub goaway: Option<u32>,
    /// The connection closed (EOF or reset) before the stream ended.
    pub closed: bool,
    pub ended: bool,
}

/// A client connection.
pub struct H2 {
    pub tcp: TcpStream,
    buf: Vec<u8>,
    /// Frames read but not yet consumed by a caller.
    pub seen: Vec<Frame>,
    pub goaway: Option<Frame>,
    pub eof: bool,
    /// The server's first SETTINGS were acknowledged (later ones are acknowledged on reading).
    ready: bool,
}

impl H2 {
    /// Connect, send the preface and SETTINGS (header table 0, plus `settings`), wait for the
    /// server's SETTINGS and acknowledge them.
    pub async fn open(addr: SocketAddr, settings: &[(u16, u32)]) -> H2 {
        let mut h = H2 {
            tcp: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
            seen: Vec::new(),
            goaway: None,
            eof: false,
            ready: false,
        };
        let mut payload = Vec::new();
        for (id, value) in [(SETTINGS_HEADER_TABLE_SIZE, 0)].iter().chain(settings) {
            payload.extend_from_slice(&id.to_be_bytes());
            payload.extend_from_slice(&value.to_be_bytes());
        }
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &payload));
        h.send(&hello).await;
        loop {
            let f = h.next(Duration::from_secs(5)).await.expect("server SETTINGS");
            if f.kind == SETTINGS && f.flags & ACK == 0 {
                h.send(&frame(SETTINGS, ACK, 0, &[])).await;
                h.ready = true;
                break;
            }
        }
        h
    }

    /// Write bytes; `false` when the server has closed the connection.
    pub async fn send(&mut self, bytes: &[u8]) -> bool {
        self.tcp.write_all(bytes).await.is_ok()
    }

    /// HEADERS for a request on `stream`.
    pub async fn request(&mut self, stream: u32, method: &str, path: &str, extra: &[(&[u8], &[u8])], end: bool) {
        let flags = END_HEADERS | if end { END_STREAM } else { 0 };
        self.send(&frame(HEADERS, flags, stream, &request(method, path, extra))).await;
    }

    /// The next frame within `wait` (`None`: quiet, or the connection ended — see `eof`). PINGs
    /// and SETTINGS are answered; a GOAWAY is kept in `goaway` and returned.
    pub async fn next(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if self.buf.len() >= 9 {
                let len = usize::from(self.buf[0]) << 16 | usize::from(self.buf[1]) << 8 | usize::from(self.buf[2]);
                if self.buf.len() >= 9 + len {
                    let f = Frame {
                        kind: self.buf[3],
                        flags: self.buf[4],
                        stream: u32::from_be_bytes([self.buf[5], self.buf[6], self.buf[7], self.buf[8]]) & 0x7fff_ffff,
                        payload: self.buf[9..9 + len].to_vec(),
                    };
                    self.buf.drain(..9 + len);
                    match f.kind {
                        PING if f.flags & ACK == 0 => {
                            self.send(&frame(PING, ACK, 0, &f.payload)).await;
                        }
                        SETTINGS if f.flags & ACK == 0 && self.ready => {
                            self.send(&frame(SETTINGS, ACK, 0, &[])).await;
                        }
                        GOAWAY => self.goaway = Some(f.clone()),
                        _ => {}
                    }
                    return Some(f);
                }
            }
            if self.eof {
                return None;
            }
            let mut chunk = [0u8; 64 << 10];
            match tokio::time::timeout_at(deadline, self.tcp.read(&mut chunk)).await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => self.eof = true,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Read until `stream` ends (or the connection does, or `wait` passes), keeping other
    /// frames in `seen`.
    pub async fn finish(&mut self, stream: u32, wait: Duration) -> StreamEnd {
        let deadline = tokio::time::Instant::now() + wait;
        let mut end = StreamEnd::default();
        // Frames of this stream read earlier, by another call.
        let earlier: Vec<Frame> = self.seen.iter().filter(|f| f.stream == stream).cloned().collect();
        self.seen.retain(|f| f.stream != stream);
        let mut pending = earlier.into_iter();
        loop {
            let f = match pending.next() {
                Some(f) => f,
                None => {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    match self.next(left).await {
                        Some(f) => f,
                        None => {
                            end.closed = self.eof;
                            end.goaway = self.goaway.as_ref().and_then(Frame::error_code);
                            return end;
                        }
                    }
                }
            };
            if f.stream != stream {
                if f.kind == GOAWAY {
                    end.goaway = f.error_code();
                    // Streams above the last one the server processed will never be answered.
                    let last =
                        u32::from_be_bytes([f.payload[0], f.payload[1], f.payload[2], f.payload[3]]) & 0x7fff_ffff;
                    if stream > last {
                        return end;
                    }
                }
                if f.stream != 0 {
                    self.seen.push(f);
                }
                continue;
            }
            match f.kind {
                HEADERS if end.status.is_none() => end.status = status(&f.payload),
                DATA => end.body.extend_from_slice(&f.payload),
                RST_STREAM => {
                    end.reset = f.error_code();
                    end.ended = true;
                    return end;
                }
                _ => {}
            }
            if matches!(f.kind, HEADERS | DATA) && f.flags & END_STREAM != 0 {
                end.ended = true;
                return end;
            }
        }
    }

    /// Read until the connection ends or is quiet for `quiet`; every frame goes to `seen`.
    pub async fn drain(&mut self, quiet: Duration) {
        while let Some(f) = self.next(quiet).await {
            self.seen.push(f);
        }
    }
}

#[test]
fn status_reads_static_and_huffman_coded_statuses() {
    assert_eq!(status(&[0x88]), Some(200));
    assert_eq!(status(&[0x20, 0x8d]), Some(404));
    // "405" Huffman-coded: 011010 00000 011011, padded with ones.
    let bits = "01101000000011011";
    let mut padded = bits.to_string();
    while !padded.len().is_multiple_of(8) {
        padded.push('1');
    }
    let bytes: Vec<u8> =
        padded.as_bytes().chunks(8).map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap()).collect();
    let mut block = vec![0x08, 0x80 | bytes.len() as u8];
    block.extend(&bytes);
    assert_eq!(status(&block), Some(405));
    assert_eq!(status(&[0x08, 0x03, b'4', b'3', b'1']), Some(431));
}
