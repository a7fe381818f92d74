//! The `body` phase: the whole request body, within the route's limit and the request timeout.
//! Read only once the caller is authorized, so strangers cannot make the gateway buffer bodies
//! on routes that need credentials.

use bytes::Bytes;
use http::header;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use std::time::Duration;

use crate::error::GatewayError;
use crate::policy::Route;

pub async fn read(
    body: Incoming,
    headers: &http::HeaderMap,
    route: &Route,
    timeout: Duration,
) -> Result<Bytes, GatewayError> {
    // A body the gateway reads (or forwards to a personal route, whose headers are allowlisted)
    // is read as sent: a compressed one could mean one thing to the checks and another upstream.
    let encoded =
        headers.get_all(header::CONTENT_ENCODING).iter().any(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    if encoded && (route.reads_body || route.personal) {
        return Err(GatewayError::UnsupportedContentEncoding);
    }
    let limit = route.body_limit;
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
