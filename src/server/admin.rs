//! The admin listener: `/healthz` (the process is up), `/readyz` (it takes traffic: false while
//! draining; degraded, with the reason, while the shared state store does not answer) and
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
        // Still ready: every replica shares the store, so turning them all unready would empty
        // the Service and take the public routes down with sign-in (ARCHITECTURE.md, "Failure
        // policy"). The reason is said, and `otpgate_store_up` is 0 for the alert.
        "/readyz" if app.store.shared().is_some_and(|s| !s.is_healthy()) => json(
            StatusCode::OK,
            r#"{"ready":true,"degraded":"state store unreachable: sign-in, sessions and partner quotas answer 503; public routes serve"}"#,
        ),
        "/readyz" => json(StatusCode::OK, r#"{"ready":true}"#),
        "/metrics" => {
            let mut resp = Response::new(full(Bytes::from(app.metrics.encode())));
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
            resp
        }
        _ => GatewayError::RouteNotFound.render(&request_id),
    }
}

fn json(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut resp = Response::new(full(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
