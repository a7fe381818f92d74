//! A transition cache over the rule NFA ([`Matcher`]): state sets are interned once, key and array
//! index transitions memoised, so the walker's hot path is one lookup by the key's hash.
//!
//! [`Dfa::warm`] pre-computes, at profile compile time, every transition on a literal key that the
//! rules name (and every index step) reachable from the root. Each body starts from a copy of that
//! template (flat arrays: a handful of allocations), adds the transitions its other keys need, and
//! is capped (states, transitions, bytes); when full it is reset to the template and the states
//! still referenced by open containers are re-interned, so memory never grows with the body.

use std::collections::HashMap;

use super::pattern::{IdBuild, Matcher, Pos, Step, Verdict, hash_key};
use super::scan::word_at;

#[cfg(test)]
mod tests;

/// The state with no live positions: nothing can match here or below.
pub(crate) const DEAD: u32 = 0;
/// Caps on one body's cache.
const MAX_STATES: usize = 1024;
const MAX_EDGES: usize = 8192;
const MAX_BYTES: usize = 256 << 10;
/// Caps on the compiled template.
const WARM_STATES: usize = 256;
const WARM_EDGES: usize = 2048;
const NONE: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct DState {
    start: u32,
    len: u32,
    verdict: Verdict,
    index: u32,
}

/// A memoised key transition; the key's bytes are at `key_bytes[off..off + len]`.
#[derive(Clone, Copy, Debug)]
struct Edge {
    from: u32,
    to: u32,
    off: u32,
    len: u32,
}

/// The transition cache. Cloning is cheap (flat arrays and two tables of plain values).
#[derive(Clone, Debug, Default)]
pub(crate) struct Dfa {
    sets: Vec<Pos>,
    states: Vec<DState>,
    /// Set hash → its state (the first one interned, on the rare collision).
    ids: HashMap<u64, u32, IdBuild>,
    /// Key hash mixed with the source state → the transition.
    edges: HashMap<u64, Edge, IdBuild>,
    key_bytes: Vec<u8>,
    root: u32,
}

fn set_hash(set: &[Pos]) -> u64 {
    let bytes: Vec<u8> = set.iter().flat_map(|p| p.to_le_bytes()).collect();
    hash_key(&bytes)
}

fn edge_hash(from: u32, h: u64) -> u64 {
    h ^ u64::from(from).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17)
}

/// Byte equality without a library call (keys are short): eight bytes at a time, the last word
/// overlapping the one before it; fewer than eight bytes one at a time.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
    }
    // Every word read is in bounds (n ≥ 8, i + 8 < n): `word_at` is `Some`.
    let word = |s: &[u8], at: usize| word_at(s, at).unwrap_or(0);
    let mut diff = word(a, n - 8) ^ word(b, n - 8);
    let mut i = 0;
    while i + 8 < n {
        diff |= word(a, i) ^ word(b, i);
        i += 8;
    }
    diff == 0
}

impl Dfa {
    /// An empty cache: just the dead state and the root.
    pub(crate) fn new(m: &Matcher) -> Dfa {
        let mut d = Dfa::default();
        d.intern(m, Vec::new());
        d.root = d.intern(m, m.root());
        d
    }

    /// A cache with every literal-key and index transition reachable from the root (bounded).
    pub(crate) fn warm(m: &Matcher) -> Dfa {
        let mut d = Dfa::new(m);
        let mut queue = vec![d.root];
        let mut next = 0;
        while let Some(&id) = queue.get(next) {
            next += 1;
            if d.states.len() >= WARM_STATES || d.edges.len() >= WARM_EDGES {
                break;
            }
            let known = d.states.len();
            for lit in m.literals(d.set(id)) {
                d.key(m, id, &lit, hash_key(&lit));
            }
            d.index(m, id);
            queue.extend(known as u32..d.states.len() as u32);
        }
        d
    }

