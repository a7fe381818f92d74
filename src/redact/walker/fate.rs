//! What happens to each value, and the output structure around it.
//!
//! A value's fate ([`Disp`]) is decided before its first byte is seen: for a member when its key
//! ends, for an array element when it starts. A member's `"key":` and its separating comma are
//! written only once its value is known to be emitted, so dropping never leaves a dangling comma.

use std::collections::HashSet;

use super::super::actions::{self, Kind};
use super::super::dfa::{DEAD, Dfa};
use super::super::pattern::{self, IdBuild};
use super::super::profile::Profile;
use super::super::rule::Action;
use super::super::scan::{self, Num};
use super::{RedactError, Sink, St, Walker};

/// The fate of the next value.
#[derive(Clone, Copy, Debug)]
pub(super) enum Disp {
    /// Emit; its children are matched against the rules from `state`; unnamed ones pass if `allow`.
    Emit {
        state: u32,
        allow: bool,
    },
    /// Unnamed under `deny`, but a rule that emits may match below: an object (if `key`) or an
    /// array (if `index`) is emitted as a skeleton (unnamed children dropped); anything else is
    /// dropped.
    Skeleton {
        state: u32,
        key: bool,
        index: bool,
    },
    /// Removed (by a rule, or unnamed under `deny`).
    Drop(Option<u16>),
    Null(u16),
    /// Buffered and transformed by the rule (a container becomes `null`).
    Transform(u16),
    /// Inside something already removed: validate only, count nothing.
    Skip,
}

/// One open container.
#[derive(Clone, Copy, Debug)]
pub(super) struct Frame {
    pub(super) obj: bool,
    skip: bool,
    allow: bool,
    state: u32,
    first: bool,
    members: usize,
}

/// Hashes of the keys seen in one open object: a short list (with a 64-bit filter in front of
/// it), a hash set once it grows.
#[derive(Default)]
pub(super) struct Seen {
    filter: u64,
    small: Vec<u64>,
    big: HashSet<u64, IdBuild>,
}

impl Seen {
    const SMALL: usize = 32;

    #[cfg(test)]
    pub(super) fn footprint(&self) -> usize {
        self.small.capacity() * 8 + self.big.capacity() * 9
    }

    fn clear(&mut self) {
        self.filter = 0;
        self.small.clear();
        if self.big.capacity() > 4096 {
            self.big = HashSet::default();
        } else if !self.big.is_empty() {
            self.big.clear();
        }
    }

    /// Add `h`; false if it was there already.
    #[inline]
    fn insert(&mut self, h: u64) -> bool {
        let bit = 1u64 << (h >> 58);
        let maybe = self.filter & bit != 0;
        self.filter |= bit;
        if maybe && self.small.contains(&h) {
            return false;
        }
        if self.small.len() < Self::SMALL {
            self.small.push(h);
            return true;
        }
        self.big.insert(h)
    }
}

/// Rebuild the DFA cache if full, keeping the open containers' states.
#[inline]
fn room(dfa: &mut Dfa, profile: &Profile, frames: &mut [Frame]) {
    if dfa.full() {
        dfa.rebuild(&profile.dfa, &profile.matcher, frames.iter_mut().map(|f| &mut f.state));
    }
}

