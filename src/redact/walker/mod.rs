//! The streaming walker: one pass over JSON bytes, chunk by chunk, validating everything (RFC 8259
//! plus: no duplicate keys, depth/token/width limits) and writing the redacted document. Between
//! chunks it keeps only the container stack, the current key, at most one buffered scalar and the
//! scanner state, so memory does not grow with the body.
//!
//! This file is the byte loop and the token scanners; [`fate`] decides what happens to each value
//! and writes the structure around it.

mod fate;

use super::actions::{Kind, Memo};
use super::dfa::Dfa;
use super::profile::Profile;
use super::rule::DefaultPolicy;
use super::scan::{self, Num, StrScan, StrStep};
use super::{Limits, RedactError};

use fate::{Disp, Frame, Seen};

/// Where the walker stands between two bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    /// A value must start (root, after `:`, after `,` in an array).
    Value,
    /// After `[`: a value or `]`.
    ArrFirst,
    /// After `{`: a key or `}`.
    ObjFirst,
    /// After `,` in an object: a key.
    Key,
    Colon,
    /// After a value inside a container: `,` or the closing bracket.
    After,
    /// The root value is complete: only whitespace may follow.
    Done,
    Str,
    Num,
    Lit,
}

/// Where the bytes of the current token go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sink {
    Out,
    Key,
    Tok,
    Skip,
}

pub(crate) struct Walker<'p> {
    profile: &'p Profile,
    limits: Limits,
    dfa: Dfa,
    frames: Vec<Frame>,
    /// Key hashes of the open objects, by depth (reused across objects).
    seen: Vec<Seen>,
    st: St,
    sink: Sink,
    kind: Kind,
    s: StrScan,
    num: Num,
    lit: &'static [u8],
    lit_pos: usize,
    tok_len: usize,
    /// The current key's raw bytes: `key_at` while they lie in the chunk being walked (no copy),
    /// else `key`. `key_from` is where the key's content started in this chunk.
    key: Vec<u8>,
    key_at: Option<(usize, usize)>,
    key_from: Option<usize>,
    key_dec: Vec<u8>,
    tok: Vec<u8>,
    scratch: Vec<u8>,
    /// Per rule (only `hmac` rules use theirs).
    memos: Vec<Memo>,
    pending: Disp,
    rule: u16,
    /// Output that equals the input is not copied token by token: `buf[run.0..run.1]` of the
    /// current chunk is pending, extended while emitted ranges are contiguous, copied ("flushed")
    /// before anything else is written and at the end of each chunk.
    run: (usize, usize),
    /// Where the last `,` and `:` were in the current chunk (to emit them as part of a run).
    comma: Option<usize>,
    colon: Option<usize>,
    base: u64,
    /// Applications per rule, and unnamed values dropped.
    pub(crate) per_rule: Vec<u64>,
    pub(crate) unnamed: u64,
    /// Records (elements of the top-level arrays): seen, and not removed.
    pub(crate) records: (u64, u64),
}

impl<'p> Walker<'p> {
    pub(crate) fn new(profile: &'p Profile, limits: Limits) -> Self {
        let dfa = profile.dfa.clone();
        let mut w = Walker {
            profile,
            limits,
            frames: Vec::with_capacity(limits.max_depth.min(64)),
            seen: Vec::new(),
            st: St::Value,
            sink: Sink::Skip,
            kind: Kind::Lit,
            s: StrScan::default(),
            num: Num::Zero,
            lit: b"",
            lit_pos: 0,
            tok_len: 0,
            key: Vec::new(),
            key_at: None,
            key_from: None,
            key_dec: Vec::new(),
            tok: Vec::new(),
            scratch: Vec::new(),
            memos: Vec::new(),
            pending: Disp::Skip,
            rule: 0,
            run: (0, 0),
            comma: None,
            colon: None,
            base: 0,
            per_rule: vec![0; profile.rules.len()],
            unnamed: 0,
            records: (0, 0),
            dfa,
        };
        w.pending = w.disp(w.dfa.root(), profile.default_policy() == DefaultPolicy::Allow);
        w
    }

    /// Bytes held by this walker's buffers (capacity), for tests of the memory bound.
    #[cfg(test)]
    pub(crate) fn footprint(&self) -> usize {
        let seen: usize = self.seen.iter().map(Seen::footprint).sum();
        self.key.capacity()
            + self.key_dec.capacity()
            + self.tok.capacity()
            + self.scratch.capacity()
            + self.frames.capacity() * std::mem::size_of::<Frame>()
            + seen
            + self.dfa.footprint()
    }

