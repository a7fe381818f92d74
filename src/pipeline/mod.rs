//! The request pipeline: one fixed sequence of typed stages, written as plain calls in one place.
//!
//! ```text
//! limits → normalize → route → identify → authorize (Permit) → read body
//!        → gateway handler | ownership (request) → forward → ownership (response) → respond
//! ```
//! Order is a security property: nothing reads credentials before the path is proven
//! unambiguous, and nothing is forwarded without a `Permit`. Every stage returns
//! `Result<_, GatewayError>`; [`handle`] renders errors with the one renderer and records metrics
//! and the access log for success and failure alike.

pub mod audit;
pub mod citizen;
pub mod handlers;
pub mod normalize;
pub mod params;
pub mod partner;
pub mod redaction;
pub mod trace;

pub use trace::SPAN_TARGET;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use std::time::Duration;

use crate::app::{App, Runtime};
use crate::auth::{self, Caller};
use crate::authz::{self, Permit};
use crate::body::{Body, BoxError};
use crate::config::raw::Access;
use crate::error::GatewayError;
use crate::policy::Target;
use crate::policy::router::Match;
use crate::ratelimit::LimitKey;
use crate::upstream::assertion::IDENTITY_HEADER;
use crate::upstream::headers::{self, Forwarding, TraceContext};
use audit::Finished;

/// Facts about the connection a request arrived on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
    /// The verified client certificate, when the client presented one.
    pub client_cert: Option<Arc<crate::auth::partner::ClientCert>>,
}

/// What the pipeline learned, for metrics, logs, spans and the audit record (never raw
/// personal data: callers are partner ids or keyed hashes).
#[derive(Default)]
pub struct Outcome {
    pub route: String,
    pub personal: bool,
    pub caller_kind: &'static str,
    /// Partner id, or `m:<keyed hash>` of a citizen's mobile.
    pub caller_id: String,
    /// The verified mobile of a citizen caller, for the audit hasher only.
    pub citizen_mobile: Option<crate::auth::Mobile>,
    pub client: String,
    pub upstream_ms: Option<f64>,
    /// References of the records released (hashed when recorded; never logged), and how many
    /// records went out when that is known without them (streamed exports: None).
    pub released_refs: Vec<String>,
    pub record_count: Option<u64>,
    /// Mobiles whose records were released (hashed when recorded; never logged).
    pub released_owners: Vec<String>,
    pub fields_redacted: Vec<String>,
    /// `RateLimit-Policy` and `RateLimit` of a limited route, for success and refusal alike.
    pub rate_headers: Option<crate::ratelimit::Headers>,
    /// A streamed answer's end, for its completion audit record.
    pub stream_end: Option<tokio::sync::oneshot::Receiver<redaction::StreamEnd>>,
}

