//! The `respond` phase: the upstream's answer through the response side of the permit — the
//! citizen's own records only (the ownership filter reads the owner field, so it runs first),
//! then the permit's redaction plan, fail-closed — and the headers a client may see. Upstream
//! error bodies on personal routes are reduced to a code and the gateway's own message.

use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt, Limited};

use super::context::RequestCtx;
use super::handlers::json;
use super::redaction;
use super::subjects::ownership_error;
use crate::authz::{Grant, Permit, Plan};
use crate::body::{Body, BoxError};
use crate::error::GatewayError;
use crate::ownership;
use crate::runtime::App;
use crate::upstream::PooledBody;
use crate::upstream::headers;

pub async fn answer(
    upstream: Response<PooledBody>,
    deadline: tokio::time::Instant,
    permit: &Permit<'_>,
    app: &App,
    cx: &mut RequestCtx,
) -> Result<Response<Body>, GatewayError> {
    let route = permit.route();
    if route.personal && !upstream.status().is_success() {
        return Ok(sanitized_error(upstream, &cx.request_id).await);
    }
    let plan = permit.plan();
    let response_rule = permit.ownership().and_then(|o| o.response.as_ref());
    let mut resp = match (permit.grant(), response_rule, &plan) {
        (Grant::Citizen { citizen, .. }, Some(rule), _) => {
            let (head, doc) = redaction::read_json(upstream, redaction::MAX_BUFFERED, deadline).await?;
            let own = ownership::filter_response(&doc, rule, citizen.mobile().as_str()).map_err(ownership_error)?;
            // The filtered document as parsed: read for the audit record without parsing it again.
            note_released(Some(&own.doc), &rule.records, &rule.owner, cx)?;
            whole(plan.as_ref(), head, own.body, app, cx)?
        }
        (Grant::Partner { rules, .. }, _, Some(plan)) if rules.stream => {
            // A bulk export: redacted as it flows, audited by count when it ends.
            cx.outcome.record_count = None;
            cx.outcome.fields_redacted = vec![format!("profile:{}", plan.profile().name())];
            let counter = app.metrics.redactions.clone();
            let (resp, ended) = redaction::streamed(upstream, plan, route.timeout, counter)?;
            cx.outcome.stream_end = Some(ended);
            resp
        }
        (grant, _, Some(_)) => {
            let (head, doc) = redaction::read_json(upstream, redaction::MAX_BUFFERED, deadline).await?;
            if let Grant::Partner { .. } = grant {
                let rt = cx.rt.clone();
                let subjects = rt.policy.citizens.as_ref().and_then(|c| c.subjects.as_ref());
                let (records, owner) =
                    subjects.map_or(("beneficiaries", "mobile_number"), |s| (s.records.as_str(), s.owner.as_str()));
                let parsed = ownership::parse_strict(&doc).ok();
                note_released(parsed.as_ref(), records, owner, cx)?;
            }
            whole(plan.as_ref(), head, doc.to_vec(), app, cx)?
        }
        (_, _, None) => {
            let (head, body) = upstream.into_parts();
            Response::from_parts(head, body.map_err(|e| Box::new(e) as BoxError).boxed_unsync())
        }
    };
    if route.personal {
        headers::personal_response_headers(resp.headers_mut(), plan.is_none());
    }
    headers::client_response_headers(resp.headers_mut(), &cx.request_id);
    Ok(resp)
}

fn whole(
    plan: Option<&Plan>,
    head: http::response::Parts,
    doc: Vec<u8>,
    app: &App,
    cx: &mut RequestCtx,
) -> Result<Response<Body>, GatewayError> {
    let (resp, fields) = redaction::whole(plan, head, doc, &app.metrics)?;
    if plan.is_some() {
        cx.outcome.fields_redacted = fields;
    }
    Ok(resp)
}

/// Note the references and owners of the records under `records` in the document about to be
/// redacted and released (the audit record names them once the answer is allowed). `doc` is the
/// document parsed strictly, `None` when it is not strict JSON: the redactor refuses duplicate
/// keys too, and anything else it would accept and the audit could not read is refused (502)
/// rather than released unnamed.
fn note_released(
    doc: Option<&serde_json::Value>,
    records: &str,
    owner: &str,
    cx: &mut RequestCtx,
) -> Result<(), GatewayError> {
    let reference = cx.rt.policy.citizens.as_ref().and_then(|c| c.subjects.as_ref());
    let reference = reference.map_or("beneficiary_reference_id", |s| s.reference.as_str()).to_string();
    let Some(doc) = doc else {
        tracing::warn!("upstream answer refused: its records cannot be read for the audit record");
        return Err(GatewayError::UpstreamBadResponse);
    };
    let released = released(doc, records, owner, &reference);
    cx.outcome.released_refs = released.refs;
    cx.outcome.released_owners = released.owners;
    cx.outcome.record_count = Some(released.count);
    Ok(())
}

/// What a response released: the references of its records and their owners.
#[derive(Default)]
pub struct Released {
    pub refs: Vec<String>,
    pub owners: Vec<String>,
    pub count: u64,
}

/// The references and owners of the records in a JSON document, read as the redaction profile
/// reads keys (decoded, any case: `ownership::same_key`), so every record a profile can let
/// through is named: the elements of every top-level array under a spelling of `records`, and in
/// each the values under every spelling of `reference` and `owner`.
pub fn released(doc: &serde_json::Value, records: &str, owner: &str, reference: &str) -> Released {
    use serde_json::Value;
    fn members<'v>(v: &'v Value, name: &'v str) -> impl Iterator<Item = &'v Value> + 'v {
        v.as_object().into_iter().flatten().filter(move |(k, _)| ownership::same_key(k, name)).map(|(_, v)| v)
    }
    fn texts<'v>(record: &'v Value, field: &'v str) -> impl Iterator<Item = String> + 'v {
        members(record, field).filter_map(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    }
    let list: Vec<&Value> = members(doc, records).filter_map(Value::as_array).flatten().collect();
    Released {
        refs: list.iter().flat_map(|r| texts(r, reference)).collect(),
        owners: list.iter().flat_map(|r| texts(r, owner)).filter_map(|m| ownership::canonical_mobile(&m)).collect(),
        count: list.len() as u64,
    }
}

/// An upstream error on a personal route: keep its status and its code (a short registry code
/// such as `APPOIN0040`), never its text: a message can name a person in any words, so the
/// message is the gateway's own, by status.
pub async fn sanitized_error(resp: Response<PooledBody>, request_id: &str) -> Response<Body> {
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
        409 => "the registry reports a conflict (for a booking: the session is full, or the appointment exists)",
        429 => "the registry is limiting requests; try again later",
        503 | 504 => "the registry is unavailable; try again later",
        _ => "the registry could not complete the request",
    };
    let body = serde_json::json!({ "errorCode": code, "error": message, "requestId": request_id });
    json(status, &body, request_id)
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
mod tests;