    /// The profile this walker applies.
    pub(crate) fn profile(&self) -> &'p Profile {
        self.profile
    }

    /// Walk the next chunk, appending redacted output to `out`.
    pub(crate) fn feed(&mut self, buf: &[u8], out: &mut Vec<u8>) -> Result<(), RedactError> {
        let walked = self.walk(buf, out);
        self.flush(buf, out);
        // Nothing may point into this chunk once it is gone.
        if let Some((a, b)) = self.key_at.take() {
            self.key.clear();
            self.key.extend_from_slice(&buf[a..b]);
        }
        (self.key_from, self.comma, self.colon, self.run) = (None, None, None, (0, 0));
        self.base += buf.len() as u64;
        walked
    }

    /// Emit `buf[a..b]` unchanged (deferred: contiguous ranges are copied in one go).
    #[inline]
    fn keep(&mut self, a: usize, b: usize, buf: &[u8], out: &mut Vec<u8>) {
        if a != self.run.1 {
            self.flush(buf, out);
            self.run.0 = a;
        }
        self.run.1 = b;
    }

    /// Copy the pending run of input to the output.
    #[inline]
    fn flush(&mut self, buf: &[u8], out: &mut Vec<u8>) {
        if let Some(run) = buf.get(self.run.0..self.run.1) {
            out.extend_from_slice(run);
        }
        self.run.0 = self.run.1;
    }

    /// Emit bytes of our own (after the pending run).
    #[inline]
    fn put(&mut self, bytes: &[u8], buf: &[u8], out: &mut Vec<u8>) {
        self.flush(buf, out);
        out.extend_from_slice(bytes);
    }

    fn walk(&mut self, buf: &[u8], out: &mut Vec<u8>) -> Result<(), RedactError> {
        let mut i = 0;
        while i < buf.len() {
            i = match self.st {
                St::Str => self.string(buf, i, out)?,
                St::Num => self.number(buf, i, out)?,
                St::Lit => self.literal(buf, i, out)?,
                _ => {
                    let b = buf[i];
                    if scan::is_ws(b) {
                        // A run of whitespace (pretty-printed input) in one go.
                        scan::skip_ws(buf, i + 1)
                    } else {
                        self.structural(b, i, buf, out)?;
                        i + 1
                    }
                }
            };
        }
        Ok(())
    }

    /// End of input: the document must be complete.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), RedactError> {
        match self.st {
            St::Done => Ok(()),
            St::Num if self.frames.is_empty() && self.num.complete() => {
                self.scalar_done(&[], out);
                Ok(())
            }
            _ => Err(RedactError::Incomplete),
        }
    }

    fn syntax(&self, at: usize) -> RedactError {
        RedactError::Syntax { offset: self.base + at as u64 }
    }

    /// A significant byte `b` (at `buf[at]`) outside any token.
    fn structural(&mut self, b: u8, at: usize, buf: &[u8], out: &mut Vec<u8>) -> Result<(), RedactError> {
        match (self.st, b) {
            (St::Value, _) => self.value(b, at, buf, out),
            (St::ArrFirst, b']') => self.close(b, at, buf, out),
            (St::ArrFirst, _) => {
                self.element();
                self.value(b, at, buf, out)
            }
            (St::ObjFirst, b'}') => self.close(b, at, buf, out),
            (St::ObjFirst | St::Key, b'"') => {
                self.key.clear();
                self.key_at = None;
                self.key_from = Some(at + 1);
                self.begin_string(Sink::Key);
                Ok(())
            }
            (St::Colon, b':') => {
                self.st = St::Value;
                self.colon = Some(at);
                Ok(())
            }
            (St::After, b',') => {
                self.comma = Some(at);
                if self.frames.last().is_some_and(|f| f.obj) {
                    self.st = St::Key;
                } else {
                    self.element();
                    self.st = St::Value;
                }
                Ok(())
            }
            (St::After, b']' | b'}') => self.close(b, at, buf, out),
            (St::Done, _) => Err(RedactError::TrailingData { offset: self.base + at as u64 }),
            _ => Err(self.syntax(at)),
        }
    }

    fn begin_string(&mut self, sink: Sink) {
        self.s = StrScan::default();
        self.tok_len = 0;
        self.sink = sink;
        self.st = St::Str;
    }

    fn start_token(&mut self, sink: Sink, at: usize, buf: &[u8], st: St, out: &mut Vec<u8>) {
        self.sink = sink;
        self.tok_len = 1;
        match sink {
            Sink::Out => self.keep(at, at + 1, buf, out),
            Sink::Tok => self.tok.push(buf[at]),
            Sink::Key | Sink::Skip => {}
        }
        self.st = st;
    }

    fn grow(&mut self, n: usize) -> Result<(), RedactError> {
        self.tok_len += n;
        if self.tok_len > self.limits.max_token { Err(RedactError::TokenTooLong) } else { Ok(()) }
    }

    fn string(&mut self, buf: &[u8], i: usize, out: &mut Vec<u8>) -> Result<usize, RedactError> {
        let step = self.s.scan(buf, i).map_err(|j| self.syntax(j))?;
        let (end, content) = match step {
            StrStep::More => (buf.len(), buf.len()),
            StrStep::End(e) => (e, e - 1),
        };
        let done = end != content;
        self.grow(content - i)?;
        match self.sink {
            Sink::Out => self.keep(i, end, buf, out),
            Sink::Tok => self.tok.extend_from_slice(&buf[i..content]),
            Sink::Skip => {}
            Sink::Key => match (done, self.key_from.take()) {
                (true, Some(from)) => self.key_at = Some((from, content)),
                (_, from) => self.key.extend_from_slice(&buf[from.unwrap_or(i)..content]),
            },
        }
        if !done {
            return Ok(end);
        }
        if self.sink != Sink::Key {
            self.scalar_done(buf, out);
            return self.next_member(buf, end, out);
        }
        self.key_done(content, buf)?;
        // Fast path for the common `"key":value`: the colon and the value's first byte.
        let mut j = end;
        if buf.get(j) == Some(&b':') {
            self.st = St::Value;
            self.colon = Some(j);
            j += 1;
            if let Some(&b) = buf.get(j)
                && !scan::is_ws(b)
            {
                self.value(b, j, buf, out)?;
                j += 1;
                // And the value itself, when it is a string or number (one level: a value
                // string never comes back here).
                match self.st {
                    St::Str => return self.string(buf, j, out),
                    St::Num => return self.number(buf, j, out),
                    _ => {}
                }
            }
        }
        Ok(j)
    }

    /// Fast path after a value inside a container: a `,` and a following key's opening quote, or
    /// the closing bracket, are handled here rather than one loop turn each.
    #[inline(always)]
    fn next_member(&mut self, buf: &[u8], mut j: usize, out: &mut Vec<u8>) -> Result<usize, RedactError> {
        if self.st != St::After {
            return Ok(j);
        }
        match buf.get(j) {
            Some(&b @ (b']' | b'}')) => {
                self.close(b, j, buf, out)?;
                j += 1;
            }
            Some(b',') if self.frames.last().is_some_and(|f| f.obj) && buf.get(j + 1) == Some(&b'"') => {
                self.comma = Some(j);
                self.key.clear();
                self.key_at = None;
                self.key_from = Some(j + 2);
                self.begin_string(Sink::Key);
                j += 2;
            }
            _ => {}
        }
        Ok(j)
    }

    fn number(&mut self, buf: &[u8], i: usize, out: &mut Vec<u8>) -> Result<usize, RedactError> {
        let end = self.num.scan(buf, i);
        self.grow(end - i)?;
        self.copy(i, end, buf, out);
        if end < buf.len() {
            if !self.num.complete() {
                return Err(self.syntax(end));
            }
            self.scalar_done(buf, out);
            return self.next_member(buf, end, out);
        }
        Ok(end)
    }

    fn literal(&mut self, buf: &[u8], i: usize, out: &mut Vec<u8>) -> Result<usize, RedactError> {
        let mut j = i;
        while let (Some(&b), Some(&want)) = (buf.get(j), self.lit.get(self.lit_pos)) {
            if b != want {
                return Err(self.syntax(j));
            }
            self.lit_pos += 1;
            j += 1;
        }
        self.grow(j - i)?;
        self.copy(i, j, buf, out);
        if self.lit_pos == self.lit.len() {
            self.scalar_done(buf, out);
        }
        Ok(j)
    }

    fn copy(&mut self, a: usize, b: usize, buf: &[u8], out: &mut Vec<u8>) {
        match self.sink {
            Sink::Out => self.keep(a, b, buf, out),
            Sink::Tok => self.tok.extend_from_slice(&buf[a..b]),
            Sink::Key | Sink::Skip => {}
        }
    }
}
