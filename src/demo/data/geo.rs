//! States, districts, vaccination centres and their sessions.
//!
//! Geography is fixed (the tables); sessions and capacities depend on the seed. Every district has
//! [`CENTRES_PER_DISTRICT`] centres with `center_id = 600000 + 10·district_id + c` and PIN code
//! `state prefix·10⁴ + (10·district_id + c) mod 10⁴`, one centre per PIN code. Every centre has a
//! session on every date: centre 0 has two, the others one or two.
//!
//! **Capacity-1 rule** ([`CAPACITY_ONE_SESSION`]): in every district, on every date, session 0 of
//! centre 0 (the first session of the first centre listed) starts with `available_capacity` exactly 1.

use serde::Serialize;

use super::tables::{DISTRICTS, STATES};
use super::{Dataset, Date, HexId, TAG_SESSION, hash, mix};

pub const CENTRES_PER_DISTRICT: u32 = 4;
/// `(centre position in its district, session index)` of the session that starts with capacity 1.
pub const CAPACITY_ONE_SESSION: (u32, u8) = (0, 0);
pub const SLOTS: &[&str] = &["09:00AM-11:00AM", "11:00AM-01:00PM", "01:00PM-03:00PM", "03:00PM-05:00PM"];

const CENTRE_ID_BASE: u32 = 600_000;
const CENTRE_KINDS: [&str; 4] =
    ["District Hospital", "Urban PHC", "Community Health Centre", "Multispeciality Hospital"];
const BLOCK_SUFFIXES: [&str; 4] = ["Urban", "Sadar", "Rural", "Town"];
const VACCINES: [&str; 3] = ["COVISHIELD", "COVAXIN", "SPUTNIK V"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct State {
    pub state_id: u32,
    pub state_name: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct District {
    pub district_id: u32,
    pub district_name: &'static str,
    #[serde(skip)]
    pub state_id: u32,
}

/// Identifies one session: a centre, a day and the session's position at that centre on that day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    pub center_id: u32,
    pub date: Date,
    pub index: u8,
}

/// The fixed facts of a centre (what `findBy*` flattens into each session).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CentreInfo {
    pub center_id: u32,
    pub name: String,
    pub address: String,
    pub state_name: &'static str,
    pub district_name: &'static str,
    pub block_name: String,
    pub pincode: u32,
    pub lat: f64,
    pub long: f64,
    pub from: &'static str,
    pub to: &'static str,
    pub fee_type: &'static str,
}

/// One session, in CoWIN's v2 shape (`session_id`, `date`, `available_capacity` and its split by
/// dose, age limits, `vaccine`, `slots` as strings).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Session {
    #[serde(skip)]
    pub key: SessionKey,
    pub session_id: HexId,
    pub date: Date,
    /// Seats left, both doses: always `available_capacity_dose1 + available_capacity_dose2`. The
    /// generated values; the registry subtracts booked seats before answering.
    pub available_capacity: u32,
    pub available_capacity_dose1: u32,
    pub available_capacity_dose2: u32,
    pub min_age_limit: u32,
    /// Present only on sessions with an upper age limit (the 18–44 sessions of 2021).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_limit: Option<u32>,
    /// Every adult may book: 18+ without an upper limit.
    pub allow_all_age: bool,
    pub vaccine: &'static str,
    pub slots: &'static [&'static str],
}

impl Session {
    /// Seats left for `dose` (1 or 2; any other dose has none).
    pub fn capacity_for(&self, dose: u8) -> u32 {
        match dose {
            1 => self.available_capacity_dose1,
            2 => self.available_capacity_dose2,
            _ => 0,
        }
    }

    /// Take `seats` off `dose`'s capacity (never below zero) and keep the total in step.
    pub fn subtract(&mut self, dose: u8, seats: u32) {
        match dose {
            1 => self.available_capacity_dose1 = self.available_capacity_dose1.saturating_sub(seats),
            2 => self.available_capacity_dose2 = self.available_capacity_dose2.saturating_sub(seats),
            _ => {}
        }
        self.available_capacity = self.available_capacity_dose1 + self.available_capacity_dose2;
    }
}

/// A paid centre's price of one vaccine (`vaccine_fees` of `calendarBy*`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VaccineFee {
    pub vaccine: &'static str,
    pub fee: &'static str,
}

/// A centre with its sessions over some days (the `calendarBy*` shape).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Centre {
    #[serde(flatten)]
    pub info: CentreInfo,
    pub sessions: Vec<Session>,
    /// Paid centres only: the price of each vaccine its sessions give.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vaccine_fees: Option<Vec<VaccineFee>>,
}

