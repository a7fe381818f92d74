//! Deterministic registry data, computed on demand from `(seed, index)`: no record is stored, so the
//! registry's size is a number, not memory.
//!
//! Layout (all O(1) arithmetic): beneficiaries are numbered `0..N`. Blocks of 4 consecutive mobiles own
//! 10 consecutive beneficiaries; the 4 counts are a permutation of 1, 2, 3, 4 chosen by a hash of
//! `(seed, block)`. Mobile `FIRST_MOBILE + 4·block + j` owns the `j`-th run of its block. A mobile whose
//! run starts at or after `N` is unregistered; the last registered one may own fewer than its count, so
//! every registered mobile has 1–4 beneficiaries and there are exactly `N` in total. Registered mobiles
//! are therefore exactly `FIRST_MOBILE ..= FIRST_MOBILE + mobiles_count() - 1`.
//!
//! Reference ids (14 digits) and Aadhaar-style photo ids (12 digits, first digit 2–9, Verhoeff check
//! digit last) are seed-keyed affine permutations of the index, inverted with a modular inverse.

mod beneficiary;
mod date;
mod geo;
pub(crate) mod json;
mod tables;
mod verhoeff;

#[cfg(test)]
mod tests;

pub use beneficiary::{Appointment, Beneficiary, Gender, VaccinationStatus, Vaccine};
pub use date::{Date, YEARS};
pub(crate) use geo::centre_info;
pub use geo::{
    CAPACITY_ONE_SESSION, CENTRES_PER_DISTRICT, Centre, CentreInfo, District, FlatSession, SLOTS, Session, SessionKey,
    State, VaccineFee, vaccine_fee,
};
pub use verhoeff::{verhoeff_check_digit, verhoeff_valid};

use std::fmt;
use std::ops::Range;

/// The first registered mobile number.
pub const FIRST_MOBILE: u64 = 9_000_000_001;
/// Mobiles from here on are never registered, whatever the size.
pub const UNREGISTERED_FROM: u64 = 9_100_000_000;
/// The largest supported number of beneficiaries (larger sizes are clamped to it).
pub const MAX_BENEFICIARIES: u64 = 200_000_000;

const REF_BASE: u64 = 10_000_000_000_000; // 14-digit reference ids: REF_BASE + perm(index)
const REF_SPAN: u64 = 90_000_000_000_000;
const PID_BASE: u64 = 20_000_000_000; // 11-digit photo id payload: PID_BASE + perm(index)
const PID_SPAN: u64 = 80_000_000_000;

// Hash domains, so that different fields draw independent bits.
pub(crate) const TAG_BLOCK: u64 = 1;
pub(crate) const TAG_RECORD: u64 = 2;
pub(crate) const TAG_FAMILY: u64 = 3;
pub(crate) const TAG_SESSION: u64 = 4;
pub(crate) const TAG_KEYS: u64 = 5;
pub(crate) const TAG_APPOINTMENT: u64 = 6;

/// splitmix64's finaliser.
#[inline]
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A well-mixed 64-bit hash of `(seed, tag, x)`.
#[inline]
pub(crate) fn hash(seed: u64, tag: u64, x: u64) -> u64 {
    mix(mix(seed ^ tag.wrapping_mul(0x9e37_79b9_7f4a_7c15)) ^ x.wrapping_mul(0xd6e8_feb8_6659_fd93))
}

/// A 128-bit identifier shown in UUID shape (`8-4-4-4-12` lowercase hex), e.g. a session id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HexId(pub u128);

impl HexId {
    /// Append the 36-character form to `out`.
    pub fn write(self, out: &mut Vec<u8>) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for i in 0..32 {
            if matches!(i, 8 | 12 | 16 | 20) {
                out.push(b'-');
            }
            out.push(HEX[((self.0 >> (124 - 4 * i)) & 15) as usize]);
        }
    }

    /// Parse the 36-character form (lowercase or uppercase hex).
    pub fn parse(s: &str) -> Option<HexId> {
        let b = s.as_bytes();
        if b.len() != 36 {
            return None;
        }
        let mut v = 0u128;
        for (i, &c) in b.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return None;
                }
                continue;
            }
            v = (v << 4) | u128::from((c as char).to_digit(16)?);
        }
        Some(HexId(v))
    }
}