/// Serve one request. Never fails: errors become JSON error responses.
pub async fn handle(app: Arc<App>, conn: Arc<ConnInfo>, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let rt = app.snapshot();
    let request_id = uuid::Uuid::new_v4().to_string();
    let method = req.method().clone();
    let (span, trace) = trace::start(req.headers(), &method);
    let mut outcome = Outcome { route: "unmatched".into(), caller_kind: "anonymous", ..Outcome::default() };
    let (resp, reason) = match process(&app, &rt, &conn, req, &request_id, &trace, &mut outcome).await {
        Ok(resp) => (resp, "ok"),
        Err(err) => {
            if let GatewayError::Internal = err {
                tracing::error!(request_id, route = %outcome.route, "internal error");
            }
            (err.render(&request_id), err.code())
        }
    };
    let mut resp = resp;
    if let Some(h) = &outcome.rate_headers
        && let (Ok(p), Ok(s)) = (http::HeaderValue::from_str(&h.policy), http::HeaderValue::from_str(&h.state))
    {
        resp.headers_mut().insert("ratelimit-policy", p);
        if !h.state.is_empty() {
            resp.headers_mut().insert("ratelimit", s);
        }
    }
    let mut status = resp.status().as_u16();
    let mut reason = reason;
    if outcome.personal
        && let Some(audit) = &app.audit
    {
        let finished = Finished {
            request_id: &request_id,
            trace_id: &trace.trace_id,
            method: &method,
            status,
            reason,
            policy_version: &rt.policy.version,
        };
        let record = audit.record(&outcome, &finished);
        if let Err(e) = audit.write(&record).await {
            tracing::error!(request_id, error = %e, "audit record not written; response withheld");
            app.metrics.audit_failure();
            let err = GatewayError::AuditUnavailable;
            resp = err.render(&request_id);
            status = resp.status().as_u16();
            reason = err.code();
        } else if let Some(ended) = outcome.stream_end.take() {
            app.background.spawn(audit::stream_completion(app.clone(), record, ended));
        }
        outcome.caller_id = audit.caller_id(&outcome);
    }
    let elapsed = started.elapsed();
    let decision = if status < 400 { "allow" } else { "deny" };
    span.record("otel.name", format!("{method} {}", outcome.route));
    span.record("http.route", outcome.route.as_str());
    span.record("http.response.status_code", i64::from(status));
    span.record("otpgate.request_id", request_id.as_str());
    span.record("otpgate.caller.kind", outcome.caller_kind);
    span.record("otpgate.caller.id", outcome.caller_id.as_str());
    span.record("otpgate.decision", decision);
    span.record("otpgate.reason", reason);
    span.record("otpgate.policy_version", rt.policy.version.as_str());
    span.record("client.address", outcome.client.as_str());
    if let Some(n) = outcome.record_count {
        span.record("otpgate.record_count", i64::try_from(n).unwrap_or(i64::MAX));
    }
    if !outcome.fields_redacted.is_empty() {
        span.record("otpgate.fields_redacted", outcome.fields_redacted.join(",").as_str());
    }
    if let Some(ms) = outcome.upstream_ms {
        span.record("otpgate.upstream_ms", ms);
    }
    drop(span);
    app.metrics.request(&outcome.route, &method, status, elapsed);
    tracing::info!(
        target: "otpgate::access",
        request_id,
        route = %outcome.route,
        method = %method,
        status,
        caller = outcome.caller_kind,
        decision,
        reason,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        policy = %rt.policy.version,
    );
    resp
}

