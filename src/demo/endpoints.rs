//! The registry's endpoints other than `schedule`: locations, sessions, beneficiary lookups (the
//! naive 2023-leak lookups included), certificates and the partner export.

use http::{Response, StatusCode};
use http_body_util::BodyExt;
use serde::Deserialize;

use super::Registry;
use super::assertion::IdentityClaims;
use super::data::{Beneficiary, Centre, Date, FlatSession, parse_digits, parse_mobile};
use super::export::ExportBody;
use super::pdf::certificate_pdf;
use super::response::{RegistryBody, RegistryError, full, json_bytes, json_ok, with_type};
use super::routes::{SessionQuery, query_param};

type Answer = Result<Response<RegistryBody>, RegistryError>;

/// `GET /api/v2/admin/location/states`.
pub(crate) fn states(reg: &Registry) -> Answer {
    json_ok(&serde_json::json!({ "states": reg.dataset.states(), "ttl": 24 }))
}

/// `GET /api/v2/admin/location/districts/{state_id}`.
pub(crate) fn districts(reg: &Registry, state_id: &str) -> Answer {
    let districts =
        state_id.parse::<u32>().ok().and_then(|id| reg.dataset.districts(id)).ok_or(RegistryError::InvalidState)?;
    json_ok(&serde_json::json!({ "districts": districts, "ttl": 24 }))
}

/// `GET …/sessions[/public]/{calendar,find}By{District,Pin}[&vaccine=…]`: capacities net of bookings.
pub(crate) fn sessions(reg: &Registry, query: SessionQuery, q: &str) -> Answer {
    let mut centres: Vec<Centre> = if query.by_pin() {
        let pin = query_param(q, "pincode").and_then(|p| parse_digits(&p, 6)).ok_or(RegistryError::InvalidPincode)?;
        let date = date_param(q)?;
        reg.dataset.centres_by_pin(pin as u32, date, query.days())
    } else {
        let district =
            query_param(q, "district_id").and_then(|d| d.parse::<u32>().ok()).ok_or(RegistryError::InvalidDistrict)?;
        let date = date_param(q)?;
        reg.dataset.centres_for_days(district, date, query.days()).ok_or(RegistryError::InvalidDistrict)?
    };
    // CoWIN's optional `vaccine` filter (e.g. `COVISHIELD`): only its sessions, only centres with one.
    if let Some(vaccine) = query_param(q, "vaccine").filter(|v| !v.is_empty()) {
        for c in &mut centres {
            c.sessions.retain(|s| s.vaccine.eq_ignore_ascii_case(&vaccine));
            if let Some(fees) = &mut c.vaccine_fees {
                fees.retain(|f| f.vaccine.eq_ignore_ascii_case(&vaccine));
            }
        }
        centres.retain(|c| !c.sessions.is_empty());
    }
    reg.bookings.apply(centres.iter_mut().flat_map(|c| c.sessions.iter_mut()));
    match query {
        SessionQuery::CalendarByDistrict | SessionQuery::CalendarByPin => {
            json_ok(&serde_json::json!({ "centers": centres }))
        }
        SessionQuery::FindByDistrict | SessionQuery::FindByPin => {
            let flat: Vec<FlatSession<'_>> = centres
                .iter()
                .flat_map(|c| c.sessions.iter().map(|session| FlatSession::new(&c.info, session)))
                .collect();
            json_ok(&serde_json::json!({ "sessions": flat }))
        }
    }
}

fn date_param(q: &str) -> Result<Date, RegistryError> {
    query_param(q, "date").and_then(|d| Date::parse_dmy(&d)).ok_or(RegistryError::InvalidDate)
}

/// `GET /api/v2/appointment/beneficiaries`: the records of the assertion's mobile (may be empty).
pub(crate) fn my_beneficiaries(reg: &Registry, claims: &IdentityClaims) -> Answer {
    let mobile = parse_mobile(&claims.sub).ok_or(RegistryError::Unauthenticated)?;
    Ok(beneficiaries_json(reg, &reg.dataset.beneficiaries_of_mobile(mobile)))
}