/// One session with its centre's facts and the session's `fee` (the `findBy*` shape).
#[derive(Clone, Debug, Serialize)]
pub struct FlatSession<'a> {
    #[serde(flatten)]
    pub info: &'a CentreInfo,
    #[serde(flatten)]
    pub session: &'a Session,
    /// `"0"` at free centres, the vaccine's price at paid ones.
    pub fee: &'static str,
}

impl<'a> FlatSession<'a> {
    pub fn new(info: &'a CentreInfo, session: &'a Session) -> FlatSession<'a> {
        let fee = if info.fee_type == "Paid" { vaccine_fee(session.vaccine) } else { "0" };
        FlatSession { info, session, fee }
    }
}

/// The price of one dose at a paid centre, in rupees: the ceilings India set for private
/// hospitals in June 2021.
pub fn vaccine_fee(vaccine: &str) -> &'static str {
    match vaccine {
        "COVAXIN" => "1410",
        "SPUTNIK V" => "1145",
        _ => "780",
    }
}

/// The `center_id` of centre `c` of `district_id`.
pub(crate) fn centre_id(district_id: u32, c: u32) -> u32 {
    CENTRE_ID_BASE + district_id * 10 + c
}

/// `(district_id, position)` of a centre id, if it names a centre.
fn split_centre_id(center_id: u32) -> Option<(u32, u32)> {
    let rest = center_id.checked_sub(CENTRE_ID_BASE)?;
    let (district_id, c) = (rest / 10, rest % 10);
    (district_row(district_id).is_some() && c < CENTRES_PER_DISTRICT).then_some((district_id, c))
}

fn district_row(district_id: u32) -> Option<(u32, &'static str)> {
    DISTRICTS.get(usize::try_from(district_id).ok()?.checked_sub(1)?).copied()
}

fn state_row(state_id: u32) -> Option<(&'static str, i32, i32, u32)> {
    STATES.get(usize::try_from(state_id).ok()?.checked_sub(1)?).copied()
}

/// The fixed facts of `center_id` (seed-independent), if it names a centre.
pub(crate) fn centre_info(center_id: u32) -> Option<CentreInfo> {
    let (district_id, c) = split_centre_id(center_id)?;
    let (state_id, district_name) = district_row(district_id)?;
    let (state_name, lat, long, pin_prefix) = state_row(state_id)?;
    let h = mix(u64::from(center_id));
    let jitter = |bits: u64| ((bits % 2001) as i32 - 1000) as f64;
    Some(CentreInfo {
        center_id,
        name: format!("{district_name} {}", CENTRE_KINDS[c as usize]),
        address: format!("{} Main Road, {district_name}", 10 + 7 * c),
        state_name,
        district_name,
        block_name: format!("{district_name} {}", BLOCK_SUFFIXES[c as usize]),
        pincode: pin_prefix * 10_000 + (district_id * 10 + c) % 10_000,
        lat: (f64::from(lat) * 100.0 + jitter(h)) / 10_000.0,
        long: (f64::from(long) * 100.0 + jitter(h >> 16)) / 10_000.0,
        from: "09:00:00",
        to: "17:00:00",
        fee_type: if c == 3 { "Paid" } else { "Free" },
    })
}

impl Dataset {
    /// All states, by id.
    pub fn states(&self) -> Vec<State> {
        (1..=STATES.len() as u32)
            .map(|state_id| State { state_id, state_name: STATES[state_id as usize - 1].0 })
            .collect()
    }

    /// The districts of `state_id`, or `None` for an unknown state.
    pub fn districts(&self, state_id: u32) -> Option<Vec<District>> {
        state_row(state_id)?;
        let ds = (1..=DISTRICTS.len() as u32).filter_map(|id| self.district(id));
        Some(ds.filter(|d| d.state_id == state_id).collect())
    }

    pub fn district(&self, district_id: u32) -> Option<District> {
        let (state_id, district_name) = district_row(district_id)?;
        Some(District { district_id, district_name, state_id })
    }

    /// Number of districts (ids are `1..=district_count()`).
    pub fn district_count(&self) -> u32 {
        DISTRICTS.len() as u32
    }

    /// Number of sessions at `center_id` on `date` (1 or 2; centre 0 always has 2).
    fn session_count(&self, center_id: u32, date: Date) -> u8 {
        if center_id.is_multiple_of(10) {
            return 2;
        }
        1 + (self.session_hash(center_id, date, 255) & 1) as u8
    }

    fn session_hash(&self, center_id: u32, date: Date, index: u8) -> u64 {
        let x = (u64::from(center_id) << 40) | (u64::from(date.days() as u32) << 8) | u64::from(index);
        hash(self.seed, TAG_SESSION, x)
    }

