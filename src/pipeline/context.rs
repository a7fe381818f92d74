//! The `context` phase: the per-request context every later phase reads and adds to, and the
//! first checks on the request (header limits, an unambiguous path, a matching route). Nothing
//! reads credentials before the path is proven unambiguous.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::Method;

use super::{normalize, trace};
use crate::auth::Mobile;
use crate::auth::partner::ClientCert;
use crate::error::GatewayError;
use crate::policy::Route;
use crate::policy::router::Match;
use crate::ratelimit::Headers;
use crate::runtime::{App, Runtime};
use crate::upstream::headers::{self, TraceContext};

/// Facts about the connection a request arrived on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
    /// The verified client certificate, when the client presented one.
    pub client_cert: Option<Arc<ClientCert>>,
}

/// One request's context: fixed facts, and what the phases learn (for the `log` phase's
/// metrics, span, access log and audit record — never raw personal data there).
pub struct RequestCtx {
    /// The policy snapshot this request is served under, start to end.
    pub rt: Arc<Runtime>,
    pub request_id: String,
    pub method: Method,
    pub started: tokio::time::Instant,
    /// Wall-clock time when the request arrived (unix ms, from the app's clock).
    pub now_ms: u64,
    /// The real client: the socket peer, or the hop a trusted proxy vouches for.
    pub client: IpAddr,
    /// The request arrived over TLS.
    pub tls: bool,
    pub trace: TraceContext,
    pub span: tracing::Span,
    /// The matched route's path parameters, `(name, value)` in template order, each value one
    /// path segment decoded once. They can name people, so they are read only through
    /// `ownership::check_request` and `pipeline::params`, never logged.
    pub path_params: Vec<(String, String)>,
    pub outcome: Outcome,
}

/// What the phases learned about the request.
#[derive(Default)]
pub struct Outcome {
    pub route: String,
    pub personal: bool,
    pub caller_kind: &'static str,
    /// Partner id (citizens are named in the `log` phase, as a keyed hash).
    pub caller_id: String,
    /// The verified mobile of a citizen caller, for the audit hasher only.
    pub citizen_mobile: Option<Mobile>,
    pub upstream_ms: Option<f64>,
    /// References of the records released (hashed when recorded; never logged), and how many
    /// records went out when that is known without them (streamed exports: None).
    pub released_refs: Vec<String>,
    pub record_count: Option<u64>,
    /// Mobiles whose records were released (hashed when recorded; never logged).
    pub released_owners: Vec<String>,
    pub fields_redacted: Vec<String>,
    /// `RateLimit-Policy` and `RateLimit` of a limited route, for success and refusal alike.
    pub rate_headers: Option<Headers>,
    /// The request was refused before any caller was identified: summarised in the audit
    /// trail, not recorded one by one.
    pub unidentified: bool,
    /// The waiting-room contest the request was forwarded from, and its rank.
    pub waiting_room: Option<crate::audit::ContestTurn>,
    /// A streamed answer's end, for its completion audit record.
    pub stream_end: Option<tokio::sync::oneshot::Receiver<super::redaction::StreamEnd>>,
}

impl RequestCtx {
    /// The context of a request that just arrived.
    pub fn new(app: &App, conn: &ConnInfo, head: &http::request::Parts) -> RequestCtx {
        let rt = app.snapshot();
        let (span, trace) = trace::start(&head.headers, &head.method);
        let client = headers::client_ip(conn.peer.ip(), &head.headers, &rt.policy);
        RequestCtx {
            rt,
            request_id: uuid::Uuid::new_v4().to_string(),
            method: head.method.clone(),
            started: tokio::time::Instant::now(),
            now_ms: app.clock.now_ms(),
            client,
            tls: conn.tls,
            trace,
            span,
            path_params: Vec::new(),
            outcome: Outcome { route: "unmatched".into(), caller_kind: "anonymous", ..Outcome::default() },
        }
    }
}

/// Check the request head against the gateway's limits and find its route: the route's index in
/// `rt.policy.routes` and `rt.limits`, and its path parameters (`(name, value)`, template order).
pub fn route(
    rt: &Runtime,
    head: &http::request::Parts,
    outcome: &mut Outcome,
) -> Result<(usize, Vec<(String, String)>), GatewayError> {
    let policy = &rt.policy;
    normalize::check_headers(&head.headers, &head.uri, &policy.limits)?;
    let segments = normalize::path_segments(&head.uri, &policy.limits)?;
    let segs: Vec<&str> = segments.iter().map(|s| s.as_ref()).collect();
    let (index, values) = match policy.route_for(&segs, &head.method) {
        Match::Found(index, values) => (index, values),
        Match::MethodNotAllowed(allowed) => {
            let allow = allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
            return Err(GatewayError::MethodNotAllowed { allow });
        }
        Match::NotFound => return Err(GatewayError::RouteNotFound),
    };
    let route: &Route = &policy.routes[index];
    outcome.route.clone_from(&route.name);
    outcome.personal = route.personal;
    if normalize::query_carries_token(head.uri.query()) {
        return Err(GatewayError::InvalidToken);
    }
    let params = route.params.iter().zip(values).map(|(name, value)| (name.clone(), value.to_string())).collect();
    Ok((index, params))
}