    fn set(&self, id: u32) -> &[Pos] {
        self.states
            .get(id as usize)
            .map_or(&[], |s| self.sets.get(s.start as usize..(s.start + s.len) as usize).unwrap_or_default())
    }

    fn intern(&mut self, m: &Matcher, set: Vec<Pos>) -> u32 {
        let h = set_hash(&set);
        if let Some(&id) = self.ids.get(&h)
            && self.set(id) == set.as_slice()
        {
            return id;
        }
        let id = self.states.len() as u32;
        let verdict = m.judge(&set);
        self.states.push(DState { start: self.sets.len() as u32, len: set.len() as u32, verdict, index: NONE });
        self.sets.extend_from_slice(&set);
        self.ids.entry(h).or_insert(id);
        id
    }

    /// Bytes held (capacity), for tests of the memory bound.
    #[cfg(test)]
    pub(crate) fn footprint(&self) -> usize {
        self.sets.capacity() * 4
            + self.states.capacity() * std::mem::size_of::<DState>()
            + self.ids.capacity() * 12
            + self.edges.capacity() * (8 + std::mem::size_of::<Edge>())
            + self.key_bytes.capacity()
    }

    /// The state of the document root.
    pub(crate) fn root(&self) -> u32 {
        self.root
    }

    #[inline]
    pub(crate) fn verdict(&self, id: u32) -> Verdict {
        self.states.get(id as usize).map_or(Verdict::NONE, |s| s.verdict)
    }

    /// Whether the cache must be rebuilt (via [`Dfa::rebuild`]) before the next step.
    #[inline]
    pub(crate) fn full(&self) -> bool {
        self.states.len() >= MAX_STATES || self.edges.len() >= MAX_EDGES || self.key_bytes.len() >= MAX_BYTES
    }

    /// Reset to `template`, keeping (and renumbering) the states in `live`.
    #[cold]
    #[inline(never)]
    pub(crate) fn rebuild<'a>(&mut self, template: &Dfa, m: &Matcher, live: impl Iterator<Item = &'a mut u32>) {
        let live: Vec<&mut u32> = live.collect();
        let sets: Vec<Vec<Pos>> = live.iter().map(|id| self.set(**id).to_vec()).collect();
        self.clone_from(template);
        for (id, set) in live.into_iter().zip(sets) {
            *id = self.intern(m, set);
        }
    }

    /// The state of key `key` (decoded, hash `h`) inside the object in state `from`.
    #[inline]
    pub(crate) fn key(&mut self, m: &Matcher, from: u32, key: &[u8], h: u64) -> u32 {
        let eh = edge_hash(from, h);
        if let Some(e) = self.edges.get(&eh)
            && e.from == from
            && same(self.key_bytes.get(e.off as usize..(e.off + e.len) as usize).unwrap_or_default(), key)
        {
            return e.to;
        }
        self.key_miss(m, from, key, eh)
    }

    #[cold]
    #[inline(never)]
    fn key_miss(&mut self, m: &Matcher, from: u32, key: &[u8], eh: u64) -> u32 {
        let next = m.step(self.set(from), Step::Key(key));
        let to = self.intern(m, next);
        if !self.edges.contains_key(&eh) {
            let off = self.key_bytes.len() as u32;
            self.key_bytes.extend_from_slice(key);
            self.edges.insert(eh, Edge { from, to, off, len: key.len() as u32 });
        }
        to
    }

    /// The state of every element of the array in state `from`.
    #[inline]
    pub(crate) fn index(&mut self, m: &Matcher, from: u32) -> u32 {
        match self.states.get(from as usize) {
            Some(s) if s.index != NONE => s.index,
            Some(_) => {
                let next = m.step(self.set(from), Step::Index);
                let to = self.intern(m, next);
                if let Some(s) = self.states.get_mut(from as usize) {
                    s.index = to;
                }
                to
            }
            None => DEAD,
        }
    }
}
