//! Calendar dates (days since 1970-01-01, converted with jiff) in CoWIN's `dd-mm-yyyy` form.

use std::fmt;

/// A calendar day. Ordered; `Display` and `Serialize` give `dd-mm-yyyy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i32);

/// Years accepted by [`Date::parse_dmy`] (the API's date parameters).
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2099;

impl Date {
    /// The day `y-m-d`, or `None` when it does not exist.
    pub fn from_ymd(y: i32, m: u32, d: u32) -> Option<Date> {
        let day = jiff::civil::Date::new(i16::try_from(y).ok()?, i8::try_from(m).ok()?, i8::try_from(d).ok()?).ok()?;
        Some(Date((day.duration_since(EPOCH).as_secs() / 86_400) as i32))
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

const EPOCH: jiff::civil::Date = jiff::civil::date(1970, 1, 1);

fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let date = EPOCH.checked_add(jiff::SignedDuration::from_hours(i64::from(z) * 24)).unwrap_or(EPOCH);
    (i32::from(date.year()), date.month() as u32, date.day() as u32)
}
