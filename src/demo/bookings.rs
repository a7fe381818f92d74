//! The registry's booking state: seats taken per session and dose, the appointments, and each
//! beneficiary's live appointment per dose — all under one lock, so every check-and-take is atomic:
//! a seat is never given twice and a beneficiary never holds two appointments for one dose,
//! whatever the concurrency.
//!
//! Generated capacities never change; seats taken are subtracted when sessions are shown
//! ([`Bookings::apply`]). Generated appointments (some partially vaccinated beneficiaries have a
//! dose-2 appointment in the data) are adopted into this state the first time their beneficiary or
//! their id is touched; from then on the state alone says what the beneficiary holds. They hold no
//! seat of their own session (the generated capacities never counted them); once moved by a
//! reschedule they hold one of the new session's, like any booking.
//!
//! [`Bookings::book`] is the one place seats are allocated (a waiting room in front of it decides
//! who gets to call it, not how seats are counted).

use std::collections::{HashMap, HashSet};

use parking_lot::{Mutex, MutexGuard};

use super::data::{Appointment, Beneficiary, Dataset, HexId, Session, SessionKey};

/// One appointment: a session, a slot and a dose, for one or more beneficiaries of one mobile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Booked {
    pub id: HexId,
    pub session: SessionKey,
    /// Index into [`super::data::SLOTS`].
    pub slot: u8,
    pub dose: u8,
    /// Beneficiary indices, in booking order.
    pub beneficiaries: Vec<u64>,
    /// Whether its seats were taken from `session`'s capacity (false for a generated appointment
    /// that was never moved).
    pub holds_seats: bool,
}

/// Why a booking operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// A beneficiary already holds a live appointment for this dose.
    #[error("a beneficiary already holds an appointment for this dose")]
    AlreadyBooked,
    /// Fewer seats left for the dose than beneficiaries asked for.
    #[error("not enough seats left for this dose")]
    Full,
    /// No live appointment has this id.
    #[error("no such appointment")]
    UnknownAppointment,
    /// A beneficiary to cancel is not part of the appointment (or none was named).
    #[error("beneficiary not part of the appointment")]
    NotInAppointment,
}

/// Seats, appointments and live appointments per beneficiary and dose.
#[derive(Debug, Default)]
pub struct Bookings {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Seats taken per (session, dose) by bookings of this registry.
    taken: HashMap<(SessionKey, u8), u32>,
    appointments: HashMap<HexId, Booked>,
    /// (beneficiary index, dose) → its live appointment.
    live: HashMap<(u64, u8), HexId>,
    /// Beneficiaries whose generated appointment (if any) was adopted into `appointments`.
    adopted: HashSet<u64>,
}

impl State {
    /// Make the state the only truth about beneficiary `index`'s appointments.
    fn adopt(&mut self, ds: &Dataset, index: u64) {
        if !self.adopted.insert(index) {
            return;
        }
        if let Some(a) = ds.beneficiary(index).appointment {
            self.live.insert((index, a.dose), a.appointment_id);
            let booked = Booked {
                id: a.appointment_id,
                session: a.session,
                slot: a.slot,
                dose: a.dose,
                beneficiaries: vec![index],
                holds_seats: false,
            };
            self.appointments.insert(a.appointment_id, booked);
        }
    }

    /// The live appointment `id` (a generated one is adopted first).
    fn find(&mut self, ds: &Dataset, id: HexId) -> Option<Booked> {
        if !self.appointments.contains_key(&id)
            && let Some(index) = ds.index_of_generated_appointment(id)
        {
            self.adopt(ds, index);
        }
        self.appointments.get(&id).cloned()
    }

    fn taken(&self, key: SessionKey, dose: u8) -> u32 {
        self.taken.get(&(key, dose)).copied().unwrap_or(0)
    }

    /// Seats of `dose` still free on `session`.
    fn free(&self, session: &Session, dose: u8) -> u32 {
        session.capacity_for(dose).saturating_sub(self.taken(session.key, dose))
    }

    fn take(&mut self, key: SessionKey, dose: u8, seats: u32) {
        *self.taken.entry((key, dose)).or_insert(0) += seats;
    }

    fn release(&mut self, key: SessionKey, dose: u8, seats: u32) {
        if let Some(n) = self.taken.get_mut(&(key, dose)) {
            *n = n.saturating_sub(seats);
            if *n == 0 {
                self.taken.remove(&(key, dose));
            }
        }
    }
}

