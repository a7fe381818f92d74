//! The `ownership` phase, request side: every parameter of a citizen's request that names a
//! subject must be the caller's (see `ownership`). ID numbers, beneficiary references and
//! appointment ids are checked against the caller's own record list (and each record's
//! appointments), fetched from the registry with the caller's identity assertion and cached
//! briefly per session. A request refused against a cached list is checked once more against a
//! fresh one: an appointment booked a moment ago (here, through another session or another
//! replica) is the caller's at once, not only when the cache expires.

use std::sync::Arc;

use http::{StatusCode, header};

use super::context::RequestCtx;
use super::limits::beneficiary_values;
use super::redaction;
use crate::authz::Permit;
use crate::error::GatewayError;
use crate::ownership::{self, OwnershipError, ResponseRule, Subjects};
use crate::policy::citizens::SubjectSource;
use crate::runtime::App;

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

/// Check that the request names only the caller's own subjects (a no-op for routes without
/// request-side rules), and note what a personal citizen request asks for, for the audit record.
pub async fn check(
    app: &App,
    permit: &Permit<'_>,
    head: &http::request::Parts,
    body: &[u8],
    assertion: Option<&str>,
    cx: &mut RequestCtx,
) -> Result<(), GatewayError> {
    let Some(citizen) = permit.citizen() else { return Ok(()) };
    let route = permit.route();
    if route.personal {
        cx.outcome.released_refs = beneficiary_values(route, &cx.path_params, head.uri.query(), body);
        cx.outcome.released_owners = vec![citizen.mobile().as_str().to_string()];
    }
    let Some(own) = permit.ownership().filter(|o| o.checks_request()) else { return Ok(()) };
    let assertion = assertion.unwrap_or_default();
    let content_type = head.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let check = |subjects: &Subjects| {
        ownership::check_request(&cx.path_params, head.uri.query(), body, content_type, &own.request, subjects)
    };
    let (subjects, fresh) = subjects(app, permit, assertion, own.needs_subjects, cx).await?;
    match check(&subjects) {
        Err(OwnershipError::NotOwned) if !fresh => {
            // The cached list may predate a booking: ask the registry once more (the route's
            // limits bound how often a caller can make the gateway do so).
            if let Some(citizen) = permit.citizen() {
                app.subjects.invalidate(citizen.session_id()).await;
            }
            let (subjects, _) = self::subjects(app, permit, assertion, own.needs_subjects, cx).await?;
            check(&subjects).map(drop).map_err(ownership_error)
        }
        checked => checked.map(drop).map_err(ownership_error),
    }
}

/// The caller's own subjects: just the mobile, or with their records when a rule needs them; and
/// whether they were fetched for this call (`false`: from the cache).
async fn subjects(
    app: &App,
    permit: &Permit<'_>,
    assertion: &str,
    with_records: bool,
    cx: &RequestCtx,
) -> Result<(Arc<Subjects>, bool), GatewayError> {
    let citizen = permit.citizen().ok_or(GatewayError::Unauthenticated)?;
    let mobile_only = || Arc::new(Subjects { mobile: citizen.mobile().as_str().to_string(), ..Subjects::default() });
    if !with_records {
        return Ok((mobile_only(), true));
    }
    // Compilation refuses record-naming rules without `citizens.subjects`.
    let Some(source) = cx.rt.policy.citizens.as_ref().and_then(|c| c.subjects.as_ref()) else {
        return Ok((mobile_only(), true));
    };
    let fetched = std::sync::atomic::AtomicBool::new(false);
    let fetching = async {
        fetched.store(true, std::sync::atomic::Ordering::Relaxed);
        fetch(permit, source, assertion, cx).await
    };
    let subjects = app.subjects.try_get_with(citizen.session_id().to_string(), fetching).await.map_err(
        |e: Arc<GatewayError>| match *e {
            GatewayError::UpstreamTimeout => GatewayError::UpstreamTimeout,
            GatewayError::UpstreamUnavailable => GatewayError::UpstreamUnavailable,
            _ => GatewayError::UpstreamBadResponse,
        },
    )?;
    Ok((subjects, fetched.load(std::sync::atomic::Ordering::Relaxed)))
}

async fn fetch(
    permit: &Permit<'_>,
    source: &SubjectSource,
    assertion: &str,
    cx: &RequestCtx,
) -> Result<Arc<Subjects>, GatewayError> {
    let citizen = permit.citizen().ok_or(GatewayError::Unauthenticated)?;
    let mobile = citizen.mobile().as_str();
    let rt = &cx.rt;
    let deadline = tokio::time::Instant::now() + rt.policy.timeouts.route;
    let resp =
        rt.client.subjects(permit, &rt.policy, source, assertion, &cx.request_id).await.map_err(|f| f.error())?;
    let status = resp.status();
    let mut subjects = Subjects { mobile: mobile.to_string(), ..Subjects::default() };
    if status == StatusCode::NOT_FOUND {
        return Ok(Arc::new(subjects));
    }
    let (_, body) = redaction::read_json(resp, redaction::MAX_BUFFERED, deadline).await?;
    if !status.is_success() {
        return Err(GatewayError::UpstreamBadResponse);
    }
    let rule = ResponseRule { records: source.records.clone(), owner: source.owner.clone() };
    let own = match ownership::filter_response(&body, &rule, mobile) {
        Ok(f) => ownership::parse_strict(&f.body).map_err(ownership_error)?,
        Err(OwnershipError::NothingLeft) => return Ok(Arc::new(subjects)),
        Err(e) => return Err(ownership_error(e)),
    };
    // The filter left the records under exactly `records`, each with one spelling of `owner`; the
    // reference and photo id are read the same way: another spelling of either is refused.
    let spelled_twice =
        |_| ownership_error(OwnershipError::BadUpstream("a record spells a subject field more than one way"));
    for record in own.get(&source.records).and_then(|r| r.as_array()).into_iter().flatten() {
        let Some(fields) = record.as_object() else { continue };
        let text = |field: &str| match ownership::unique_member(fields, field).map_err(spelled_twice)? {
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
            _ => Ok::<_, GatewayError>(None),
        };
        if let Some(r) = text(&source.reference)? {
            subjects.beneficiary_refs.insert(r);
        }
        if let Some(p) = text(&source.photo_id)? {
            subjects.photo_ids.insert(p);
        }
        let Some((list, id)) = &source.appointments else { continue };
        let appointments = ownership::unique_member(fields, list).map_err(spelled_twice)?;
        for appointment in appointments.and_then(|a| a.as_array()).into_iter().flatten() {
            let Some(appointment) = appointment.as_object() else { continue };
            if let Some(serde_json::Value::String(a)) =
                ownership::unique_member(appointment, id).map_err(spelled_twice)?
            {
                subjects.appointment_ids.insert(a.to_ascii_lowercase());
            }
        }
    }
    Ok(Arc::new(subjects))
}
