//! The `forward` phase: the verified identity minted for the upstream, the request headers
//! cleaned (see `upstream::headers`), and the exact bytes that were authorized sent on.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Response;

use super::context::{ConnInfo, RequestCtx};
use crate::authz::Permit;
use crate::error::GatewayError;
use crate::runtime::App;
use crate::upstream::PooledBody;
use crate::upstream::assertion::IDENTITY_HEADER;
use crate::upstream::breaker::{State, Transition};
use crate::upstream::headers::{self, Forwarding};

/// Lifetime of a citizen's assertion when the policy does not say.
const DEFAULT_CITIZEN_TTL: Duration = Duration::from_secs(300);

/// The assertion of the permit's identity (`None` on public routes). A citizen or partner
/// request is never forwarded without one.
pub fn assertion(app: &App, permit: &Permit<'_>, cx: &RequestCtx) -> Result<Option<Arc<str>>, GatewayError> {
    if permit.identity().is_none() {
        return Ok(None);
    }
    let ttl = cx.rt.policy.citizens.as_ref().map_or(DEFAULT_CITIZEN_TTL, |c| c.assertion_ttl);
    let minted = app.assertions.as_ref().and_then(|a| a.mint(permit, cx.now_ms / 1000, ttl));
    minted.map(Some).ok_or_else(|| {
        tracing::error!(request_id = cx.request_id, "no identity assertion could be minted");
        GatewayError::Internal
    })
}

/// Send the authorized request upstream. The response head arrives within the route timeout;
/// the returned deadline (the route timeout from sending) bounds reading its body too.
pub async fn send(
    app: &App,
    permit: &Permit<'_>,
    conn: &ConnInfo,
    mut head: http::request::Parts,
    body: Bytes,
    assertion: Option<&str>,
    cx: &mut RequestCtx,
) -> Result<(Response<PooledBody>, tokio::time::Instant), GatewayError> {
    let route = permit.route();
    let policy = &cx.rt.policy;
    let fwd = Forwarding {
        peer: conn.peer.ip(),
        peer_trusted: policy.is_trusted_proxy(conn.peer.ip()),
        tls: conn.tls,
        request_id: &cx.request_id,
        trace: &cx.trace,
        identity_encoding: route.personal,
        allow: route.forward_headers.as_deref(),
    };
    head.headers = headers::upstream_request_headers(std::mem::take(&mut head.headers), &fwd, policy);
    if let Some(token) = assertion
        && let Ok(v) = http::HeaderValue::from_str(token)
    {
        head.headers.insert(IDENTITY_HEADER, v);
    }
    let crate::policy::Target::Upstream(index) = route.target else {
        return Err(GatewayError::Internal);
    };
    let up = &policy.upstreams[index];
    let admission = app.breakers.admit(&up.name, up.breaker, app.clock.now_ms()).map_err(|refused| {
        app.metrics.upstream_error(&route.name, "breaker_open");
        GatewayError::UpstreamCircuitOpen { retry_after: refused.retry_after }
    })?;
    if admission.is_probe() {
        app.metrics.breaker(&up.name, State::HalfOpen.value(), false);
    }
    let sent = tokio::time::Instant::now();
    let deadline = sent + route.timeout;
    let result = cx.rt.client.forward(permit, head, body).await;
    match app.breakers.record(admission, up.breaker, result.is_ok(), app.clock.now_ms()) {
        Transition::Opened => {
            app.metrics.breaker(&up.name, State::Open.value(), true);
            let open_for_ms = u64::try_from(up.breaker.open_for.as_millis()).unwrap_or(u64::MAX);
            tracing::warn!(upstream = %up.name, open_for_ms, "upstream circuit breaker opened");
        }
        Transition::Closed => {
            app.metrics.breaker(&up.name, State::Closed.value(), false);
            tracing::info!(upstream = %up.name, "upstream circuit breaker closed");
        }
        Transition::None => {}
    }
    let upstream = result.map_err(|failure| {
        app.metrics.upstream_error(&route.name, failure.as_str());
        tracing::warn!(request_id = cx.request_id, route = %route.name, kind = failure.as_str(), "upstream failure");
        failure.error()
    })?;
    cx.outcome.upstream_ms = Some(sent.elapsed().as_secs_f64() * 1000.0);
    Ok((upstream, deadline))
}
