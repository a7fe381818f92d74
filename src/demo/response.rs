//! Response building for the registry: the body type, JSON/PDF responses and the error catalogue.
//!
//! Every error is `{"errorCode":"…","error":"…"}` with the status its variant names; codes follow
//! CoWIN's style (`APPOIN…` appointment, `REGAUT…` authentication, `BENSRC…` search). Codes CoWIN
//! is known to answer are CoWIN's own (`APPOIN0040` a full session and `APPOIN0022` an existing
//! appointment, both 409; `APPOIN0015` an invalid slot; `APPOIN0018` an invalid PIN code); the
//! others are the registry's, in the same style.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};

use super::data::json::{push_key, push_str};

/// The body of every registry response: `Send`, not `Sync`; data is `Bytes`, errors are `io::Error`.
pub type RegistryBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// Why the registry refused a request. Each variant names its status and code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// 401 `REGAUT0001`: missing, invalid or expired identity assertion (or no key configured).
    #[error("Unauthenticated access!")]
    Unauthenticated,
    /// 403 `REGAUT0002`: the assertion's `kind` may not call this endpoint.
    #[error("Access to this resource is not allowed for this caller")]
    WrongKind,
    /// 400 `APPOIN0044`.
    #[error("Please enter valid date")]
    InvalidDate,
    /// 400 `APPOIN0045`.
    #[error("Please enter valid district id")]
    InvalidDistrict,
    /// 400 `APPOIN0018` (CoWIN's code and text).
    #[error("Invalid Pincode")]
    InvalidPincode,
    /// 400 `APPOIN0047`.
    #[error("Please enter valid state id")]
    InvalidState,
    /// 400 `APPOIN0041`: malformed schedule body (dose, beneficiaries).
    #[error("Invalid appointment request")]
    InvalidSchedule,
    /// 400 `APPOIN0042`.
    #[error("Invalid session id")]
    InvalidSession,
    /// 400 `APPOIN0015` (CoWIN's code and text).
    #[error("Invalid Slot Id")]
    InvalidSlot,
    /// 400 `APPOIN0048`.
    #[error("Invalid beneficiary reference id")]
    InvalidBeneficiary,
    /// 409 `APPOIN0040`.
    #[error(
        "This vaccination center is completely booked for the selected date. Please try another date or vaccination center."
    )]
    SessionFull,
    /// 409 `APPOIN0022` (CoWIN's code): a beneficiary already holds an appointment for the dose.
    #[error("An appointment already exists for this beneficiary and dose. Reschedule or cancel it instead.")]
    AlreadyBooked,
    /// 400 `APPOIN0049`: no live appointment has this id.
    #[error("Invalid appointment id")]
    InvalidAppointment,
    /// 400 `APPOIN0050`: a beneficiary to cancel is not part of the appointment.
    #[error("Beneficiary is not part of this appointment")]
    NotInAppointment,
    /// 400 `BENSRC0001`: search needs exactly one valid `mobile` or `photo_id_number`.
    #[error("Please enter a valid mobile number or photo id number")]
    InvalidSearch,
    /// 404 `BENSRC0002`.
    #[error("No beneficiaries found")]
    NoBeneficiaries,
    /// 404 `CRTDWN0001`.
    #[error("Certificate not found")]
    CertificateNotFound,
    /// 400 `GENERR0400`: unreadable or malformed request body.
    #[error("Invalid request body")]
    BadBody,
    /// 413 `GENERR0413`.
    #[error("Request body too large")]
    BodyTooLarge,
    /// 404 `GENERR0404`.
    #[error("Not found")]
    NotFound,
    /// 405 `GENERR0405` (with `Allow`).
    #[error("Method not allowed")]
    MethodNotAllowed(&'static str),
    /// 500 `GENERR0500`.
    #[error("Internal error")]
    Internal,
}

impl RegistryError {
    pub fn status(&self) -> StatusCode {
        match self {
            RegistryError::Unauthenticated => StatusCode::UNAUTHORIZED,
            RegistryError::WrongKind => StatusCode::FORBIDDEN,
            RegistryError::InvalidDate
            | RegistryError::InvalidDistrict
            | RegistryError::InvalidPincode
            | RegistryError::InvalidState
            | RegistryError::InvalidSchedule
            | RegistryError::InvalidSession
            | RegistryError::InvalidSlot
            | RegistryError::InvalidBeneficiary
            | RegistryError::InvalidSearch
            | RegistryError::InvalidAppointment
            | RegistryError::NotInAppointment
            | RegistryError::BadBody => StatusCode::BAD_REQUEST,
            RegistryError::SessionFull | RegistryError::AlreadyBooked => StatusCode::CONFLICT,
            RegistryError::NoBeneficiaries | RegistryError::CertificateNotFound | RegistryError::NotFound => {
                StatusCode::NOT_FOUND
            }
            RegistryError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RegistryError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            RegistryError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::Unauthenticated => "REGAUT0001",
            RegistryError::WrongKind => "REGAUT0002",
            RegistryError::InvalidDate => "APPOIN0044",
            RegistryError::InvalidDistrict => "APPOIN0045",
            RegistryError::InvalidPincode => "APPOIN0018",
            RegistryError::InvalidState => "APPOIN0047",
            RegistryError::InvalidSchedule => "APPOIN0041",
            RegistryError::InvalidSession => "APPOIN0042",
            RegistryError::InvalidSlot => "APPOIN0015",
            RegistryError::InvalidBeneficiary => "APPOIN0048",
            RegistryError::SessionFull => "APPOIN0040",
            RegistryError::AlreadyBooked => "APPOIN0022",
            RegistryError::InvalidAppointment => "APPOIN0049",
            RegistryError::NotInAppointment => "APPOIN0050",
            RegistryError::InvalidSearch => "BENSRC0001",
            RegistryError::NoBeneficiaries => "BENSRC0002",
            RegistryError::CertificateNotFound => "CRTDWN0001",
            RegistryError::BadBody => "GENERR0400",
            RegistryError::BodyTooLarge => "GENERR0413",
            RegistryError::NotFound => "GENERR0404",
            RegistryError::MethodNotAllowed(_) => "GENERR0405",
            RegistryError::Internal => "GENERR0500",
        }
    }

    /// The JSON error response.
    pub fn into_response(self) -> Response<RegistryBody> {
        let mut out = Vec::with_capacity(128);
        out.push(b'{');
        push_key(&mut out, "errorCode");
        push_str(&mut out, self.code());
        out.push(b',');
        push_key(&mut out, "error");
        push_str(&mut out, &self.to_string());
        out.push(b'}');
        let mut resp = json_bytes(self.status(), out);
        if let RegistryError::MethodNotAllowed(allow) = self {
            resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        resp
    }
}

/// A fixed body.
pub(crate) fn full(bytes: impl Into<Bytes>) -> RegistryBody {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

/// A response with `content-type` and body.
pub(crate) fn with_type(status: StatusCode, content_type: &'static str, body: RegistryBody) -> Response<RegistryBody> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A JSON response from already-encoded bytes.
pub(crate) fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response<RegistryBody> {
    with_type(status, "application/json", full(bytes))
}

/// A 200 JSON response of `value`.
pub(crate) fn json_ok<T: serde::Serialize>(value: &T) -> Result<Response<RegistryBody>, RegistryError> {
    let bytes = serde_json::to_vec(value).map_err(|e| {
        tracing::error!(error = %e, "registry: serialising a response failed");
        RegistryError::Internal
    })?;
    Ok(json_bytes(StatusCode::OK, bytes))
}
