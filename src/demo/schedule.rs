//! Seat accounting and `POST /api/v2/appointment/schedule`.
//!
//! Generated capacities never change; [`Bookings`] records seats taken per session, under one lock, so
//! a check-and-take is atomic and a seat is never given twice, whatever the concurrency.

use parking_lot::{Mutex, MutexGuard};
use std::collections::HashMap;

use http::{Response, StatusCode};
use serde::Deserialize;

use super::data::{Dataset, SLOTS, Session, SessionKey, parse_digits};
use super::response::{RegistryBody, RegistryError, json_bytes};

/// Most beneficiaries one schedule request may book (CoWIN's limit per mobile).
pub const MAX_PER_BOOKING: usize = 4;

/// Seats booked per session.
#[derive(Debug, Default)]
pub struct Bookings {
    booked: Mutex<HashMap<SessionKey, u32>>,
}

impl Bookings {
    fn lock(&self) -> MutexGuard<'_, HashMap<SessionKey, u32>> {
        self.booked.lock()
    }

    /// Take `seats` of `session` if that many are still free; all or nothing.
    pub fn try_book(&self, session: &Session, seats: u32) -> bool {
        let mut booked = self.lock();
        let taken = booked.get(&session.key).copied().unwrap_or(0);
        match taken.checked_add(seats) {
            Some(total) if total <= session.available_capacity => {
                booked.insert(session.key, total);
                true
            }
            _ => false,
        }
    }

    /// Seats booked so far on `key`.
    pub fn booked(&self, key: SessionKey) -> u32 {
        self.lock().get(&key).copied().unwrap_or(0)
    }

    /// Subtract booked seats from the generated capacities of `sessions`.
    pub fn apply<'a>(&self, sessions: impl IntoIterator<Item = &'a mut Session>) {
        let booked = self.lock();
        for s in sessions {
            let taken = booked.get(&s.key).copied().unwrap_or(0);
            s.available_capacity = s.available_capacity.saturating_sub(taken);
        }
    }
}

#[derive(Deserialize)]
struct ScheduleRequest {
    dose: u8,
    session_id: String,
    slot: String,
    beneficiaries: Vec<String>,
}

/// Book one seat per listed beneficiary on one session and slot.
pub(crate) fn schedule(
    dataset: &Dataset,
    bookings: &Bookings,
    body: &[u8],
) -> Result<Response<RegistryBody>, RegistryError> {
    let req: ScheduleRequest = serde_json::from_slice(body).map_err(|_| RegistryError::BadBody)?;
    let count = req.beneficiaries.len();
    if !(1..=2).contains(&req.dose) || count == 0 || count > MAX_PER_BOOKING {
        return Err(RegistryError::InvalidSchedule);
    }
    let mut indices = Vec::with_capacity(count);
    for r in &req.beneficiaries {
        let index = parse_digits(r, 14)
            .and_then(|r| dataset.index_of_reference_id(r))
            .ok_or(RegistryError::InvalidBeneficiary)?;
        if indices.contains(&index) {
            return Err(RegistryError::InvalidSchedule);
        }
        indices.push(index);
    }
    let session = dataset
        .parse_session_id(&req.session_id)
        .and_then(|key| dataset.session(key))
        .ok_or(RegistryError::InvalidSession)?;
    if !SLOTS.contains(&req.slot.as_str()) {
        return Err(RegistryError::InvalidSlot);
    }
    if !bookings.try_book(&session, count as u32) {
        return Err(RegistryError::SessionFull);
    }
    let confirmation = uuid::Uuid::new_v4();
    let body = format!("{{\"appointment_confirmation_no\":\"{confirmation}\"}}");
    Ok(json_bytes(StatusCode::OK, body.into_bytes()))
}