impl Walker<'_> {
    /// The fate of a value in DFA state `sid` whose parent passes unnamed values iff `allow`.
    #[inline]
    pub(super) fn disp(&self, sid: u32, allow: bool) -> Disp {
        let v = self.dfa.verdict(sid);
        match (v.best, v.action) {
            (Some(_), Some(Action::Keep)) => Disp::Emit { state: sid, allow: true },
            (Some(r), Some(Action::Drop)) => Disp::Drop(Some(r)),
            (Some(r), Some(Action::Null)) => Disp::Null(r),
            (Some(r), Some(Action::Mask | Action::Hmac | Action::Generalize)) => Disp::Transform(r),
            _ if allow => Disp::Emit { state: sid, allow },
            _ if v.below_key || v.below_index => Disp::Skeleton { state: sid, key: v.below_key, index: v.below_index },
            _ => Disp::Drop(None),
        }
    }

    /// An array element is about to start: decide its fate.
    #[inline]
    pub(super) fn element(&mut self) {
        room(&mut self.dfa, self.profile, &mut self.frames);
        self.pending = match self.frames.last() {
            Some(f) if !f.skip => {
                let (state, allow) = (f.state, f.allow);
                let sid = if state == DEAD { DEAD } else { self.dfa.index(&self.profile.matcher, state) };
                self.disp(sid, allow)
            }
            _ => Disp::Skip,
        };
        // A record: an element of the root array, or of an array that is a member of the root object.
        let top = match self.frames.as_slice() {
            [_] => true,
            [root, _] => root.obj,
            _ => false,
        };
        if top {
            self.records.0 += 1;
            if !matches!(self.pending, Disp::Drop(_) | Disp::Skip) {
                self.records.1 += 1;
            }
        }
    }

    /// A member key is complete (its raw bytes end at `buf[at]`, the closing quote): check it,
    /// decide its value's fate.
    #[inline]
    pub(super) fn key_done(&mut self, at: usize, buf: &[u8]) -> Result<(), RedactError> {
        let raw: &[u8] = match self.key_at {
            Some((a, b)) => &buf[a..b],
            None => &self.key,
        };
        if self.s.escaped {
            self.key_dec.clear();
            actions::decode(raw, &mut self.key_dec);
        }
        let key: &[u8] = if self.s.escaped { &self.key_dec } else { raw };
        let h = pattern::hash_key(key);
        let depth = self.frames.len().saturating_sub(1);
        let offset = self.base + at as u64;
        let Some(f) = self.frames.last_mut() else { return Err(RedactError::Syntax { offset }) };
        f.members += 1;
        if f.members > self.limits.max_members {
            return Err(RedactError::TooManyMembers);
        }
        if !self.seen.get_mut(depth).is_some_and(|s| s.insert(h)) {
            return Err(RedactError::DuplicateKey { offset });
        }
        let (skip, allow) = (f.skip, f.allow);
        self.pending = if skip {
            Disp::Skip
        } else {
            room(&mut self.dfa, self.profile, &mut self.frames);
            let state = self.frames.last().map_or(DEAD, |f| f.state);
            let sid = if state == DEAD { DEAD } else { self.dfa.key(&self.profile.matcher, state, key, h) };
            self.disp(sid, allow)
        };
        self.st = St::Colon;
        Ok(())
    }

    /// Before an emitted value: the separating comma and, in an object, `"key":` — as runs of
    /// the input where they are in this chunk.
    #[inline(always)]
    fn prefix(&mut self, buf: &[u8], out: &mut Vec<u8>) {
        let Some(f) = self.frames.last_mut() else { return };
        let (first, obj) = (f.first, f.obj);
        f.first = false;
        match (first, self.comma) {
            (true, _) => {}
            (false, Some(c)) => self.keep(c, c + 1, buf, out),
            (false, None) => self.put(b",", buf, out),
        }
        if obj {
            match self.key_at {
                Some((a, b)) => self.keep(a - 1, b + 1, buf, out),
                None => {
                    self.flush(buf, out);
                    out.push(b'"');
                    out.extend_from_slice(&self.key);
                    out.push(b'"');
                }
            }
            match self.colon {
                Some(c) => self.keep(c, c + 1, buf, out),
                None => self.put(b":", buf, out),
            }
        }
    }

    #[inline]
    fn count(&mut self, rule: Option<u16>) {
        match rule.and_then(|r| self.per_rule.get_mut(usize::from(r))) {
            Some(c) => *c += 1,
            None => self.unnamed += 1,
        }
    }

    /// A removed value: nothing is written, except `null` for the root (output must stay JSON).
    fn removed(&mut self, rule: Option<u16>, buf: &[u8], out: &mut Vec<u8>) {
        self.count(rule);
        if self.frames.is_empty() {
            self.put(b"null", buf, out);
        }
    }

    /// The first byte `b` (at `buf[at]`) of a value.
    #[inline]
    pub(super) fn value(&mut self, b: u8, at: usize, buf: &[u8], out: &mut Vec<u8>) -> Result<(), RedactError> {
        // Fast path: an emitted string or number (most values of most documents).
        if let Disp::Emit { .. } = self.pending {
            if b == b'"' {
                self.kind = Kind::Str { escaped: false };
                self.prefix(buf, out);
                self.keep(at, at + 1, buf, out);
                self.begin_string(Sink::Out);
                return Ok(());
            }
            if let Some(num) = Num::start(b) {
                (self.kind, self.num) = (Kind::Num, num);
                self.prefix(buf, out);
                self.start_token(Sink::Out, at, buf, St::Num, out);
                return Ok(());
            }
        }
        self.any_value(b, at, buf, out)
    }

    /// The first byte of any value, whatever its fate.
    #[inline(never)]
    fn any_value(&mut self, b: u8, at: usize, buf: &[u8], out: &mut Vec<u8>) -> Result<(), RedactError> {
        let (kind, lit) = match b {
            b'{' | b'[' => return self.open(b, at, buf, out),
            b'"' => (Kind::Str { escaped: false }, None),
            b'-' | b'0'..=b'9' => (Kind::Num, None),
            _ => (Kind::Lit, Some(scan::literal(b).ok_or_else(|| self.syntax(at))?)),
        };
        self.kind = kind;
        let sink = match self.pending {
            Disp::Emit { .. } => {
                self.prefix(buf, out);
                Sink::Out
            }
            Disp::Skeleton { .. } => {
                self.removed(None, buf, out);
                Sink::Skip
            }
            Disp::Drop(r) => {
                self.removed(r, buf, out);
                Sink::Skip
            }
            Disp::Null(r) => {
                self.count(Some(r));
                self.prefix(buf, out);
                self.put(b"null", buf, out);
                Sink::Skip
            }
            Disp::Transform(r) => {
                self.count(Some(r));
                self.prefix(buf, out);
                self.rule = r;
                self.tok.clear();
                Sink::Tok
            }
            Disp::Skip => Sink::Skip,
        };
        match (kind, lit) {
            (Kind::Str { .. }, _) => {
                if sink == Sink::Out {
                    self.keep(at, at + 1, buf, out);
                }
                self.begin_string(sink);
            }
            (Kind::Num, _) => {
                self.num = Num::start(b).ok_or_else(|| self.syntax(at))?;
                self.start_token(sink, at, buf, St::Num, out);
            }
            (Kind::Lit, lit) => {
                (self.lit, self.lit_pos) = (lit.unwrap_or(b""), 1);
                self.start_token(sink, at, buf, St::Lit, out);
            }
        }
        Ok(())
    }

    fn open(&mut self, b: u8, at: usize, buf: &[u8], out: &mut Vec<u8>) -> Result<(), RedactError> {
        if self.frames.len() >= self.limits.max_depth {
            return Err(RedactError::TooDeep);
        }
        let obj = b == b'{';
        let (skip, state, allow) = match self.pending {
            Disp::Emit { state, allow } => {
                self.prefix(buf, out);
                self.keep(at, at + 1, buf, out);
                (false, state, allow)
            }
            Disp::Skeleton { state, key, index } if (obj && key) || (!obj && index) => {
                self.prefix(buf, out);
                self.keep(at, at + 1, buf, out);
                (false, state, false)
            }
            Disp::Skeleton { .. } => {
                self.removed(None, buf, out);
                (true, DEAD, false)
            }
            Disp::Drop(r) => {
                self.removed(r, buf, out);
                (true, DEAD, false)
            }
            Disp::Null(r) | Disp::Transform(r) => {
                self.count(Some(r));
                self.prefix(buf, out);
                self.put(b"null", buf, out);
                (true, DEAD, false)
            }
            Disp::Skip => (true, DEAD, false),
        };
        if obj {
            let depth = self.frames.len();
            if self.seen.len() <= depth {
                self.seen.resize_with(depth + 1, Seen::default);
            }
            if let Some(seen) = self.seen.get_mut(depth) {
                seen.clear();
            }
        }
        self.frames.push(Frame { obj, skip, allow, state, first: true, members: 0 });
        self.st = if obj { St::ObjFirst } else { St::ArrFirst };
        Ok(())
    }

    #[inline]
    pub(super) fn close(&mut self, b: u8, at: usize, buf: &[u8], out: &mut Vec<u8>) -> Result<(), RedactError> {
        match self.frames.pop() {
            Some(f) if f.obj == (b == b'}') => {
                if !f.skip {
                    self.keep(at, at + 1, buf, out);
                }
                self.value_done();
                Ok(())
            }
            _ => Err(self.syntax(at)),
        }
    }

    #[inline]
    fn value_done(&mut self) {
        self.st = if self.frames.is_empty() { St::Done } else { St::After };
    }

    /// A scalar is complete: write its transform if it was buffered for one.
    #[inline(always)]
    pub(super) fn scalar_done(&mut self, buf: &[u8], out: &mut Vec<u8>) {
        if self.sink == Sink::Tok {
            self.transformed(buf, out);
        }
        self.value_done();
    }

    /// The buffered scalar's transform, written after the pending run.
    #[inline(never)]
    fn transformed(&mut self, buf: &[u8], out: &mut Vec<u8>) {
        self.flush(buf, out);
        let kind = match self.kind {
            Kind::Str { .. } => Kind::Str { escaped: self.s.escaped },
            other => other,
        };
        let r = usize::from(self.rule);
        if let Some(rule) = self.profile.rules.get(r) {
            if rule.action == Action::Hmac && self.memos.len() <= r {
                self.memos.resize_with(self.profile.rules.len(), Default::default);
            }
            let memo = self.memos.get_mut(r);
            actions::apply(rule, self.profile.mac.as_ref(), kind, &self.tok, &mut self.scratch, memo, out);
        } else {
            out.extend_from_slice(b"null");
        }
        self.sink = Sink::Skip;
    }
}
