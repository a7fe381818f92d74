//! `Content-Encoding` decoding in front of the redactor: `identity`, `gzip`/`x-gzip`, `deflate`
//! (zlib-wrapped per RFC 9110, or raw deflate as some servers send it) and `br`, chunk by chunk.
//! Each step hands the sink at most 64 KiB (gzip: 32 KiB), however much one input chunk expands;
//! a bomb guard bounds total output and the expansion ratio. Anything else — unknown or stacked
//! encodings (`gzip, br`) — is refused: the gateway never passes a body it cannot read.

use std::fmt;
use std::io::Write;

use brotli_decompressor::{BrotliDecompressStream, BrotliResult, BrotliState, StandardAlloc};
use flate2::{Decompress, FlushDecompress, Status};

use super::RedactError;

/// Largest piece handed to the sink by the deflate and brotli decoders.
const PIECE: usize = 64 << 10;

/// Decompression-bomb guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Most decoded bytes in total.
    pub max_output: u64,
    /// Most decoded bytes per encoded byte (checked beyond `ratio_grace` output bytes).
    pub max_ratio: u64,
    /// Output allowed regardless of the ratio (small bodies compress well).
    pub ratio_grace: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits { max_output: u64::MAX, max_ratio: 100, ratio_grace: 1 << 20 }
    }
}

type Brotli = BrotliState<StandardAlloc, StandardAlloc, StandardAlloc>;

enum Engine {
    Identity,
    Gzip(Box<flate2::write::GzDecoder<Vec<u8>>>),
    /// `deflate`, until two bytes tell zlib from raw.
    Sniff(Vec<u8>),
    Deflate(Box<Decompress>),
    Brotli(Box<Brotli>),
}

/// Byte counters and the bomb guard.
struct Meter {
    limits: DecodeLimits,
    total_in: u64,
    total_out: u64,
}

impl Meter {
    fn output(&mut self, n: usize) -> Result<(), RedactError> {
        self.total_out += n as u64;
        let ratio_cap = self.limits.ratio_grace.saturating_add(self.total_in.saturating_mul(self.limits.max_ratio));
        if self.total_out > self.limits.max_output || self.total_out > ratio_cap {
            return Err(RedactError::TooLarge);
        }
        Ok(())
    }
}

/// An incremental decoder for one body; see [`decoder`].
pub struct Decoder {
    engine: Engine,
    meter: Meter,
    buf: Vec<u8>,
    ended: bool,
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.engine {
            Engine::Identity => "identity",
            Engine::Gzip(_) => "gzip",
            Engine::Sniff(_) | Engine::Deflate(_) => "deflate",
            Engine::Brotli(_) => "br",
        };
        f.debug_struct("Decoder").field("encoding", &kind).field("total_out", &self.meter.total_out).finish()
    }
}

/// A decoder for a response's `Content-Encoding` (`None` or empty = identity; names are
/// case-insensitive). Unknown and stacked encodings → [`RedactError::UnsupportedEncoding`].
pub fn decoder(content_encoding: Option<&str>, limits: DecodeLimits) -> Result<Decoder, RedactError> {
    let name = content_encoding.unwrap_or("").trim().to_ascii_lowercase();
    let engine = match name.as_str() {
        "" | "identity" => Engine::Identity,
        "gzip" | "x-gzip" => Engine::Gzip(Box::new(flate2::write::GzDecoder::new(Vec::new()))),
        "deflate" => Engine::Sniff(Vec::with_capacity(2)),
        "br" => Engine::Brotli(Box::new(Brotli::new(
            StandardAlloc::default(),
            StandardAlloc::default(),
            StandardAlloc::default(),
        ))),
        _ => return Err(RedactError::UnsupportedEncoding),
    };
    let buf = if matches!(engine, Engine::Identity | Engine::Gzip(_)) { Vec::new() } else { vec![0; PIECE] };
    Ok(Decoder { engine, meter: Meter { limits, total_in: 0, total_out: 0 }, buf, ended: false })
}

impl Decoder {
    /// Decode the next encoded chunk, handing decoded pieces to `sink` in order.
    pub fn feed<F>(&mut self, mut input: &[u8], mut sink: F) -> Result<(), RedactError>
    where
        F: FnMut(&[u8]) -> Result<(), RedactError>,
    {
        if self.ended && !input.is_empty() {
            return Err(RedactError::Corrupt);
        }
        if let Engine::Sniff(head) = &mut self.engine {
            let take = (2 - head.len()).min(input.len());
            head.extend_from_slice(&input[..take]);
            input = &input[take..];
            let &[a, b] = head.as_slice() else { return Ok(()) };
            let zlib = a & 0x0F == 8 && a >> 4 <= 7 && (u16::from(a) << 8 | u16::from(b)) % 31 == 0;
            let mut d = Box::new(Decompress::new(zlib));
            inflate(&mut d, &[a, b], false, &mut self.buf, &mut self.meter, &mut self.ended, &mut sink)?;
            self.engine = Engine::Deflate(d);
            if self.ended && !input.is_empty() {
                return Err(RedactError::Corrupt);
            }
        }
        match &mut self.engine {
            Engine::Identity => {
                self.meter.total_in += input.len() as u64;
                self.meter.output(input.len())?;
                sink(input)
            }
            Engine::Gzip(gz) => {
                while !input.is_empty() {
                    let n = gz.write(input).map_err(|_| RedactError::Corrupt)?;
                    if n == 0 {
                        return Err(RedactError::Corrupt);
                    }
                    self.meter.total_in += n as u64;
                    input = &input[n..];
                    drain(gz.get_mut(), &mut self.meter, &mut sink)?;
                }
                Ok(())
            }
            Engine::Deflate(d) => inflate(d, input, false, &mut self.buf, &mut self.meter, &mut self.ended, &mut sink),
            Engine::Brotli(st) => unbrotli(st, input, &mut self.buf, &mut self.meter, &mut self.ended, &mut sink),
            Engine::Sniff(_) => Ok(()),
        }
    }

