//! Own-records-only for citizens, on both sides of the upstream call.
//!
//! Request side: every parameter that names a subject must be the caller's (see `ownership`);
//! ID numbers and beneficiary references are checked against the caller's own record list, fetched
//! from the registry with the caller's identity and cached briefly per session. Response side:
//! records whose owner field is not the caller's mobile are removed, fail-closed; nothing left is
//! 404. Upstream error bodies on personal routes are reduced to a code and a digit-free message.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};

use hyper::body::Incoming;

use crate::app::{App, Runtime};
use crate::auth::Citizen;
use crate::body::Body;
use crate::error::GatewayError;
use crate::ownership::{self, OwnershipError, ResponseRule, Subjects};
use crate::policy::citizens::SubjectSource;
use crate::upstream::assertion::IDENTITY_HEADER;

pub fn ownership_error(e: OwnershipError) -> GatewayError {
    match e {
        OwnershipError::Ambiguous(why) => GatewayError::AmbiguousSubject(why),
        OwnershipError::NotOwned => GatewayError::NotOwned,
        OwnershipError::NothingLeft => GatewayError::NoRecords,
        OwnershipError::BadUpstream(why) => {
            tracing::warn!(reason = why, "upstream response refused by the ownership filter");
            GatewayError::UpstreamBadResponse
        }
    }
}

/// The caller's own subjects: just the mobile, or with their records when a rule needs them.
pub async fn subjects(
    app: &App,
    rt: &Runtime,
    citizen: &Citizen,
    assertion: &str,
    with_records: bool,
    request_id: &str,
) -> Result<Arc<Subjects>, GatewayError> {
    let mobile_only = || Arc::new(Subjects { mobile: citizen.mobile.as_str().to_string(), ..Subjects::default() });
    if !with_records {
        return Ok(mobile_only());
    }
    let Some(source) = rt.policy.citizens.as_ref().and_then(|c| c.subjects.as_ref()) else {
        return Err(GatewayError::Internal);
    };
    app.subjects
        .try_get_with(citizen.session_id.clone(), fetch_subjects(rt, source, citizen, assertion, request_id))
        .await
        .map_err(|e: Arc<GatewayError>| match *e {
            GatewayError::UpstreamTimeout => GatewayError::UpstreamTimeout,
            GatewayError::UpstreamUnavailable => GatewayError::UpstreamUnavailable,
            _ => GatewayError::UpstreamBadResponse,
        })
}

async fn fetch_subjects(
    rt: &Runtime,
    source: &SubjectSource,
    citizen: &Citizen,
    assertion: &str,
    request_id: &str,
) -> Result<Arc<Subjects>, GatewayError> {
    let up = &rt.policy.upstreams[source.upstream];
    let uri = http::Uri::builder()
        .scheme(up.scheme.clone())
        .authority(up.authority.clone())
        .path_and_query(source.path.as_str())
        .build()
        .map_err(|_| GatewayError::Internal)?;
    let req = Request::get(uri)
        .header(IDENTITY_HEADER, assertion)
        .header("x-request-id", request_id)
        .header(header::ACCEPT_ENCODING, "identity")
        .body(Full::new(Bytes::new()))
        .map_err(|_| GatewayError::Internal)?;
    let deadline = tokio::time::Instant::now() + rt.policy.timeouts.route;
    let resp = rt.client.send(req, rt.policy.timeouts.route).await.map_err(|f| f.error())?;
    let status = resp.status();
    if status == StatusCode::NOT_FOUND {
        return Ok(Arc::new(Subjects { mobile: citizen.mobile.as_str().to_string(), ..Subjects::default() }));
    }
    let (_, body) = super::redaction::read_json(resp, super::redaction::MAX_BUFFERED, deadline).await?;
    let mut subjects = Subjects { mobile: citizen.mobile.as_str().to_string(), ..Subjects::default() };
    if status == StatusCode::NOT_FOUND {
        return Ok(Arc::new(subjects));
    }
    if !status.is_success() {
        return Err(GatewayError::UpstreamBadResponse);
    }
    let rule = ResponseRule { records: source.records.clone(), owner: source.owner.clone() };
    let own = match ownership::filter_response(&body, &rule, citizen.mobile.as_str()) {
        Ok(f) => ownership::parse_strict(&f.body).map_err(ownership_error)?,
        Err(OwnershipError::NothingLeft) => return Ok(Arc::new(subjects)),
        Err(e) => return Err(ownership_error(e)),
    };
    for record in own.get(&source.records).and_then(|r| r.as_array()).into_iter().flatten() {
        let text = |field: &str| match record.get(field) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        if let Some(r) = text(&source.reference) {
            subjects.beneficiary_refs.insert(r);
        }
        if let Some(p) = text(&source.photo_id) {
            subjects.photo_ids.insert(p);
        }
    }
    Ok(Arc::new(subjects))
}