/// The naive lookup: exactly one of a mobile or a photo id, anyone's records.
fn lookup(reg: &Registry, mobile: Option<&str>, photo_id: Option<&str>) -> Answer {
    let found = match (mobile, photo_id) {
        (Some(m), None) => {
            let m = parse_mobile(m).ok_or(RegistryError::InvalidSearch)?;
            reg.dataset.beneficiaries_of_mobile(m)
        }
        (None, Some(p)) => {
            parse_digits(p, 12).ok_or(RegistryError::InvalidSearch)?;
            reg.dataset.beneficiary_by_photo_id(p).into_iter().collect()
        }
        _ => return Err(RegistryError::InvalidSearch),
    };
    if found.is_empty() {
        return Err(RegistryError::NoBeneficiaries);
    }
    Ok(beneficiaries_json(reg, &found))
}

/// `GET /api/v2/appointment/beneficiaries/search?mobile=…|photo_id_number=…`.
pub(crate) fn search(reg: &Registry, q: &str) -> Answer {
    let mobile = query_param(q, "mobile");
    let photo_id = query_param(q, "photo_id_number");
    lookup(reg, mobile.as_deref(), photo_id.as_deref())
}

#[derive(Deserialize)]
struct PartnerSearch {
    mobile: Option<String>,
    photo_id_number: Option<String>,
}

/// `POST /api/v2/partner/beneficiaries/search` with `{"mobile":"…"}` or `{"photo_id_number":"…"}`.
pub(crate) fn partner_search(reg: &Registry, body: &[u8]) -> Answer {
    let req: PartnerSearch = serde_json::from_slice(body).map_err(|_| RegistryError::BadBody)?;
    lookup(reg, req.mobile.as_deref(), req.photo_id_number.as_deref())
}

/// `GET /api/v2/registration/certificate/public/download?beneficiary_reference_id=…` (any known record).
pub(crate) fn certificate(reg: &Registry, q: &str) -> Answer {
    let b = query_param(q, "beneficiary_reference_id")
        .and_then(|r| reg.dataset.beneficiary_by_ref(&r))
        .ok_or(RegistryError::CertificateNotFound)?;
    let mut resp = with_type(StatusCode::OK, "application/pdf", full(certificate_pdf(&b)));
    let disposition = format!("attachment; filename=\"certificate-{}.pdf\"", b.reference_id);
    if let Ok(v) = http::HeaderValue::from_str(&disposition) {
        resp.headers_mut().insert(http::header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// `GET /api/v2/partner/beneficiaries/export?district_id=N` (0 = every record), streamed.
pub(crate) fn export(reg: &Registry, q: &str) -> Answer {
    let district =
        query_param(q, "district_id").and_then(|d| d.parse::<u32>().ok()).ok_or(RegistryError::InvalidDistrict)?;
    let filter = match district {
        0 => None,
        d => Some(reg.dataset.district(d).ok_or(RegistryError::InvalidDistrict)?.district_id),
    };
    let body = ExportBody::new(reg.dataset, filter).boxed_unsync();
    Ok(with_type(StatusCode::OK, "application/json", body))
}

/// `{"beneficiaries":[…]}` written with the same fast writer as the export, each record with its
/// live appointments (the export shows the generated ones).
pub(crate) fn beneficiaries_json(reg: &Registry, list: &[Beneficiary]) -> Response<RegistryBody> {
    let mut out = Vec::with_capacity(32 + 400 * list.len());
    out.extend_from_slice(b"{\"beneficiaries\":[");
    for (i, b) in list.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        b.write_json_with(&mut out, &reg.bookings.appointments_of(&reg.dataset, b));
    }
    out.extend_from_slice(b"]}");
    json_bytes(StatusCode::OK, out)
}
