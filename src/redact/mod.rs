//! Fail-closed streaming redaction of JSON response bodies.
//!
//! A [`Profile`] (compiled once from a [`RawProfile`] by [`compile`]) says what may leave the
//! gateway; a [`Redactor`] applies it to one body as it streams, in memory that does not grow with
//! the body (the container stack, the current key and at most one scalar are buffered).
//!
//! # Profile syntax
//! ```yaml
//! profiles:
//!   citizen:
//!     default: deny        # deny (allowlist) | allow
//!     dry_run: false       # only report what would be redacted
//!     rules:
//!       - {path: "beneficiaries[*].photo_id_number", action: mask, keep_last: 4, format: "XXXX-XXXX-####"}
//!       - {path: "beneficiaries[*].name", action: keep}
//!       - {path: "**.aadhaar*", action: drop}
//!       - {path: "beneficiaries[*].dose1_date", action: generalize}
//!       - {path: "beneficiaries[*].mobile", action: hmac}
//!       - {path: "beneficiaries[*].comorbidity_ind", action: "null"}
//! ```
//! Paths are dot-separated segments from the root. A key segment is matched case-insensitively on
//! the key's decoded form (`"aadh\u0061ar"` is `aadhaar`) and may contain `*` globs (`aadhaar*`);
//! `[*]` after a segment (or as a segment of its own) means every element of that array; `**` is
//! any depth (zero or more keys or array levels).
//!
//! Actions: `keep`, `drop` (member or array element removed; at the root the output is `null`),
//! `mask` (`#` in `format` = the value's last characters, right-aligned; a value no longer than
//! `keep_last` reveals nothing), `hmac` (`"h:"` + 32 hex digits: HMAC-SHA256 under the profile key,
//! first 16 bytes; equal values give equal tokens within a profile), `generalize` (date → year
//! string; a 4-digit integer stays; anything else becomes `null`), `null`. `mask`, `hmac` and
//! `generalize` apply to strings and numbers (numbers by their text, so `9000000001` and
//! `"9000000001"` hash alike); any other value, including an object or array, becomes `null`.
//!
//! # Precedence
//! Among the rules that match a value, the most specific wins: more literal key segments, then
//! more wildcard segments (key globs and `[*]`), then fewer `**`; among equals the later rule. A
//! rule that matches a value directly always beats a `keep` inherited from a container above it, so
//! `**.aadhaar*: drop` removes an Aadhaar number even inside a kept subtree.
//!
//! # Defaults
//! With `deny`, a value no rule matches is dropped, unless it is a container beneath which a rule
//! that can emit something (any action but `drop`) may match: then it is emitted as a skeleton
//! holding only what the rules let through (an object only if such a rule continues with a key, an
//! array only if it continues with `[*]`; `**` allows both). Inside a kept container unnamed values
//! pass. With `allow`, unnamed values pass.
//!
//! # Dry run
//! The output is the input, byte for byte (whitespace included); the input is still fully
//! validated (so invalid JSON is still an error) and the [`Report`] counts what would have been
//! redacted.
//!
//! # Failure
//! Any invalid input (RFC 8259, plus duplicate keys and the [`Limits`]) is an error; the output
//! written so far must then be discarded and the response aborted. Output is compact JSON (input
//! whitespace is dropped; strings and numbers are copied as written, escapes included) and is
//! valid exactly when the input was.
//!
//! # Memory
//! Per body: the container stack (≤ `max_depth`), the current key, at most one buffered scalar
//! (≤ `max_token`), 8 bytes per member of each open object (duplicate detection, ≤ `max_members`),
//! and a transition cache with fixed caps. Nothing grows with the length of the body.

mod actions;
mod decode;
mod dfa;
#[doc(hidden)]
pub mod fuzzing;
mod pattern;
mod profile;
mod rule;
mod scan;
mod walker;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use decode::{DecodeLimits, Decoder, decoder};
pub use profile::{Profile, compile, derive_key};
pub use rule::{Action, DefaultPolicy, RawProfile, RawRule};

use walker::Walker;

/// The [`Report::fields`] name for values dropped because no rule named them (`deny`).
pub const UNNAMED: &str = "<unnamed>";

/// Bounds on one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of objects and arrays.
    pub max_depth: usize,
    /// Longest string (raw bytes) or number.
    pub max_token: usize,
    /// Most members of one object (duplicate detection keeps 8 bytes per member).
    pub max_members: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_depth: 64, max_token: 1 << 20, max_members: 100_000 }
    }
}

/// What a redaction did: names and counts only, never values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Rule path (as written in the profile) or [`UNNAMED`] → number of values it redacted. Rules
    /// that applied to nothing are absent; `keep` rules are never listed.
    pub fields: BTreeMap<String, u64>,
    /// Values removed: `drop` rules and unnamed values under `deny`.
    pub removed: u64,
    /// Values `mask`ed (a container or literal under `mask` became `null`, counted here too).
    pub masked: u64,
    /// Values replaced by `hmac` tokens (likewise).
    pub hashed: u64,
    /// Values `generalize`d (likewise).
    pub generalized: u64,
    /// Values replaced by `null` rules.
    pub nulled: u64,
    /// The body passed unchanged; the counts say what would have been done.
    pub dry_run: bool,
    /// Bytes fed in and written out.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Records released: elements of the root array, or of the arrays that are members of the
    /// root object (`{"beneficiaries":[…]}`), that the profile did not remove (in a dry run, all
    /// of them: the body passes unchanged).
    pub records: u64,
}