    /// The session `key` as generated (before bookings), if it exists.
    pub fn session(&self, key: SessionKey) -> Option<Session> {
        let (_, c) = split_centre_id(key.center_id)?;
        if key.index >= self.session_count(key.center_id, key.date) {
            return None;
        }
        let h = self.session_hash(key.center_id, key.date, key.index);
        let capacity_one = (c, key.index) == CAPACITY_ONE_SESSION;
        let available_capacity = match h % 10 {
            _ if capacity_one => 1,
            0 => 0,
            _ => 20 + ((h >> 8) % 180) as u32,
        };
        // The capacity-1 session's seat is a first dose; elsewhere up to half the seats are second doses.
        let dose2 = if capacity_one { 0 } else { available_capacity * ((h >> 32) % 51) as u32 / 100 };
        let min_age_limit = if capacity_one || (h >> 20) & 1 == 0 { 18 } else { 45 };
        // A third of the 18+ sessions are for 18-44 only, as in May-June 2021.
        let max_age_limit = (!capacity_one && min_age_limit == 18 && (h >> 40).is_multiple_of(3)).then_some(44);
        Some(Session {
            key,
            session_id: self.session_id(key),
            date: key.date,
            available_capacity,
            available_capacity_dose1: available_capacity - dose2,
            available_capacity_dose2: dose2,
            min_age_limit,
            max_age_limit,
            allow_all_age: min_age_limit == 18 && max_age_limit.is_none(),
            vaccine: if capacity_one { VACCINES[0] } else { VACCINES[((h >> 24) % 3) as usize] },
            slots: SLOTS,
        })
    }

    /// The public id of session `key`: `(center_id, day, index)` and a 56-bit check, masked by the seed.
    pub fn session_id(&self, key: SessionKey) -> HexId {
        let plain = (u128::from(key.center_id) << 96)
            | (u128::from(key.date.days() as u32) << 64)
            | (u128::from(key.index) << 56)
            | u128::from(self.session_check(key));
        HexId(plain ^ self.sid_mask)
    }

    fn session_check(&self, key: SessionKey) -> u64 {
        self.session_hash(key.center_id, key.date, key.index) >> 8
    }

    /// The session named by a session id string, if it is one this data set issued.
    pub fn parse_session_id(&self, session_id: &str) -> Option<SessionKey> {
        let plain = HexId::parse(session_id)?.0 ^ self.sid_mask;
        let key = SessionKey {
            center_id: (plain >> 96) as u32,
            date: Date::from_days((plain >> 64) as u32 as i32),
            index: (plain >> 56) as u8,
        };
        let check = (plain as u64) & ((1 << 56) - 1);
        (check == self.session_check(key) && self.session(key).is_some()).then_some(key)
    }

    /// Centre `center_id` with its sessions on `days` days from `from`.
    pub fn centre(&self, center_id: u32, from: Date, days: u32) -> Option<Centre> {
        let info = centre_info(center_id)?;
        let mut sessions = Vec::new();
        for d in 0..days as i32 {
            let date = from.add_days(d);
            for index in 0..self.session_count(center_id, date) {
                sessions.extend(self.session(SessionKey { center_id, date, index }));
            }
        }
        let vaccine_fees = (info.fee_type == "Paid").then(|| {
            let mut fees: Vec<VaccineFee> =
                sessions.iter().map(|s| VaccineFee { vaccine: s.vaccine, fee: vaccine_fee(s.vaccine) }).collect();
            fees.sort_by_key(|f| f.vaccine);
            fees.dedup();
            fees
        });
        Some(Centre { info, sessions, vaccine_fees })
    }

    /// The centres of `district_id` with sessions on `days` days from `from` (`None`: no such district).
    pub fn centres_for_days(&self, district_id: u32, from: Date, days: u32) -> Option<Vec<Centre>> {
        district_row(district_id)?;
        let ids = (0..CENTRES_PER_DISTRICT).map(|c| centre_id(district_id, c));
        Some(ids.filter_map(|id| self.centre(id, from, days)).collect())
    }

    /// The centres of `district_id` with their sessions on `date` (empty for an unknown district).
    pub fn centres(&self, district_id: u32, date: Date) -> Vec<Centre> {
        self.centres_for_days(district_id, date, 1).unwrap_or_default()
    }

    /// The centres with PIN code `pincode` (at most one) with sessions on `days` days from `from`.
    pub fn centres_by_pin(&self, pincode: u32, from: Date, days: u32) -> Vec<Centre> {
        let rest = pincode % 10_000;
        let center_id = centre_id(rest / 10, rest % 10);
        match centre_info(center_id) {
            Some(info) if info.pincode == pincode => self.centre(center_id, from, days).into_iter().collect(),
            _ => Vec::new(),
        }
    }

    /// The session of `district_id` on `date` that starts with capacity exactly 1.
    pub fn capacity_one_session(&self, district_id: u32, date: Date) -> Option<SessionKey> {
        district_row(district_id)?;
        let (c, index) = CAPACITY_ONE_SESSION;
        Some(SessionKey { center_id: centre_id(district_id, c), date, index })
    }
}
