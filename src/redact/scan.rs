//! Byte-level JSON token scanners that survive a chunk boundary at any byte: strings (escapes,
//! `\uXXXX` surrogate pairs, UTF-8 per RFC 3629), numbers (the RFC 8259 grammar) and the literals
//! `true`, `false`, `null`. They validate only; copying bytes to a sink is the walker's job.

/// Bytes a string may contain that need no further attention: ASCII 0x20..=0x7F except `"` and `\`.
static PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0x20;
    while i < 0x80 {
        t[i] = i != b'"' as usize && i != b'\\' as usize;
        i += 1;
    }
    t
};

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The flags of one little-endian word: the high bit of (at least) the lowest byte that is `"`,
/// `\` or < 0x20. Higher flagged bytes may be false positives (borrows), so only the lowest
/// flagged byte is trusted, and it is exact.
#[inline]
fn stop_flags(w: u64) -> u64 {
    let zero = |v: u64| v.wrapping_sub(LO) & !v & HI;
    zero(w ^ (LO * u64::from(b'"'))) | zero(w ^ (LO * u64::from(b'\\'))) | (w.wrapping_sub(LO * 0x20) & !w & HI)
}

/// The little-endian word of the 8 bytes at `buf[i..]`, if there are 8.
#[inline]
pub(crate) fn word_at(buf: &[u8], i: usize) -> Option<u64> {
    let bytes = buf.get(i..i + 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(bytes);
    Some(u64::from_le_bytes(a))
}

/// The index of the first byte at or after `i` that is not [`PLAIN`] (or `buf.len()`), eight bytes
/// at a time (SWAR): a word is skipped when none of its bytes is `"`, `\`, < 0x20 or ≥ 0x80.
#[inline]
fn skip_plain(buf: &[u8], mut i: usize) -> usize {
    while let Some(w) = word_at(buf, i) {
        let special = stop_flags(w) | (w & HI);
        if special != 0 {
            // Exact: the lowest flagged byte is a real special byte.
            return i + (special.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < buf.len() && PLAIN[buf[i] as usize] {
        i += 1;
    }
    i
}

/// The index of the first byte at or after `i` that is `"`, `\` or < 0x20 (or `buf.len()`): the
/// end of a run of text that may hold non-ASCII bytes, eight bytes at a time.
#[inline]
fn skip_text(buf: &[u8], mut i: usize) -> usize {
    while let Some(w) = word_at(buf, i) {
        let f = stop_flags(w);
        if f != 0 {
            return i + (f.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while buf.get(i).is_some_and(|&b| b != b'"' && b != b'\\' && b >= 0x20) {
        i += 1;
    }
    i
}

/// Where an escape sequence stands. `hi` is a pending high surrogate (0 = none: every high
/// surrogate is ≥ 0xD800, so 0 is free as a sentinel).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Esc {
    #[default]
    None,
    Backslash {
        hi: u16,
    },
    Hex {
        n: u8,
        acc: u16,
        hi: u16,
    },
    /// After a high surrogate: the `\` of the low half must follow.
    WantBackslash {
        hi: u16,
    },
}

/// Scanner state inside one string (after its opening quote).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StrScan {
    esc: Esc,
    /// Continuation bytes still owed by a UTF-8 sequence, and the allowed range of the next one.
    need: u8,
    lo: u8,
    hi: u8,
    /// The string contained at least one escape (so its raw bytes are not its decoded form).
    pub(crate) escaped: bool,
}

/// What scanning a slice of a string found.
pub(crate) enum StrStep {
    /// The slice ended inside the string.
    More,
    /// The closing quote is at `index - 1`; the string ends before `index`.
    End(usize),
}

impl StrScan {
    /// Scan `buf[i..]`. `Err(j)` names the offending byte `buf[j]`.
    #[inline]
    pub(crate) fn scan(&mut self, buf: &[u8], mut i: usize) -> Result<StrStep, usize> {
        loop {
            if self.need == 0 && self.esc == Esc::None {
                i = skip_plain(buf, i);
                let Some(&b) = buf.get(i) else { return Ok(StrStep::More) };
                match b {
                    b'"' => return Ok(StrStep::End(i + 1)),
                    b'\\' => {
                        self.esc = Esc::Backslash { hi: 0 };
                        self.escaped = true;
                    }
                    0x00..=0x1F => return Err(i),
                    _ => {
                        // Non-ASCII: the run of text from here is valid UTF-8 as a whole, or the
                        // check goes on a byte at a time from the first sequence that is not
                        // complete and valid in the run (invalid, or cut by its end: a special
                        // byte or the end of this chunk), so errors and offsets are unchanged.
                        let j = skip_text(buf, i);
                        match std::str::from_utf8(&buf[i..j]) {
                            Ok(_) => {
                                i = j;
                                continue;
                            }
                            Err(e) => i += e.valid_up_to(),
                        }
                        let Some(&b) = buf.get(i) else { return Ok(StrStep::More) };
                        self.lead(b).ok_or(i)?;
                    }
                }
                i += 1;
            } else {
                let Some(&b) = buf.get(i) else { return Ok(StrStep::More) };
                if self.need > 0 {
                    if b < self.lo || b > self.hi {
                        return Err(i);
                    }
                    self.need -= 1;
                    (self.lo, self.hi) = (0x80, 0xBF);
                } else {
                    self.escape(b).ok_or(i)?;
                }
                i += 1;
            }
        }
    }

    /// A UTF-8 lead byte (≥ 0x80): set up the continuation bytes it owes.
    fn lead(&mut self, b: u8) -> Option<()> {
        let (need, lo, hi) = match b {
            0xC2..=0xDF => (1, 0x80, 0xBF),
            0xE0 => (2, 0xA0, 0xBF),
            0xE1..=0xEC | 0xEE..=0xEF => (2, 0x80, 0xBF),
            0xED => (2, 0x80, 0x9F),
            0xF0 => (3, 0x90, 0xBF),
            0xF1..=0xF3 => (3, 0x80, 0xBF),
            0xF4 => (3, 0x80, 0x8F),
            _ => return None,
        };
        (self.need, self.lo, self.hi) = (need, lo, hi);
        Some(())
    }

    /// One byte of an escape sequence.
    fn escape(&mut self, b: u8) -> Option<()> {
        self.esc = match self.esc {
            Esc::None => return None,
            Esc::WantBackslash { hi } => (b == b'\\').then_some(Esc::Backslash { hi })?,
            Esc::Backslash { hi } => match b {
                b'u' => Esc::Hex { n: 0, acc: 0, hi },
                // After a high surrogate only `\u` (the low half) may follow.
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' if hi == 0 => Esc::None,
                _ => return None,
            },
            Esc::Hex { n, acc, hi } => {
                let acc = acc << 4 | (b as char).to_digit(16)? as u16;
                if n < 3 {
                    Esc::Hex { n: n + 1, acc, hi }
                } else if hi != 0 {
                    (0xDC00..=0xDFFF).contains(&acc).then_some(Esc::None)?
                } else if (0xD800..=0xDBFF).contains(&acc) {
                    Esc::WantBackslash { hi: acc }
                } else if (0xDC00..=0xDFFF).contains(&acc) {
                    return None;
                } else {
                    Esc::None
                }
            }
        };
        Some(())
    }
}

/// Where a number stands in the grammar `-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Num {
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    Exp,
    ExpSign,
    ExpInt,
}

impl Num {
    /// The state after a number's first byte, or `None` if `b` cannot start a number.
    pub(crate) fn start(b: u8) -> Option<Num> {
        match b {
            b'-' => Some(Num::Minus),
            b'0' => Some(Num::Zero),
            b'1'..=b'9' => Some(Num::Int),
            _ => None,
        }
    }

    /// The state after `b`, or `None` if `b` is not part of this number.
    #[inline]
    pub(crate) fn next(self, b: u8) -> Option<Num> {
        let digit = b.is_ascii_digit();
        Some(match (self, b) {
            (Num::Minus, b'0') => Num::Zero,
            (Num::Minus, _) if digit => Num::Int,
            (Num::Int, _) if digit => Num::Int,
            (Num::Zero | Num::Int, b'.') => Num::Dot,
            (Num::Dot | Num::Frac, _) if digit => Num::Frac,
            (Num::Zero | Num::Int | Num::Frac, b'e' | b'E') => Num::Exp,
            (Num::Exp, b'+' | b'-') => Num::ExpSign,
            (Num::Exp | Num::ExpSign | Num::ExpInt, _) if digit => Num::ExpInt,
            _ => return None,
        })
    }

    /// Whether the bytes so far form a complete number.
    pub(crate) fn complete(self) -> bool {
        matches!(self, Num::Zero | Num::Int | Num::Frac | Num::ExpInt)
    }

    /// Advance over `buf[i..]` while the bytes continue this number; returns the index of the
    /// first byte that does not (or `buf.len()`).
    #[inline]
    pub(crate) fn scan(&mut self, buf: &[u8], mut i: usize) -> usize {
        while let Some(&b) = buf.get(i) {
            match self.next(b) {
                Some(n) => *self = n,
                None => break,
            }
            i += 1;
        }
        i
    }
}

/// The literal a first byte starts, if any.
pub(crate) fn literal(b: u8) -> Option<&'static [u8]> {
    match b {
        b't' => Some(b"true"),
        b'f' => Some(b"false"),
        b'n' => Some(b"null"),
        _ => None,
    }
}

/// JSON insignificant whitespace.
#[inline]
pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// The index of the first byte at or after `i` that is not whitespace (or `buf.len()`).
#[inline]
pub(crate) fn skip_ws(buf: &[u8], i: usize) -> usize {
    i + buf.get(i..).map_or(0, |rest| rest.iter().take_while(|&&b| is_ws(b)).count())
}