impl fmt::Display for HexId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::with_capacity(36);
        self.write(&mut out);
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl serde::Serialize for HexId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The deterministic data set `(seed, beneficiaries)`. Cheap to copy; every query is computed.
#[derive(Clone, Copy, Debug)]
pub struct Dataset {
    seed: u64,
    beneficiaries: u64,
    ref_mul: u64,
    ref_inv: u64,
    ref_add: u64,
    pid_mul: u64,
    pid_inv: u64,
    pid_add: u64,
    pub(crate) sid_mask: u128,
}

impl Dataset {
    /// The data set of `beneficiaries` records (clamped to [`MAX_BENEFICIARIES`]) drawn from `seed`.
    pub fn new(seed: u64, beneficiaries: u64) -> Dataset {
        let k = |i: u64| hash(seed, TAG_KEYS, i);
        let (ref_mul, ref_inv) = unit_and_inverse(k(0), REF_SPAN);
        let (pid_mul, pid_inv) = unit_and_inverse(k(1), PID_SPAN);
        Dataset {
            seed,
            beneficiaries: beneficiaries.min(MAX_BENEFICIARIES),
            ref_mul,
            ref_inv,
            ref_add: k(2) % REF_SPAN,
            pid_mul,
            pid_inv,
            pid_add: k(3) % PID_SPAN,
            sid_mask: (u128::from(k(4)) << 64) | u128::from(k(5)),
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Number of beneficiary records `N`.
    pub fn beneficiaries(&self) -> u64 {
        self.beneficiaries
    }

    /// Per-block run offsets: mobile `j` of `block` owns indices `10·block + off[j] .. 10·block + off[j+1]`.
    fn block_offsets(&self, block: u64) -> [u64; 5] {
        let mut k = hash(self.seed, TAG_BLOCK, block) % 24;
        let mut pool = [1u64, 2, 3, 4];
        let mut off = [0u64; 5];
        for j in 0..4 {
            let left = 4 - j as u64;
            let pick = (k % left) as usize;
            k /= left;
            off[j + 1] = off[j] + pool[pick];
            pool[pick..].rotate_left(1);
        }
        off
    }

    /// The owner of beneficiary `index` (any index; meaningful for `index < N`).
    pub fn mobile_of(&self, index: u64) -> u64 {
        let (block, r) = (index / 10, index % 10);
        let off = self.block_offsets(block);
        let j = (1..4).take_while(|&j| off[j] <= r).count() as u64;
        FIRST_MOBILE + 4 * block + j
    }

    /// Indices of the beneficiaries registered to `mobile` (empty when unregistered).
    pub fn indices_of_mobile(&self, mobile: u64) -> Range<u64> {
        if !(FIRST_MOBILE..UNREGISTERED_FROM).contains(&mobile) {
            return 0..0;
        }
        let k = mobile - FIRST_MOBILE;
        let (block, j) = (k / 4, (k % 4) as usize);
        let off = self.block_offsets(block);
        let start = 10 * block + off[j];
        if start >= self.beneficiaries {
            return 0..0;
        }
        start..(10 * block + off[j + 1]).min(self.beneficiaries)
    }

    /// Whether `mobile` has at least one beneficiary.
    pub fn is_registered(&self, mobile: u64) -> bool {
        !self.indices_of_mobile(mobile).is_empty()
    }

    /// Number of registered mobiles (they are `FIRST_MOBILE ..= FIRST_MOBILE + count - 1`).
    pub fn mobiles_count(&self) -> u64 {
        match self.beneficiaries {
            0 => 0,
            n => self.mobile_of(n - 1) - FIRST_MOBILE + 1,
        }
    }

    /// The beneficiaries of `mobile`, in index order (empty when unregistered).
    pub fn beneficiaries_of_mobile(&self, mobile: u64) -> Vec<Beneficiary> {
        self.indices_of_mobile(mobile).map(|i| self.beneficiary(i)).collect()
    }

    /// The 14-digit reference id of beneficiary `index`.
    pub fn reference_id_of(&self, index: u64) -> u64 {
        REF_BASE + affine(index, self.ref_mul, self.ref_add, REF_SPAN)
    }

    /// The index whose reference id is `reference_id`, if it is one of the `N` records.
    pub fn index_of_reference_id(&self, reference_id: u64) -> Option<u64> {
        let y = reference_id.checked_sub(REF_BASE).filter(|&y| y < REF_SPAN)?;
        let x = mul_mod((y + REF_SPAN - self.ref_add) % REF_SPAN, self.ref_inv, REF_SPAN);
        (x < self.beneficiaries).then_some(x)
    }

    /// The 12-digit photo id (Aadhaar-style, valid Verhoeff check digit) of beneficiary `index`.
    pub fn photo_id_of(&self, index: u64) -> u64 {
        let payload = PID_BASE + affine(index, self.pid_mul, self.pid_add, PID_SPAN);
        payload * 10 + u64::from(verhoeff::check_digit_u64(payload))
    }

    /// The index whose photo id is `photo_id`, if it is one of the `N` records.
    pub fn index_of_photo_id(&self, photo_id: u64) -> Option<u64> {
        let payload = photo_id / 10;
        if verhoeff::check_digit_u64(payload) != (photo_id % 10) as u8 {
            return None;
        }
        let y = payload.checked_sub(PID_BASE).filter(|&y| y < PID_SPAN)?;
        let x = mul_mod((y + PID_SPAN - self.pid_add) % PID_SPAN, self.pid_inv, PID_SPAN);
        (x < self.beneficiaries).then_some(x)
    }

    /// Look a record up by its 14-digit reference id string.
    pub fn beneficiary_by_ref(&self, reference_id: &str) -> Option<Beneficiary> {
        let r = parse_digits(reference_id, 14)?;
        self.index_of_reference_id(r).map(|i| self.beneficiary(i))
    }

    /// Look a record up by its 12-digit photo id string.
    pub fn beneficiary_by_photo_id(&self, photo_id: &str) -> Option<Beneficiary> {
        let p = parse_digits(photo_id, 12)?;
        self.index_of_photo_id(p).map(|i| self.beneficiary(i))
    }

    /// The id of the appointment generated for beneficiary `index` (whether or not it has one): the
    /// index and a 64-bit check, masked by the seed, so the registry finds the record from the id.
    pub fn appointment_id_of(&self, index: u64) -> HexId {
        let plain = (u128::from(index) << 64) | u128::from(hash(self.seed, TAG_APPOINTMENT, index));
        HexId(plain ^ self.appointment_mask())
    }

    /// The beneficiary whose generated appointment has id `id`, if it is one of the `N` records and
    /// has a generated appointment.
    pub fn index_of_generated_appointment(&self, id: HexId) -> Option<u64> {
        let plain = id.0 ^ self.appointment_mask();
        let index = (plain >> 64) as u64;
        let check = plain as u64;
        (index < self.beneficiaries && check == hash(self.seed, TAG_APPOINTMENT, index))
            .then_some(index)
            .filter(|&i| self.beneficiary(i).appointment.is_some())
    }

    fn appointment_mask(&self) -> u128 {
        self.sid_mask.rotate_left(64) ^ (u128::from(hash(self.seed, TAG_APPOINTMENT, u64::MAX)) << 64)
    }

    /// The district every beneficiary of `mobile` lives in.
    pub fn district_of_mobile(&self, mobile: u64) -> u32 {
        (hash(self.seed, TAG_FAMILY, mobile) % tables::DISTRICTS.len() as u64) as u32 + 1
    }
}

/// Parse exactly `len` ASCII digits.
pub fn parse_digits(s: &str, len: usize) -> Option<u64> {
    if s.len() != len {
        return None;
    }
    s.bytes().try_fold(0u64, |acc, c| c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0')))
}

/// Parse a 10-digit Indian mobile number (first digit 6–9).
pub fn parse_mobile(s: &str) -> Option<u64> {
    parse_digits(s, 10).filter(|m| *m >= 6_000_000_000)
}

fn mul_mod(a: u64, b: u64, m: u64) -> u64 {
    ((u128::from(a) * u128::from(b)) % u128::from(m)) as u64
}

fn affine(x: u64, mul: u64, add: u64, m: u64) -> u64 {
    (mul_mod(x % m, mul, m) + add) % m
}

/// A multiplier coprime to `m` drawn from `h`, and its inverse modulo `m`.
fn unit_and_inverse(h: u64, m: u64) -> (u64, u64) {
    let mut a = m / 7 + h % (m / 2);
    loop {
        if let Some(inv) = mod_inverse(a, m) {
            return (a, inv);
        }
        a += 1;
    }
}

fn mod_inverse(a: u64, m: u64) -> Option<u64> {
    let (mut r0, mut r1) = (i128::from(m), i128::from(a));
    let (mut t0, mut t1) = (0i128, 1i128);
    while r1 != 0 {
        let q = r0 / r1;
        (r0, r1) = (r1, r0 - q * r1);
        (t0, t1) = (t1, t0 - q * t1);
    }
    (r0 == 1).then(|| t0.rem_euclid(i128::from(m)) as u64)
}