async fn process(
    app: &App,
    rt: &Arc<Runtime>,
    conn: &ConnInfo,
    req: Request<Incoming>,
    request_id: &str,
    trace: &TraceContext,
    outcome: &mut Outcome,
) -> Result<Response<Body>, GatewayError> {
    let policy = &rt.policy;
    let (parts, body) = req.into_parts();

    normalize::check_headers(&parts.headers, &parts.uri, &policy.limits)?;
    let segments = normalize::path_segments(&parts.uri, &policy.limits)?;
    let segs: Vec<&str> = segments.iter().map(|s| s.as_ref()).collect();
    let route_index = match policy.route_for(&segs, &parts.method) {
        Match::Found(index, _params) => index,
        Match::MethodNotAllowed(allowed) => {
            let allow = allowed.iter().map(http::Method::as_str).collect::<Vec<_>>().join(", ");
            return Err(GatewayError::MethodNotAllowed { allow });
        }
        Match::NotFound => return Err(GatewayError::RouteNotFound),
    };
    let route = &policy.routes[route_index];
    outcome.route.clone_from(&route.name);
    outcome.personal = route.personal;
    outcome.client = headers::client_ip(conn.peer.ip(), &parts.headers, policy).to_string();

    if normalize::query_carries_token(parts.uri.query()) {
        return Err(GatewayError::InvalidToken);
    }
    let now_ms = crate::clock::now_ms();
    let caller = identify(app, rt, conn, route.access, &parts.headers, now_ms).await?;
    outcome.caller_kind = caller.kind();
    match &caller {
        Caller::Citizen(c) => outcome.citizen_mobile = Some(c.mobile.clone()),
        Caller::Partner(p) => outcome.caller_id.clone_from(&p.id),
        Caller::Anonymous => {}
    }
    let permit = authz::authorize(route, caller)?;

    let body = read_body(body, &parts.headers, route.body_limit, policy.timeouts.request).await?;

    // Limits on who is calling are charged now; limits on the beneficiaries a request names only
    // once the ownership check has shown they are the caller's (else anyone could spend a
    // stranger's booking limit with requests that are refused anyway).
    let limits = &rt.limits[route_index];
    let client_ip = headers::client_ip(conn.peer.ip(), &parts.headers, policy);
    // (Beneficiary values come from the ownership rules, so a route without them names none.)
    let checks_ownership = route.ownership.as_ref().is_some_and(|o| !o.request.is_empty());
    let caller_keys = |key: LimitKey| !(checks_ownership && key.names_others());
    let limited = |keys: &dyn Fn(LimitKey) -> bool| {
        let beneficiaries = || beneficiary_values(route, parts.uri.query(), &body);
        route
            .limits
            .iter()
            .filter(|(key, _)| keys(*key))
            .map(|(key, _)| {
                (*key, crate::ratelimit::keys::values_for(*key, permit.caller(), client_ip, &body, &beneficiaries))
            })
            .collect::<Vec<_>>()
    };
    charge(app, route, limits, &limited(&caller_keys), outcome).await?;

    if let Target::Handler(handler) = route.target {
        return handlers::answer(handler, &permit, app, rt, &body, now_ms, request_id).await;
    }

    // The verified identity for the upstream, and the request-side ownership check.
    let mut assertion = None;
    if let Caller::Citizen(c) = permit.caller() {
        let ttl = policy.citizens.as_ref().map_or(Duration::from_secs(300), |ct| ct.assertion_ttl);
        let token = app
            .assertions
            .as_ref()
            .and_then(|a| a.citizen(&c.session_id, c.mobile.as_str(), now_ms / 1000, ttl))
            .ok_or(GatewayError::Internal)?;
        if route.personal {
            outcome.released_refs = beneficiary_values(route, parts.uri.query(), &body);
            outcome.released_owners = vec![c.mobile.as_str().to_string()];
        }
        if let Some(own) = &route.ownership
            && !own.request.is_empty()
        {
            let subjects = citizen::subjects(app, rt, c, &token, own.needs_subjects, request_id).await?;
            let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            crate::ownership::check_request(parts.uri.query(), &body, content_type, &own.request, &subjects)
                .map_err(citizen::ownership_error)?;
        }
        assertion = Some(token);
    }
    charge(app, route, limits, &limited(&|key| !caller_keys(key)), outcome).await?;
    if let Caller::Partner(p) = permit.caller() {
        partner::charge_quota(app, rt, p, route, parts.uri.query(), &body, now_ms).await?;
        let token = app
            .assertions
            .as_ref()
            .and_then(|a| a.partner(&p.id, &p.scopes, now_ms / 1000, Duration::from_secs(300)))
            .ok_or(GatewayError::Internal)?;
        assertion = Some(token);
    }

    let peer_ip = conn.peer.ip();
    let fwd = Forwarding {
        peer: peer_ip,
        peer_trusted: policy.is_trusted_proxy(peer_ip),
        tls: conn.tls,
        request_id,
        trace,
        identity_encoding: route.personal,
    };
    let mut parts = parts;
    parts.headers = headers::upstream_request_headers(&parts.headers, &fwd, policy);
    if let Some(token) = &assertion
        && let Ok(v) = http::HeaderValue::from_str(token)
    {
        parts.headers.insert(IDENTITY_HEADER, v);
    }

    let sent = Instant::now();
    let deadline = tokio::time::Instant::now() + route.timeout;
    let upstream = rt.client.forward(&permit, policy, parts, body).await.map_err(|failure| {
        app.metrics.upstream_error(&route.name, failure.as_str());
        tracing::warn!(request_id, route = %route.name, kind = failure.as_str(), "upstream failure");
        failure.error()
    })?;
    outcome.upstream_ms = Some(sent.elapsed().as_secs_f64() * 1000.0);

    respond(upstream, &permit, app, rt, request_id, deadline, outcome).await
}

