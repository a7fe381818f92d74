//! Calendar dates (proleptic Gregorian, days since 1970-01-01) in CoWIN's `dd-mm-yyyy` form.

use std::fmt;

/// A calendar day. Ordered; `Display` and `Serialize` give `dd-mm-yyyy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i32);

/// Years accepted by [`Date::parse_dmy`] (the API's date parameters).
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2099;

impl Date {
    /// The day `y-m-d`, or `None` when it does not exist.
    pub fn from_ymd(y: i32, m: u32, d: u32) -> Option<Date> {
        if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
            return None;
        }
        Some(Date(days_from_civil(y, m, d)))
    }

    /// The day `days` after 1970-01-01.
    pub const fn from_days(days: i32) -> Date {
        Date(days)
    }

    /// Days since 1970-01-01.
    pub const fn days(self) -> i32 {
        self.0
    }

    /// `(year, month, day)`.
    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.0)
    }

    /// The day `n` days later (earlier when negative).
    pub const fn add_days(self, n: i32) -> Date {
        Date(self.0 + n)
    }

    /// Parse `dd-mm-yyyy` exactly (two-digit day and month, four-digit year within [`YEARS`]).
    pub fn parse_dmy(s: &str) -> Option<Date> {
        let b = s.as_bytes();
        if b.len() != 10 || b[2] != b'-' || b[5] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            b[r].iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
        };
        let (d, m, y) = (num(0..2)?, num(3..5)?, num(6..10)?);
        let y = i32::try_from(y).ok().filter(|y| YEARS.contains(y))?;
        Date::from_ymd(y, m, d)
    }

    /// Append `dd-mm-yyyy` (10 bytes) to `out`.
    pub fn write_dmy(self, out: &mut Vec<u8>) {
        let (y, m, d) = self.ymd();
        let y = y.clamp(0, 9999) as u32;
        let two = |v: u32| [b'0' + (v / 10) as u8, b'0' + (v % 10) as u8];
        out.extend_from_slice(&two(d));
        out.push(b'-');
        out.extend_from_slice(&two(m));
        out.push(b'-');
        out.extend_from_slice(&two(y / 100));
        out.extend_from_slice(&two(y % 100));
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{d:02}-{m:02}-{y:04}")
    }
}

impl serde::Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's `days_from_civil` / `civil_from_days`.
fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i32 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}