impl Bookings {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Book one seat of `dose` on `session` at `slot` for each of `beneficiaries` (distinct
    /// indices), as appointment `id`: all or nothing. Refused when any of them already holds an
    /// appointment for `dose` ([`BookError::AlreadyBooked`], checked first) or when fewer seats
    /// are left than asked for ([`BookError::Full`]).
    pub fn book(
        &self,
        ds: &Dataset,
        session: &Session,
        slot: u8,
        dose: u8,
        beneficiaries: &[u64],
        id: HexId,
    ) -> Result<HexId, BookError> {
        let mut st = self.lock();
        for &b in beneficiaries {
            st.adopt(ds, b);
        }
        if beneficiaries.iter().any(|&b| st.live.contains_key(&(b, dose))) {
            return Err(BookError::AlreadyBooked);
        }
        let seats = u32::try_from(beneficiaries.len()).map_err(|_| BookError::Full)?;
        if st.free(session, dose) < seats {
            return Err(BookError::Full);
        }
        st.take(session.key, dose, seats);
        for &b in beneficiaries {
            st.live.insert((b, dose), id);
        }
        let booked =
            Booked { id, session: session.key, slot, dose, beneficiaries: beneficiaries.to_vec(), holds_seats: true };
        st.appointments.insert(id, booked);
        Ok(id)
    }

    /// Move appointment `id` (all its beneficiaries) to `session` at `slot`, if the new session
    /// has a seat of its dose for each; the seats it held are given back.
    pub fn reschedule(&self, ds: &Dataset, id: HexId, session: &Session, slot: u8) -> Result<(), BookError> {
        let mut st = self.lock();
        let booked = st.find(ds, id).ok_or(BookError::UnknownAppointment)?;
        let seats = u32::try_from(booked.beneficiaries.len()).map_err(|_| BookError::Full)?;
        // Moving within one session reuses the seats the appointment holds there.
        let own = if booked.holds_seats && booked.session == session.key { seats } else { 0 };
        if st.free(session, booked.dose) + own < seats {
            return Err(BookError::Full);
        }
        if booked.holds_seats {
            st.release(booked.session, booked.dose, seats);
        }
        st.take(session.key, booked.dose, seats);
        if let Some(b) = st.appointments.get_mut(&id) {
            b.session = session.key;
            b.slot = slot;
            b.holds_seats = true;
        }
        Ok(())
    }

    /// Cancel `beneficiaries` (distinct indices, at least one) out of appointment `id`; their seats
    /// are given back, and the appointment ends with its last beneficiary.
    pub fn cancel(&self, ds: &Dataset, id: HexId, beneficiaries: &[u64]) -> Result<(), BookError> {
        let mut st = self.lock();
        let booked = st.find(ds, id).ok_or(BookError::UnknownAppointment)?;
        if beneficiaries.is_empty() || beneficiaries.iter().any(|b| !booked.beneficiaries.contains(b)) {
            return Err(BookError::NotInAppointment);
        }
        if booked.holds_seats {
            let seats = u32::try_from(beneficiaries.len()).map_err(|_| BookError::NotInAppointment)?;
            st.release(booked.session, booked.dose, seats);
        }
        for &b in beneficiaries {
            st.live.remove(&(b, booked.dose));
        }
        let remaining: Vec<u64> = booked.beneficiaries.iter().copied().filter(|b| !beneficiaries.contains(b)).collect();
        if remaining.is_empty() {
            st.appointments.remove(&id);
        } else if let Some(b) = st.appointments.get_mut(&id) {
            b.beneficiaries = remaining;
        }
        Ok(())
    }

    /// The live appointment `id`, if any.
    pub fn appointment(&self, ds: &Dataset, id: HexId) -> Option<Booked> {
        self.lock().find(ds, id)
    }

    /// The live appointments of `b`, by dose, in the shape of its record's `appointments`.
    pub fn appointments_of(&self, ds: &Dataset, b: &Beneficiary) -> Vec<Appointment> {
        let st = self.lock();
        if !st.adopted.contains(&b.index) {
            return b.appointment.into_iter().collect();
        }
        [1u8, 2]
            .iter()
            .filter_map(|dose| st.live.get(&(b.index, *dose)))
            .filter_map(|id| st.appointments.get(id))
            .map(|a| Appointment {
                appointment_id: a.id,
                session: a.session,
                session_id: ds.session_id(a.session),
                slot: a.slot,
                dose: a.dose,
            })
            .collect()
    }

    /// Seats booked so far on `key` (both doses).
    pub fn booked(&self, key: SessionKey) -> u32 {
        let st = self.lock();
        st.taken(key, 1) + st.taken(key, 2)
    }

    /// Subtract booked seats from the generated capacities of `sessions`, per dose.
    pub fn apply<'a>(&self, sessions: impl IntoIterator<Item = &'a mut Session>) {
        let st = self.lock();
        for s in sessions {
            for dose in [1, 2] {
                s.subtract(dose, st.taken(s.key, dose));
            }
        }
    }
}
