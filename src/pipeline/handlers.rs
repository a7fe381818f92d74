//! Routes the gateway answers itself: OTP generate/confirm and logout.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use super::context::RequestCtx;
use crate::auth::otp::OtpFlow;
use crate::authz::Permit;
use crate::body::{Body, full};
use crate::error::GatewayError;
use crate::policy::Handler;
use crate::runtime::App;

/// A JSON answer of the gateway's own.
pub fn json(status: StatusCode, value: &serde_json::Value, request_id: &str) -> Response<Body> {
    let mut resp = Response::new(full(Bytes::from(value.to_string())));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-request-id", v);
    }
    resp
}

/// The gateway's own answer to `handler`.
pub async fn answer(
    handler: Handler,
    permit: &Permit<'_>,
    app: &App,
    body: &[u8],
    cx: &RequestCtx,
) -> Result<Response<Body>, GatewayError> {
    let (rt, request_id) = (&cx.rt, cx.request_id.as_str());
    let value = match handler {
        Handler::MyAccessLog => return my_access_log(permit, app, request_id).await,
        Handler::Logout => {
            let c = permit.citizen().ok_or(GatewayError::Unauthenticated)?;
            app.store.session_revoke(c.session_id()).await.map_err(|_| GatewayError::StoreUnavailable)?;
            if let Some(a) = &app.assertions {
                a.forget(c.session_id());
            }
            app.subjects.invalidate(c.session_id()).await;
            serde_json::json!({ "message": "signed out" })
        }
        Handler::OtpGenerate | Handler::OtpConfirm => {
            let (Some(citizens), Some(cr), Some(otp_key)) = (&rt.policy.citizens, &rt.citizens, app.otp_key()) else {
                return Err(GatewayError::NotImplemented);
            };
            let flow = OtpFlow {
                store: &app.store,
                otp_key,
                rules: &citizens.otp,
                session: &citizens.session,
                delivery: &cr.delivery,
                tokens: &cr.tokens,
            };
            let source = crate::ratelimit::keys::ip_key(cx.client);
            let generate = handler == Handler::OtpGenerate;
            let answer = if generate {
                flow.generate(body, cx.now_ms, &source).await
            } else {
                flow.confirm(body, cx.now_ms, &source).await
            };
            app.metrics.otp_event(otp_event(generate, answer.as_ref().err()));
            answer?
        }
    };
    Ok(json(StatusCode::OK, &value, request_id))
}

/// The `otpgate_otp_events_total` event of one OTP answer.
fn otp_event(generate: bool, error: Option<&GatewayError>) -> &'static str {
    match (generate, error) {
        (true, None) => "sent",
        (false, None) => "confirmed",
        (true, Some(GatewayError::OtpThrottled { .. })) => "send_throttled",
        (false, Some(GatewayError::OtpThrottled { .. })) => "confirm_throttled",
        (_, Some(GatewayError::OtpDeliveryFailed)) => "delivery_failed",
        (_, Some(GatewayError::InvalidOtp)) => "wrong_otp",
        (_, Some(GatewayError::OtpTransactionInvalid)) => "invalid_txn",
        (_, Some(_)) => "refused",
    }
}

/// Who accessed the caller's records: partners by id, the caller as "you"; newest first.
async fn my_access_log(permit: &Permit<'_>, app: &App, request_id: &str) -> Result<Response<Body>, GatewayError> {
    let c = permit.citizen().ok_or(GatewayError::Unauthenticated)?;
    let audit = app.audit.as_ref().ok_or(GatewayError::NotImplemented)?;
    let me = audit.hasher.mobile(c.mobile().as_str());
    let entries = audit.accesses(&me).await.map_err(|e| {
        tracing::error!(error = %e, "access index unavailable; failing closed");
        GatewayError::StoreUnavailable
    })?;
    let accesses: Vec<serde_json::Value> = entries
        .into_iter()
        .map(|e| {
            let who = if e.caller_id == me { "you".to_string() } else { e.caller_id };
            serde_json::json!({
                "time": e.time,
                "accessedBy": { "kind": e.caller_kind, "id": who },
                "route": e.route,
                "fieldsRedacted": e.fields,
                "records": e.record_count,
            })
        })
        .collect();
    Ok(json(StatusCode::OK, &serde_json::json!({ "accesses": accesses }), request_id))
}