/// Charge the request to the route's windows for `values`; a refusal is a 429. The headers of
/// several calls merge (the tightest window is reported).
async fn charge(
    app: &App,
    route: &crate::policy::Route,
    limits: &crate::ratelimit::RouteLimits,
    values: &[(LimitKey, Vec<String>)],
    outcome: &mut Outcome,
) -> Result<(), GatewayError> {
    if values.is_empty() {
        return Ok(());
    }
    match app.limiters.check(limits, values).await {
        Ok(h) => {
            outcome.rate_headers = match (outcome.rate_headers.take(), h) {
                (Some(a), Some(b)) => Some(a.merge(b)),
                (a, b) => a.or(b),
            };
            Ok(())
        }
        Err(t) => {
            app.metrics.throttled(&route.name, t.key.as_str());
            outcome.rate_headers = Some(t.headers);
            Err(GatewayError::RateLimited { retry_after: t.retry_after })
        }
    }
}

/// The beneficiary references a request names (the route's beneficiary ownership parameters),
/// each once.
fn beneficiary_values(route: &crate::policy::Route, query: Option<&str>, body: &[u8]) -> Vec<String> {
    let names: Vec<String> = route
        .ownership
        .iter()
        .flat_map(|o| o.request.iter())
        .filter(|r| r.kind == crate::ownership::SubjectKind::Beneficiary)
        .map(|r| r.param.clone())
        .collect();
    let mut values = params::named_values(&names, query, body).unwrap_or_default();
    values.sort_unstable();
    values.dedup();
    values
}

/// Read only the credential the route asks for.
async fn identify(
    app: &App,
    rt: &Runtime,
    conn: &ConnInfo,
    access: Access,
    headers: &http::HeaderMap,
    now_ms: u64,
) -> Result<Caller, GatewayError> {
    match access {
        Access::Public => Ok(Caller::Anonymous),
        Access::Partner => {
            let (Some(partners), Some(verifier)) = (rt.policy.partners.as_ref(), rt.partner_verifier.as_ref()) else {
                return Err(GatewayError::Unauthenticated);
            };
            let ip = headers::client_ip(conn.peer.ip(), headers, &rt.policy);
            let generation = rt.generation;
            auth::partner::identify(conn.client_cert.as_ref(), headers, ip, partners, verifier.as_ref(), generation)
                .map(Caller::Partner)
        }
        Access::Citizen => {
            let (Some(rules), Some(cr)) = (rt.policy.citizens.as_ref(), rt.citizens.as_ref()) else {
                return Err(GatewayError::Unauthenticated);
            };
            auth::identify_citizen(headers, &cr.tokens, &app.store, &rules.session, now_ms).await
        }
    }
}

