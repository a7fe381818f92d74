//! The `limits` phase: every rate limit and quota a request is charged to, in one place.
//!
//! - [`Stage::Caller`], right after authorization: the windows keyed on the caller (`ip`,
//!   `session`, `subject`, `partner`, from the `Permit`) and, on routes without request-side
//!   ownership rules, those keyed on people the request names (`mobile` of an OTP request).
//! - [`Stage::Named`], after the ownership check: windows keyed on people the request names
//!   (`beneficiary`, `mobile`) — only once they are shown to be the caller's, or anyone could
//!   spend a stranger's booking limit with requests that are refused anyway — and the partner's
//!   quotas: requests per window, and distinct people looked up per day (IST), which is what
//!   stops one valid credential from being used to look up the whole registry, as in 2023.
//!   Subjects are counted as keyed hashes, never stored raw.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::context::RequestCtx;
use super::params;
use crate::authz::{Grant, Permit};
use crate::error::GatewayError;
use crate::policy::partners::{ist_day, until_ist_midnight};
use crate::policy::{LimitKey, Route};
use crate::ratelimit::keys::{ip_key, mobile_in_body};
use crate::runtime::App;
use crate::store::{Distinct, Window};

/// Sets of the subjects-per-day quota outlive their day by a margin.
const SUBJECT_SET_TTL: Duration = Duration::from_secs(48 * 3600);

/// Which of a request's limits are charged.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Caller,
    Named,
}

/// Charge the request to the windows of `stage` (refused: 429, with `RateLimit` headers).
pub async fn charge(
    app: &App,
    permit: &Permit<'_>,
    route_index: usize,
    query: Option<&str>,
    body: &[u8],
    stage: Stage,
    cx: &mut RequestCtx,
) -> Result<(), GatewayError> {
    let route = permit.route();
    let checks_ownership = permit.ownership().is_some_and(|o| o.checks_request());
    let in_stage = |key: LimitKey| (checks_ownership && key.names_others()) == (stage == Stage::Named);
    let mut values: Vec<(LimitKey, Vec<String>)> = Vec::new();
    for key in route.limits.iter().map(|l| l.key).filter(|k| in_stage(*k)) {
        if values.iter().any(|(k, _)| *k == key) {
            continue;
        }
        let vals = match key {
            // Per mobile *and* source: a stranger spends only their own budget for a number.
            LimitKey::Mobile => {
                mobile_in_body(body).map(|m| format!("{m}@{}", ip_key(cx.client))).into_iter().collect()
            }
            LimitKey::Beneficiary => beneficiary_values(route, &cx.path_params, query, body),
            _ => permit.caller_keys().iter().filter(|(k, _)| *k == key).map(|(_, v)| v.clone()).collect(),
        };
        values.push((key, vals));
    }
    if !values.is_empty() {
        let limits = &cx.rt.limits[route_index];
        match app.limiters.check(limits, &values).await {
            Ok(h) => {
                cx.outcome.rate_headers = match (cx.outcome.rate_headers.take(), h) {
                    (Some(a), Some(b)) => Some(a.merge(b)),
                    (a, b) => a.or(b),
                };
            }
            Err(t) => {
                app.metrics.throttled(&route.name, t.key.as_str());
                cx.outcome.rate_headers = Some(t.headers);
                return Err(GatewayError::RateLimited { retry_after: t.retry_after });
            }
        }
    }
    match (stage, permit.grant()) {
        (Stage::Named, Grant::Partner { partner, rules }) => {
            partner_quota(app, cx, partner.id(), &rules.quota_subjects, query, body).await
        }
        _ => Ok(()),
    }
}

/// A request refused before any caller was identified: charged to the refusal budget of its
/// source and of the credential it presented (a script retrying a revoked token); past either,
/// the answer is 429 with `Retry-After` instead of the refusal.
pub async fn unidentified(
    app: &App,
    headers: &http::HeaderMap,
    refused: GatewayError,
    cx: &mut RequestCtx,
) -> GatewayError {
    cx.outcome.unidentified = true;
    let credential = headers
        .get(http::header::AUTHORIZATION)
        .or_else(|| headers.get("x-api-key"))
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let mut values = vec![(LimitKey::Ip, vec![ip_key(cx.client)])];
    values.extend(credential.map(|c| (LimitKey::Credential, vec![c])));
    match app.limiters.check(&cx.rt.unidentified, &values).await {
        Ok(_) => refused,
        Err(t) => {
            app.metrics.throttled(&cx.outcome.route, t.key.as_str());
            cx.outcome.rate_headers = Some(t.headers);
            GatewayError::RateLimited { retry_after: t.retry_after }
        }
    }
}

/// The beneficiary references a request names (the route's beneficiary ownership parameters, in
/// its path, query or JSON body: the places the ownership check reads), each once.
pub fn beneficiary_values(route: &Route, path: &[(String, String)], query: Option<&str>, body: &[u8]) -> Vec<String> {
    let names: Vec<String> = match &route.access {
        crate::policy::Access::Citizen(c) => c
            .ownership
            .iter()
            .flat_map(|o| o.request.iter())
            .filter(|r| r.kind == crate::ownership::SubjectKind::Beneficiary)
            .map(|r| r.name().to_string())
            .collect(),
        _ => Vec::new(),
    };
    let mut values = params::named_values_in(&names, path, query, body).unwrap_or_default();
    values.sort_unstable();
    values.dedup();
    values
}

fn store_err(e: crate::store::StoreError) -> GatewayError {
    tracing::error!(error = %e, "state store failed; failing closed");
    GatewayError::StoreUnavailable
}

/// Charge this request to the partner's quotas, or refuse it with 429.
async fn partner_quota(
    app: &App,
    cx: &RequestCtx,
    id: &str,
    quota_subjects: &[String],
    query: Option<&str>,
    body: &[u8],
) -> Result<(), GatewayError> {
    let Some(p) = cx.rt.policy.partners.as_ref().and_then(|ps| ps.clients.iter().find(|c| c.id == id)) else {
        return Err(GatewayError::Forbidden);
    };
    let now_ms = cx.now_ms;
    if let Some(req) = p.quota.requests
        && let Window::Denied { retry_after } =
            app.store.window_hit(&format!("pq:req:{}", p.id), now_ms, req.window, req.limit).await.map_err(store_err)?
    {
        return Err(GatewayError::RateLimited { retry_after });
    }
    let Some(limit) = p.quota.subjects_per_day else {
        return Ok(());
    };
    if quota_subjects.is_empty() {
        return Ok(());
    }
    let key_material = app.otp_key().unwrap_or(b"otpgate-subjects");
    let key = format!("pq:subj:{}:{}", p.id, ist_day(now_ms));
    // Each person once: a body naming one mobile 70,000 times is one store call, not 70,000.
    let mut values = params::named_values_in(quota_subjects, &cx.path_params, query, body)?;
    values.sort_unstable();
    values.dedup();
    for value in values {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key_material).map_err(|_| GatewayError::Internal)?;
        mac.update(b"subject:");
        mac.update(value.as_bytes());
        let member = hex::encode(&mac.finalize().into_bytes()[..16]);
        match app.store.distinct_add(&key, &member, limit, SUBJECT_SET_TTL, now_ms).await.map_err(store_err)? {
            Distinct::Counted { new, count } => app.metrics.partner_subjects(&p.id, count, limit, new),
            Distinct::Full => {
                app.metrics.partner_subjects(&p.id, u64::from(limit), limit, false);
                return Err(GatewayError::RateLimited { retry_after: until_ist_midnight(now_ms) });
            }
        }
    }
    Ok(())
}
