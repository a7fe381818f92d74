//! The request pipeline: one fixed sequence of typed phases over one request context, written
//! as plain calls in one place ([`process`]); each phase is its own file.
//!
//! ```text
//! context → identify → authorize (Permit) → body → limits (caller)
//!         → handler                                                   ┐
//!         | assertion → ownership (request) → limits (named, quotas)  │ → log
//!           → waiting room → forward → respond (filter, redaction)    ┘
//! ```
//! Order is a security property (ARCHITECTURE.md, "The stage order"): nothing reads credentials
//! before the path is proven unambiguous, nothing is forwarded, asserted, fetched or redacted
//! without a `Permit`, and limits keyed on the people a request names are charged only once
//! they are shown to be the caller's. Every phase returns `Result<_, GatewayError>`; [`handle`]
//! hands the result to the `log` phase, which renders errors with the one renderer and writes
//! the audit record, metrics and access log for success and failure alike.

mod authorize;
mod body;
pub mod context;
mod forward;
mod handlers;
mod identify;
mod limits;
mod log;
pub mod normalize;
pub mod params;
mod redaction;
mod respond;
mod subjects;
mod trace;
mod waiting;

use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;

use crate::body::Body;
use crate::error::GatewayError;
use crate::policy::Target;
use crate::runtime::App;
pub use context::ConnInfo;
use context::RequestCtx;
use limits::Stage;

/// Serve one request. Never fails: errors become JSON error responses.
pub async fn handle(app: Arc<App>, conn: Arc<ConnInfo>, req: Request<Incoming>) -> Response<Body> {
    let (head, body) = req.into_parts();
    let mut cx = RequestCtx::new(&app, &conn, &head);
    let result = process(&app, &conn, head, body, &mut cx).await;
    log::finish(&app, cx, result).await
}

/// The phases, in order.
async fn process(
    app: &App,
    conn: &ConnInfo,
    head: http::request::Parts,
    body: Incoming,
    cx: &mut RequestCtx,
) -> Result<Response<Body>, GatewayError> {
    let rt = cx.rt.clone();
    let (index, path_params) = match context::route(&rt, &head, &mut cx.outcome) {
        Ok(found) => found,
        // A token in the query string is refused before anyone is identified: it is charged
        // to the refusal budget and summarised like any other such refusal.
        Err(refused @ GatewayError::InvalidToken) => {
            return Err(limits::unidentified(app, &head.headers, refused, cx).await);
        }
        Err(other) => return Err(other),
    };
    cx.path_params = path_params;
    let route = &rt.policy.routes[index];
    let caller = match identify::caller(app, route, conn, &head.headers, cx).await {
        Ok(caller) => caller,
        Err(refused @ (GatewayError::Unauthenticated | GatewayError::InvalidToken | GatewayError::Forbidden)) => {
            return Err(limits::unidentified(app, &head.headers, refused, cx).await);
        }
        Err(other) => return Err(other),
    };
    let permit = authorize::permit(route, caller, cx)?;
    let body = body::read(body, &head.headers, route, rt.policy.timeouts.request).await?;
    let query = head.uri.query();
    limits::charge(app, &permit, index, query, &body, Stage::Caller, cx).await?;

    if let Target::Handler(handler) = route.target {
        return handlers::answer(handler, &permit, app, &body, cx).await;
    }
    let assertion = forward::assertion(app, &permit, cx)?;
    subjects::check(app, &permit, &head, &body, assertion.as_deref(), cx).await?;
    limits::charge(app, &permit, index, query, &body, Stage::Named, cx).await?;
    let turn = waiting::enter(app, &permit, index, &body, cx).await?;
    let sent = forward::send(app, &permit, conn, head, body, assertion.as_deref(), cx).await;
    if let Some(turn) = turn {
        // The registry has decided: the next in the contest may go.
        turn.finish().await;
    }
    let (upstream, deadline) = sent?;
    respond::answer(upstream, deadline, &permit, app, cx).await
}