/// The upstream's answer, through the response side of the permit's rules: the ownership
/// filter first (it reads the owner field), then the caller's redaction profile.
async fn respond(
    upstream: Response<Incoming>,
    permit: &Permit<'_>,
    app: &App,
    rt: &Arc<Runtime>,
    request_id: &str,
    deadline: tokio::time::Instant,
    outcome: &mut Outcome,
) -> Result<Response<Body>, GatewayError> {
    let route = permit.route();
    if route.personal && !upstream.status().is_success() {
        return Ok(citizen::sanitized_error(upstream, request_id).await);
    }
    let profile_name = match permit.caller() {
        Caller::Citizen(_) => route.redact.citizen.clone(),
        Caller::Partner(p) => p.profile.clone().or_else(|| route.redact.partner.clone()),
        Caller::Anonymous => None,
    }
    .filter(|n| n != crate::policy::NO_REDACTION);
    let profile = match &profile_name {
        Some(n) => Some(rt.profiles.get(n).ok_or(GatewayError::Internal)?),
        None => None,
    };
    let subjects = rt.policy.citizens.as_ref().and_then(|c| c.subjects.as_ref());
    let (records, owner, reference) = subjects
        .map_or(("beneficiaries", "mobile_number", "beneficiary_reference_id"), |s| {
            (s.records.as_str(), s.owner.as_str(), s.reference.as_str())
        });
    let rule = route.ownership.as_ref().and_then(|o| o.response.as_ref());
    let mut resp = match (permit.caller(), rule, profile) {
        (Caller::Citizen(c), Some(rule), profile) => {
            let (head, doc) = redaction::read_json(upstream, redaction::MAX_BUFFERED, deadline).await?;
            let (own, released) = citizen::own_records_only(&doc, rule, c, reference)?;
            outcome.released_refs = released.refs;
            outcome.released_owners = released.owners;
            outcome.record_count = Some(released.count);
            redacted(head, own, profile, app, outcome)?
        }
        (Caller::Anonymous | Caller::Partner(_), Some(_), _) | (Caller::Anonymous, None, Some(_)) => {
            return Err(GatewayError::Internal);
        }
        (Caller::Partner(_), None, Some(_)) if route.stream => {
            // A bulk export: redacted as it flows, audited by count when it ends.
            outcome.record_count = None;
            outcome.fields_redacted = vec![format!("profile:{}", profile_name.clone().unwrap_or_default())];
            let counter = app.metrics.redactions.clone();
            let (resp, ended) = redaction::streamed(
                upstream,
                rt.clone(),
                profile_name.clone().unwrap_or_default(),
                route.timeout,
                counter,
            )?;
            outcome.stream_end = Some(ended);
            resp
        }
        (Caller::Citizen(_) | Caller::Partner(_), None, Some(profile)) => {
            let (head, doc) = redaction::read_json(upstream, redaction::MAX_BUFFERED, deadline).await?;
            if matches!(permit.caller(), Caller::Partner(_)) {
                let released = citizen::released(&doc, records, owner, reference);
                outcome.released_refs = released.refs;
                outcome.released_owners = released.owners;
                outcome.record_count = Some(released.count);
            }
            redacted(head, doc.to_vec(), Some(profile), app, outcome)?
        }
        (_, None, None) => {
            let (head, body) = upstream.into_parts();
            Response::from_parts(head, body.map_err(|e| Box::new(e) as BoxError).boxed_unsync())
        }
    };
    if route.personal {
        headers::personal_response_headers(resp.headers_mut(), profile.is_none());
    }
    headers::client_response_headers(resp.headers_mut(), request_id);
    Ok(resp)
}

/// Apply `profile` (if any) to a whole document and note what it redacted.
fn redacted(
    head: http::response::Parts,
    doc: Vec<u8>,
    profile: Option<&crate::redact::Profile>,
    app: &App,
    outcome: &mut Outcome,
) -> Result<Response<Body>, GatewayError> {
    let Some(profile) = profile else {
        return Ok(redaction::with_body(head, doc));
    };
    let (out, report) = redaction::redact_whole(profile, &doc)?;
    app.metrics.redacted(profile.name(), profile.dry_run(), report.redacted());
    outcome.fields_redacted = report.fields.keys().cloned().collect();
    Ok(redaction::with_body(head, out))
}

/// Read the whole request body within `limit` bytes and the request timeout.
async fn read_body(
    body: Incoming,
    headers: &http::HeaderMap,
    limit: u64,
    timeout: std::time::Duration,
) -> Result<Bytes, GatewayError> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(GatewayError::PayloadTooLarge);
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Err(_) => Err(GatewayError::RequestTimeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(GatewayError::PayloadTooLarge)
        }
        Ok(Err(_)) => Err(GatewayError::BadRequest("the request body could not be read")),
    }
}