impl Report {
    /// Total number of values redacted (or, in a dry run, that would have been).
    pub fn redacted(&self) -> u64 {
        self.removed + self.masked + self.hashed + self.generalized + self.nulled
    }
}

/// Why a body could not be redacted. The message never contains input bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RedactError {
    /// Not RFC 8259 JSON; `offset` counts decoded bytes from the start of the body.
    #[error("malformed JSON at byte {offset}")]
    Syntax { offset: u64 },
    /// Nesting beyond [`Limits::max_depth`].
    #[error("JSON nested deeper than the limit")]
    TooDeep,
    /// A string or number beyond [`Limits::max_token`].
    #[error("JSON string or number longer than the limit")]
    TokenTooLong,
    /// An object beyond [`Limits::max_members`].
    #[error("JSON object with more members than the limit")]
    TooManyMembers,
    /// The same (decoded) key twice in one object: parsers disagree on which value counts.
    #[error("duplicate key in a JSON object at byte {offset}")]
    DuplicateKey { offset: u64 },
    /// Something other than whitespace after the document.
    #[error("data after the JSON document at byte {offset}")]
    TrailingData { offset: u64 },
    /// The body ended inside the document (or was empty), or a compressed body ended early.
    #[error("body ended before the end of the document")]
    Incomplete,
    /// A `Content-Encoding` the gateway cannot decode (including stacked encodings).
    #[error("unsupported content encoding")]
    UnsupportedEncoding,
    /// The compressed body is corrupt, truncated inside a header, or has data after its end.
    #[error("corrupt compressed body")]
    Corrupt,
    /// The decoded body exceeds [`DecodeLimits`] (total size or expansion ratio).
    #[error("decompressed body larger than allowed")]
    TooLarge,
}

/// Redacts one body. Feed chunks in order, then [`Redactor::finish`]; after an error every later
/// call returns that error.
pub struct Redactor<'p> {
    walker: Walker<'p>,
    dry_run: bool,
    scratch: Vec<u8>,
    failed: Option<RedactError>,
    bytes_in: u64,
    bytes_out: u64,
}

impl<'p> Redactor<'p> {
    /// A redactor for one body under `profile`.
    pub fn new(profile: &'p Profile, limits: Limits) -> Self {
        Redactor {
            walker: Walker::new(profile, limits),
            dry_run: profile.dry_run(),
            scratch: Vec::new(),
            failed: None,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    /// Feed the next chunk; redacted output is appended to `out` (may be empty for a while).
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), RedactError> {
        let start = out.len();
        self.step(out, |w, o| w.feed(chunk, o))?;
        if self.dry_run {
            out.extend_from_slice(chunk);
        }
        self.bytes_in += chunk.len() as u64;
        self.bytes_out += (out.len() - start) as u64;
        Ok(())
    }

    /// End of input: an error if the document is incomplete; otherwise what was done (after an
    /// error, [`Redactor::progress`] still says what was done before it).
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<Report, RedactError> {
        let start = out.len();
        self.step(out, |w, o| w.finish(o))?;
        self.bytes_out += (out.len() - start) as u64;
        Ok(self.progress())
    }

    /// What was done so far (for a body that ended early: the records and fields of the part
    /// that was redacted).
    pub fn progress(&self) -> Report {
        let profile = self.walker.profile();
        let (seen, kept) = self.walker.records;
        let mut report = Report {
            dry_run: self.dry_run,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            records: if self.dry_run { seen } else { kept },
            ..Report::default()
        };
        if self.walker.unnamed > 0 {
            report.fields.insert(UNNAMED.to_string(), self.walker.unnamed);
            report.removed += self.walker.unnamed;
        }
        for (&n, rule) in self.walker.per_rule.iter().zip(&profile.rules) {
            if n == 0 || rule.action == Action::Keep {
                continue;
            }
            *report.fields.entry(rule.path.clone()).or_default() += n;
            *match rule.action {
                Action::Drop | Action::Keep => &mut report.removed,
                Action::Mask => &mut report.masked,
                Action::Hmac => &mut report.hashed,
                Action::Generalize => &mut report.generalized,
                Action::Null => &mut report.nulled,
            } += n;
        }
        report
    }

    /// Bytes held by this redactor's buffers, for tests of the memory bound.
    #[cfg(test)]
    pub(crate) fn footprint(&self) -> usize {
        self.walker.footprint() + self.scratch.capacity()
    }

    /// Run the walker, writing to `out` (or to scratch in a dry run), remembering a failure.
    fn step(
        &mut self,
        out: &mut Vec<u8>,
        f: impl FnOnce(&mut Walker<'p>, &mut Vec<u8>) -> Result<(), RedactError>,
    ) -> Result<(), RedactError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let sink = if self.dry_run {
            self.scratch.clear();
            &mut self.scratch
        } else {
            out
        };
        f(&mut self.walker, sink).inspect_err(|&e| self.failed = Some(e))
    }
}

/// Redact a whole body at once with default [`Limits`].
pub fn redact(profile: &Profile, body: &[u8]) -> Result<(Vec<u8>, Report), RedactError> {
    let mut out = Vec::with_capacity(body.len());
    let mut r = Redactor::new(profile, Limits::default());
    r.feed(body, &mut out)?;
    let report = r.finish(&mut out)?;
    Ok((out, report))
}