/// What a filtered response released: the references of its records and their owners.
#[derive(Default)]
pub struct Released {
    pub refs: Vec<String>,
    pub owners: Vec<String>,
    pub count: u64,
}

/// The references and owners of the records under `records` in a JSON document.
pub fn released(doc: &[u8], records: &str, owner: &str, reference: &str) -> Released {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(doc) else { return Released::default() };
    // Keys as the redaction profile matches them: decoded (serde did that) and case-insensitive.
    fn get<'v>(v: &'v serde_json::Value, key: &str) -> Option<&'v serde_json::Value> {
        v.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
    }
    let list: &[serde_json::Value] = get(&v, records).and_then(|r| r.as_array()).map_or(&[], Vec::as_slice);
    let text = |r: &serde_json::Value, f: &str| match get(r, f) {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    Released {
        refs: list.iter().filter_map(|r| text(r, reference)).collect(),
        owners: list.iter().filter_map(|r| text(r, owner)).filter_map(|m| ownership::canonical_mobile(&m)).collect(),
        count: list.len() as u64,
    }
}

/// Keep only the caller's records of a successful, already decoded answer.
pub fn own_records_only(
    doc: &[u8],
    rule: &ResponseRule,
    citizen: &Citizen,
    reference_field: &str,
) -> Result<(Vec<u8>, Released), GatewayError> {
    let filtered = ownership::filter_response(doc, rule, citizen.mobile.as_str()).map_err(ownership_error)?;
    let out = released(&filtered.body, &rule.records, &rule.owner, reference_field);
    Ok((filtered.body, out))
}

/// An upstream error on a personal route: keep its status and its code (a short registry code
/// such as `APPOIN0040`), never its text: a message can name a person in any words, so the
/// message is the gateway's own, by status.
pub async fn sanitized_error(resp: Response<Incoming>, request_id: &str) -> Response<Body> {
    let status = resp.status();
    // Only the code is kept: read at most 64 KiB, for at most 5 s.
    let read = Limited::new(resp.into_body(), 64 << 10).collect();
    let bytes = match tokio::time::timeout(std::time::Duration::from_secs(5), read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(_)) | Err(_) => Bytes::new(),
    };
    let parsed: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let code = parsed.get("errorCode").and_then(|c| c.as_str()).filter(|c| registry_code(c)).unwrap_or("UPSTREAM");
    let message = match status.as_u16() {
        400 | 422 => "the registry refused the request",
        401 | 403 => "the registry refused access",
        404 | 410 => "the registry has no such record",
        409 => "the registry reports a conflict (for a booking: the session may be full)",
        429 => "the registry is limiting requests; try again later",
        503 | 504 => "the registry is unavailable; try again later",
        _ => "the registry could not complete the request",
    };
    let body = serde_json::json!({ "errorCode": code, "error": message, "requestId": request_id });
    super::handlers::json(status, &body, request_id)
}

/// A registry error code: ≤ 16 characters of `A-Z`, `0-9`, `_`, at most 4 of them digits (so no
/// mobile, ID or reference number fits in one).
fn registry_code(c: &str) -> bool {
    !c.is_empty()
        && c.len() <= 16
        && c.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && c.bytes().filter(u8::is_ascii_digit).count() <= 4
}

#[cfg(test)]
mod code_tests {
    #[test]
    fn registry_codes_cannot_carry_numbers() {
        for ok in ["APPOIN0040", "BENERR0001", "GENERR0500", "NF"] {
            assert!(super::registry_code(ok), "{ok}");
        }
        for bad in ["", "9000000001", "APPOIN9000000001", "appoin0040", "A-B", "ABCDEFGHIJKLMNOPQ", "X12345"] {
            assert!(!super::registry_code(bad), "{bad}");
        }
    }
}

#[cfg(test)]
mod released_tests {
    #[test]
    fn records_are_found_whatever_the_case_of_their_keys() {
        let doc = br#"{"Beneficiaries":[{"Beneficiary_Reference_Id":"10000000000001","MOBILE_NUMBER":"9000000001"},{"beneficiary_reference_id":10000000000002}]}"#;
        let r = super::released(doc, "beneficiaries", "mobile_number", "beneficiary_reference_id");
        assert_eq!(r.count, 2);
        assert_eq!(r.refs, ["10000000000001", "10000000000002"]);
        assert_eq!(r.owners, ["9000000001"]);
    }
}
