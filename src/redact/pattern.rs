//! Rule paths: parsing (`a[*].b`, `**`, case-insensitive `*` globs), specificity ranks, and the NFA
//! over all rules of a profile ([`Matcher`]); also the key hash the walker and the DFA share.
//!
//! An NFA position is (rule, number of segments matched). A container's state is the set of
//! positions its path reached; a child's state is one step from it (a key, or an array index).

use std::hash::{BuildHasherDefault, Hasher};

use super::rule::Action;

/// Longest rule path, in segments.
pub(crate) const MAX_SEGMENTS: usize = 32;

/// A key glob, lowercased: literal, or literal parts around `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Glob {
    Lit(Box<[u8]>),
    Wild(Vec<Box<[u8]>>),
}

impl Glob {
    fn matches(&self, key: &[u8]) -> bool {
        match self {
            Glob::Lit(l) => **l == *key,
            Glob::Wild(parts) => wild_match(parts, key),
        }
    }
}

/// `parts` were split at `*` (so there are ≥ 2): first is a prefix, last a suffix, the middle
/// ones must occur in order. Leftmost-first placement of the middle parts is optimal.
fn wild_match(parts: &[Box<[u8]>], key: &[u8]) -> bool {
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else { return false };
    if key.len() < first.len() + last.len() || !key.starts_with(first) || !key.ends_with(last) {
        return false;
    }
    let mut rest = &key[first.len()..key.len() - last.len()];
    for part in parts[1..parts.len() - 1].iter().filter(|p| !p.is_empty()) {
        match rest.windows(part.len()).position(|w| w == &**part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// One path segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(Glob),
    Index,
    Any,
}

/// Parse a rule path. Errors are messages for the policy author.
pub(crate) fn parse(path: &str) -> Result<Vec<Seg>, String> {
    if path.is_empty() {
        return Err("empty path".into());
    }
    let mut segs = Vec::new();
    for part in path.split('.') {
        if part == "**" {
            if segs.last() == Some(&Seg::Any) {
                return Err("'**.**' is the same as '**'".into());
            }
            segs.push(Seg::Any);
            continue;
        }
        let name = part.trim_end_matches("[*]");
        let indexes = (part.len() - name.len()) / 3;
        if name.is_empty() && indexes == 0 {
            return Err("empty segment (leading, trailing or doubled '.')".into());
        }
        if name.contains(['[', ']']) {
            return Err(format!("bad segment {part:?}: only '[*]' (every element) is supported"));
        }
        if name.contains("**") {
            return Err(format!("bad segment {part:?}: '**' must be a segment of its own"));
        }
        if !name.is_empty() {
            segs.push(Seg::Key(glob(name)));
        }
        segs.extend(std::iter::repeat_n(Seg::Index, indexes));
    }
    if segs.len() > MAX_SEGMENTS {
        return Err(format!("path has more than {MAX_SEGMENTS} segments"));
    }
    Ok(segs)
}

fn glob(name: &str) -> Glob {
    let lower = lowercase(name.as_bytes());
    if lower.contains(&b'*') {
        Glob::Wild(lower.split(|&b| b == b'*').map(Box::from).collect())
    } else {
        Glob::Lit(lower.into())
    }
}

/// Case folding used for keys and patterns alike: ASCII fast path, Unicode lowercase otherwise.
pub(crate) fn lowercase(key: &[u8]) -> Vec<u8> {
    if key.is_ascii() { key.to_ascii_lowercase() } else { String::from_utf8_lossy(key).to_lowercase().into_bytes() }
}

/// Specificity rank of a path: literal keys, then wildcard segments (globs and `[*]`), then fewer
/// `**`; ties go to the later rule (`index`).
pub(crate) fn rank(segs: &[Seg], index: usize) -> u64 {
    let count = |f: fn(&Seg) -> bool| segs.iter().filter(|s| f(s)).count() as u64;
    let lit = count(|s| matches!(s, Seg::Key(Glob::Lit(_))));
    let wild = count(|s| matches!(s, Seg::Key(Glob::Wild(_)) | Seg::Index));
    let any = count(|s| matches!(s, Seg::Any));
    lit << 48 | wild << 32 | (0xFF - any) << 24 | index as u64
}

/// One step along a document path.
#[derive(Clone, Copy)]
pub(crate) enum Step<'a> {
    Key(&'a [u8]),
    Index,
}

/// All rule paths of a profile, as one NFA.
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    pub(crate) paths: Vec<Vec<Seg>>,
    pub(crate) ranks: Vec<u64>,
    /// Each rule's action (every action but `drop` can put something in the output).
    pub(crate) actions: Vec<Action>,
}

/// An NFA position: rule index << 8 | segments matched.
pub(crate) type Pos = u32;

fn pos(rule: usize, seg: usize) -> Pos {
    (rule as u32) << 8 | seg as u32
}

impl Matcher {
    fn split(&self, p: Pos) -> (&[Seg], usize) {
        (&self.paths[(p >> 8) as usize], (p & 0xFF) as usize)
    }

    /// Add the positions `**` reaches by matching nothing; sort; dedupe.
    fn close(&self, set: &mut Vec<Pos>) {
        let mut k = 0;
        while k < set.len() {
            let (segs, j) = self.split(set[k]);
            if segs.get(j) == Some(&Seg::Any) {
                set.push(set[k] + 1);
            }
            k += 1;
        }
        set.sort_unstable();
        set.dedup();
    }

    pub(crate) fn root(&self) -> Vec<Pos> {
        let mut set = (0..self.paths.len()).map(|r| pos(r, 0)).collect();
        self.close(&mut set);
        set
    }

    pub(crate) fn step(&self, set: &[Pos], step: Step<'_>) -> Vec<Pos> {
        let lower = match step {
            Step::Key(k) => Some(lowercase(k)),
            Step::Index => None,
        };
        let mut next = Vec::new();
        for &p in set {
            let (segs, j) = self.split(p);
            match (segs.get(j), &lower) {
                (Some(Seg::Any), _) => next.push(p),
                (Some(Seg::Key(g)), Some(k)) if g.matches(k) => next.push(p + 1),
                (Some(Seg::Index), None) => next.push(p + 1),
                _ => {}
            }
        }
        self.close(&mut next);
        next
    }

    /// The winning rule among those that match here, and whether a rule that emits something can
    /// match below through a key and through an array index.
    pub(crate) fn judge(&self, set: &[Pos]) -> Verdict {
        let mut v = Verdict::NONE;
        let mut best: Option<usize> = None;
        for &p in set {
            let (segs, j) = self.split(p);
            let rule = (p >> 8) as usize;
            match segs.get(j) {
                None => {
                    if best.is_none_or(|b| self.ranks[rule] > self.ranks[b]) {
                        best = Some(rule);
                    }
                }
                Some(_) if self.actions[rule] == Action::Drop => {}
                Some(Seg::Any) => (v.below_key, v.below_index) = (true, true),
                Some(Seg::Key(_)) => v.below_key = true,
                Some(Seg::Index) => v.below_index = true,
            }
        }
        v.best = best.map(|b| b as u16);
        v.action = best.map(|b| self.actions[b]);
        v
    }

    /// The literal keys some position of `set` waits for (to pre-compute their transitions).
    pub(crate) fn literals(&self, set: &[Pos]) -> Vec<Box<[u8]>> {
        let mut lits: Vec<Box<[u8]>> = set
            .iter()
            .filter_map(|&p| {
                let (segs, j) = self.split(p);
                match segs.get(j) {
                    Some(Seg::Key(Glob::Lit(l))) => Some(l.clone()),
                    _ => None,
                }
            })
            .collect();
        lits.sort();
        lits.dedup();
        lits
    }
}

/// 64-bit hash of a decoded key (duplicate detection and the transition cache): 8-byte words
/// folded through 128-bit multiplies (the wyhash mixer), length mixed into the seed.
pub(crate) fn hash_key(key: &[u8]) -> u64 {
    const K0: u64 = 0xa076_1d64_78bd_642f;
    const K1: u64 = 0xe703_7ed1_a0b4_28db;
    fn mix(a: u64, b: u64) -> u64 {
        let r = u128::from(a) * u128::from(b);
        (r as u64) ^ (r >> 64) as u64
    }
    let mut h = mix(K0 ^ key.len() as u64, K1);
    let mut words = key.chunks_exact(8);
    for w in &mut words {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        h = mix(h ^ u64::from_le_bytes(a), K1);
    }
    let tail = words.remainder().iter().rev().fold(0u64, |t, &b| t << 8 | u64::from(b));
    mix(h ^ tail ^ K0, K1)
}

/// A hasher for keys that already are good 64-bit hashes.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = hash_key(bytes) ^ self.0.rotate_left(7);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Hash-keyed map/set builder.
pub(crate) type IdBuild = BuildHasherDefault<IdHasher>;

/// What a path's state says about the value there.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Verdict {
    /// The winning rule among those matching this value, and its action.
    pub(crate) best: Option<u16>,
    pub(crate) action: Option<Action>,
    /// Some rule that emits (not `drop`) may match beneath, if this is an object / an array.
    pub(crate) below_key: bool,
    pub(crate) below_index: bool,
}

impl Verdict {
    pub(crate) const NONE: Verdict = Verdict { best: None, action: None, below_key: false, below_index: false };
}