    /// End of the encoded body: flush what is left; an error if the encoded stream is truncated
    /// or corrupt (gzip: CRC and length are checked here).
    pub fn finish<F>(mut self, mut sink: F) -> Result<(), RedactError>
    where
        F: FnMut(&[u8]) -> Result<(), RedactError>,
    {
        match &mut self.engine {
            Engine::Identity => Ok(()),
            Engine::Gzip(gz) => {
                gz.try_finish().map_err(|e| match e.kind() {
                    std::io::ErrorKind::UnexpectedEof => RedactError::Incomplete,
                    _ => RedactError::Corrupt,
                })?;
                drain(gz.get_mut(), &mut self.meter, &mut sink)
            }
            Engine::Sniff(_) => Err(RedactError::Incomplete),
            Engine::Deflate(d) => {
                if !self.ended {
                    inflate(d, &[], true, &mut self.buf, &mut self.meter, &mut self.ended, &mut sink)?;
                }
                if self.ended { Ok(()) } else { Err(RedactError::Incomplete) }
            }
            Engine::Brotli(_) => {
                if self.ended {
                    Ok(())
                } else {
                    Err(RedactError::Incomplete)
                }
            }
        }
    }

    /// Decoded bytes so far.
    pub fn total_out(&self) -> u64 {
        self.meter.total_out
    }
}

fn drain<F>(v: &mut Vec<u8>, meter: &mut Meter, sink: &mut F) -> Result<(), RedactError>
where
    F: FnMut(&[u8]) -> Result<(), RedactError>,
{
    if !v.is_empty() {
        meter.output(v.len())?;
        sink(v)?;
        v.clear();
    }
    Ok(())
}

fn inflate<F>(
    d: &mut Decompress,
    mut input: &[u8],
    finish: bool,
    buf: &mut [u8],
    meter: &mut Meter,
    ended: &mut bool,
    sink: &mut F,
) -> Result<(), RedactError>
where
    F: FnMut(&[u8]) -> Result<(), RedactError>,
{
    let flush = if finish { FlushDecompress::Finish } else { FlushDecompress::None };
    loop {
        let (before_in, before_out) = (d.total_in(), d.total_out());
        let status = d.decompress(input, buf, flush).map_err(|_| RedactError::Corrupt)?;
        let used = usize::try_from(d.total_in() - before_in).unwrap_or(input.len()).min(input.len());
        let made = usize::try_from(d.total_out() - before_out).unwrap_or(0).min(buf.len());
        input = &input[used..];
        meter.total_in += used as u64;
        if made > 0 {
            meter.output(made)?;
            sink(&buf[..made])?;
        }
        if status == Status::StreamEnd {
            *ended = true;
            return if input.is_empty() { Ok(()) } else { Err(RedactError::Corrupt) };
        }
        if used == 0 && made == 0 {
            return Ok(());
        }
    }
}

fn unbrotli<F>(
    st: &mut Brotli,
    input: &[u8],
    buf: &mut [u8],
    meter: &mut Meter,
    ended: &mut bool,
    sink: &mut F,
) -> Result<(), RedactError>
where
    F: FnMut(&[u8]) -> Result<(), RedactError>,
{
    let (mut avail_in, mut in_off, mut counted, mut total) = (input.len(), 0, 0, 0);
    loop {
        let (mut avail_out, mut out_off) = (buf.len(), 0);
        let r = BrotliDecompressStream(
            &mut avail_in,
            &mut in_off,
            input,
            &mut avail_out,
            &mut out_off,
            buf,
            &mut total,
            st,
        );
        meter.total_in += (in_off - counted) as u64;
        counted = in_off;
        if out_off > 0 {
            meter.output(out_off)?;
            sink(&buf[..out_off])?;
        }
        match r {
            BrotliResult::NeedsMoreOutput => {}
            BrotliResult::NeedsMoreInput => return Ok(()),
            BrotliResult::ResultSuccess => {
                *ended = true;
                return if in_off < input.len() { Err(RedactError::Corrupt) } else { Ok(()) };
            }
            BrotliResult::ResultFailure => return Err(RedactError::Corrupt),
        }
    }
}
