//! The appointment endpoints, in the shapes of CoWIN's protected API v2:
//!
//! - `POST /api/v2/appointment/schedule` `{"dose","session_id","slot","beneficiaries":[…]}` →
//!   `{"appointment_confirmation_no":"<appointment id>"}`; 409 `APPOIN0040` when the session has
//!   too few seats of the dose, 409 `APPOIN0022` when a beneficiary already holds an appointment
//!   for the dose.
//! - `POST /api/v2/appointment/reschedule` `{"appointment_id","session_id","slot"}` → 204.
//! - `POST /api/v2/appointment/cancel` `{"appointment_id","beneficiariesToCancel":[…]}` → 204.
//! - `GET /api/v2/appointment/appointmentslip/download?appointment_id=…` → a PDF.
//!
//! Like the rest of the registry these trust the gateway for ownership: any valid assertion may act
//! on any appointment. Seats are counted by [`Bookings`](super::bookings::Bookings).

use http::{Response, StatusCode};
use serde::Deserialize;

use super::Registry;
use super::bookings::BookError;
use super::data::{HexId, SLOTS, Session, parse_digits};
use super::pdf::appointment_slip_pdf;
use super::response::{RegistryBody, RegistryError, full, json_bytes, with_type};
use super::routes::query_param;

/// Most beneficiaries one schedule request may book (CoWIN's limit per mobile).
pub const MAX_PER_BOOKING: usize = 4;

type Answer = Result<Response<RegistryBody>, RegistryError>;

/// A dose as CoWIN clients send it: `1` or `"1"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Dose {
    Number(u64),
    Text(String),
}

impl Dose {
    fn value(&self) -> Option<u8> {
        let n = match self {
            Dose::Number(n) => *n,
            Dose::Text(s) => s.parse().ok()?,
        };
        matches!(n, 1 | 2).then_some(n as u8)
    }
}

#[derive(Deserialize)]
struct ScheduleRequest {
    dose: Dose,
    session_id: String,
    slot: String,
    beneficiaries: Vec<String>,
}

#[derive(Deserialize)]
struct RescheduleRequest {
    appointment_id: String,
    session_id: String,
    slot: String,
}

#[derive(Deserialize)]
struct CancelRequest {
    appointment_id: String,
    #[serde(rename = "beneficiariesToCancel")]
    beneficiaries_to_cancel: Vec<String>,
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, RegistryError> {
    serde_json::from_slice(body).map_err(|_| RegistryError::BadBody)
}

fn book_error(e: BookError) -> RegistryError {
    match e {
        BookError::AlreadyBooked => RegistryError::AlreadyBooked,
        BookError::Full => RegistryError::SessionFull,
        BookError::UnknownAppointment => RegistryError::InvalidAppointment,
        BookError::NotInAppointment => RegistryError::NotInAppointment,
    }
}

/// Distinct beneficiary indices of 14-digit reference ids (1 to [`MAX_PER_BOOKING`]).
fn beneficiary_indices(reg: &Registry, refs: &[String]) -> Result<Vec<u64>, RegistryError> {
    if refs.is_empty() || refs.len() > MAX_PER_BOOKING {
        return Err(RegistryError::InvalidSchedule);
    }
    let mut indices = Vec::with_capacity(refs.len());
    for r in refs {
        let index = parse_digits(r, 14)
            .and_then(|r| reg.dataset.index_of_reference_id(r))
            .ok_or(RegistryError::InvalidBeneficiary)?;
        if indices.contains(&index) {
            return Err(RegistryError::InvalidSchedule);
        }
        indices.push(index);
    }
    Ok(indices)
}

/// The session named by `session_id` and the index of `slot` among its slots.
fn session_and_slot(reg: &Registry, session_id: &str, slot: &str) -> Result<(Session, u8), RegistryError> {
    let session = reg
        .dataset
        .parse_session_id(session_id)
        .and_then(|key| reg.dataset.session(key))
        .ok_or(RegistryError::InvalidSession)?;
    let slot = SLOTS.iter().position(|s| *s == slot).ok_or(RegistryError::InvalidSlot)?;
    Ok((session, slot as u8))
}

fn appointment_id(s: &str) -> Result<HexId, RegistryError> {
    HexId::parse(s).ok_or(RegistryError::InvalidAppointment)
}

/// `POST /api/v2/appointment/schedule`: one seat per listed beneficiary on one session and slot.
pub(crate) fn schedule(reg: &Registry, body: &[u8]) -> Answer {
    let req: ScheduleRequest = parse(body)?;
    let dose = req.dose.value().ok_or(RegistryError::InvalidSchedule)?;
    let indices = beneficiary_indices(reg, &req.beneficiaries)?;
    let (session, slot) = session_and_slot(reg, &req.session_id, &req.slot)?;
    let id = HexId(uuid::Uuid::new_v4().as_u128());
    let id = reg.bookings.book(&reg.dataset, &session, slot, dose, &indices, id).map_err(book_error)?;
    let body = format!("{{\"appointment_confirmation_no\":\"{id}\"}}");
    Ok(json_bytes(StatusCode::OK, body.into_bytes()))
}

/// `POST /api/v2/appointment/reschedule`: the whole appointment to another session and slot.
pub(crate) fn reschedule(reg: &Registry, body: &[u8]) -> Answer {
    let req: RescheduleRequest = parse(body)?;
    let id = appointment_id(&req.appointment_id)?;
    let (session, slot) = session_and_slot(reg, &req.session_id, &req.slot)?;
    reg.bookings.reschedule(&reg.dataset, id, &session, slot).map_err(book_error)?;
    Ok(no_content())
}

/// `POST /api/v2/appointment/cancel`: some or all beneficiaries out of an appointment.
pub(crate) fn cancel(reg: &Registry, body: &[u8]) -> Answer {
    let req: CancelRequest = parse(body)?;
    let id = appointment_id(&req.appointment_id)?;
    let indices = beneficiary_indices(reg, &req.beneficiaries_to_cancel)?;
    reg.bookings.cancel(&reg.dataset, id, &indices).map_err(book_error)?;
    Ok(no_content())
}

/// `GET /api/v2/appointment/appointmentslip/download?appointment_id=…`: the slip as a PDF.
pub(crate) fn appointment_slip(reg: &Registry, q: &str) -> Answer {
    let id = query_param(q, "appointment_id").ok_or(RegistryError::InvalidAppointment)?;
    let id = appointment_id(&id)?;
    let booked = reg.bookings.appointment(&reg.dataset, id).ok_or(RegistryError::InvalidAppointment)?;
    let people: Vec<_> = booked.beneficiaries.iter().map(|&i| reg.dataset.beneficiary(i)).collect();
    let pdf = appointment_slip_pdf(&booked, &people);
    let mut resp = with_type(StatusCode::OK, "application/pdf", full(pdf));
    let disposition = format!("attachment; filename=\"appointment-{id}.pdf\"");
    if let Ok(v) = http::HeaderValue::from_str(&disposition) {
        resp.headers_mut().insert(http::header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

fn no_content() -> Response<RegistryBody> {
    let mut resp = Response::new(full(bytes::Bytes::new()));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}
