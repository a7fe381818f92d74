//! The admin listener: `/healthz` (the process is up), `/readyz` (it takes traffic: false while
//! draining; degraded, with the reason, while the shared state store does not answer or the audit
//! log cannot be written or is low on space; always with the audit log's free bytes) and
//! `/metrics` (Prometheus text).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use crate::body::{Body, full};
use crate::error::GatewayError;
use crate::runtime::App;

pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return GatewayError::MethodNotAllowed { allow: "GET, HEAD".into() }.render(&request_id);
    }
    match req.uri().path() {
        "/healthz" => json(StatusCode::OK, r#"{"status":"ok"}"#),
        "/readyz" if app.is_draining() => {
            json(StatusCode::SERVICE_UNAVAILABLE, r#"{"ready":false,"reason":"draining"}"#)
        }
        "/readyz" => readyz(&app),
        "/metrics" => {
            let mut resp = Response::new(full(Bytes::from(app.metrics.encode())));
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
            resp
        }
        _ => GatewayError::RouteNotFound.render(&request_id),
    }
}

/// Ready, with what is degraded. Degraded is still ready (200): turning a replica unready would not
/// help when every replica shares what failed — the store, and in the shipped chart one audit volume —
/// and would empty the Service, taking the public routes down too (ARCHITECTURE.md, "Failure policy").
/// The reasons are said here, and `otpgate_store_up`, `otpgate_audit_up` and
/// `otpgate_audit_free_bytes` carry them for alerts.
fn readyz(app: &App) -> Response<Body> {
    let mut degraded = Vec::new();
    if app.store.shared().is_some_and(|s| !s.is_healthy()) {
        degraded.push(
            "state store unreachable: sign-in, sessions and partner quotas answer 503; public routes serve".to_string(),
        );
    }
    let mut body = serde_json::json!({ "ready": true });
    if let Some(audit) = &app.audit {
        let room = audit.log.headroom();
        if !audit.log.is_healthy() {
            degraded.push(
                "audit log cannot be written: personal routes answer 503 until it can (it retries by itself)".into(),
            );
        }
        if room.is_low() {
            degraded.push(format!("audit log disk low: under {} bytes free", room.low_threshold));
        }
        body["audit_free_bytes"] = room.free_bytes.into();
    }
    if !degraded.is_empty() {
        body["degraded"] = degraded.join("; ").into();
    }
    let mut resp = json(StatusCode::OK, "");
    *resp.body_mut() = full(Bytes::from(body.to_string()));
    resp
}

fn json(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut resp = Response::new(full(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
