//! The one gateway error type and its one renderer.
//!
//! Every stage of the pipeline returns `Result<_, GatewayError>`. [`GatewayError::status`] names the
//! status of every variant explicitly (no catch-all arm), and [`GatewayError::render`] turns any
//! error into the documented JSON shape `{"errorCode","error","requestId"}`. Messages are fixed
//! texts chosen here: an error body never echoes request data, tokens or internal detail.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::body::{Body, full};

/// Why a path was refused as ambiguous (it could mean two things to two parsers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    NotOriginForm,
    EncodedSeparator,
    EncodedUnreserved,
    DoubleEncoding,
    DotSegment,
    EmptySegment,
    Backslash,
    ControlOrNul,
    Semicolon,
    BadPercentEncoding,
    NotUtf8,
    LookAlike,
}

impl PathProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            PathProblem::NotOriginForm => "path must start with '/'",
            PathProblem::EncodedSeparator => "encoded '/' or '\\' in path",
            PathProblem::EncodedUnreserved => "needlessly percent-encoded character in path",
            PathProblem::DoubleEncoding => "double percent-encoding in path",
            PathProblem::DotSegment => "dot segment in path",
            PathProblem::EmptySegment => "empty path segment",
            PathProblem::Backslash => "backslash in path",
            PathProblem::ControlOrNul => "control character or NUL in path",
            PathProblem::Semicolon => "';' parameters in path",
            PathProblem::BadPercentEncoding => "malformed percent-encoding in path",
            PathProblem::NotUtf8 => "path is not UTF-8 after decoding",
            PathProblem::LookAlike => "a look-alike of '.', '/', '\\', '%', ';', '?' or '#' in path",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("ambiguous request path: {}", .0.as_str())]
    AmbiguousPath(PathProblem),
    #[error("malformed request: {0}")]
    BadRequest(&'static str),
    #[error("no route for this path")]
    RouteNotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    #[error("ambiguous request: {0}")]
    AmbiguousSubject(&'static str),
    #[error("authentication required")]
    Unauthenticated,
    #[error("invalid or expired session token")]
    InvalidToken,
    #[error("invalid mobile number: use a 10-digit Indian mobile number")]
    InvalidMobile,
    #[error("invalid OTP")]
    InvalidOtp,
    #[error("OTP transaction expired or not valid; request a new OTP")]
    OtpTransactionInvalid,
    #[error("too many OTP requests; try again later")]
    OtpThrottled { retry_after: Duration },
    #[error("the OTP could not be sent; try again later")]
    OtpDeliveryFailed,
    #[error("this record does not belong to the signed-in user")]
    NotOwned,
    #[error("no records found")]
    NoRecords,
    #[error("a booking request of yours for this is already waiting: book several beneficiaries in one request")]
    AlreadyWaiting,
    #[error("access denied")]
    Forbidden,
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("the request body must not be compressed (Content-Encoding) on this route")]
    UnsupportedContentEncoding,
    #[error("request URI too long")]
    UriTooLong,
    #[error("request header fields too large")]
    HeadersTooLarge,
    #[error("request not received in time")]
    RequestTimeout,
    #[error("too many requests")]
    RateLimited { retry_after: Duration },
    #[error("upstream unavailable")]
    UpstreamUnavailable,
    #[error("upstream sent an invalid response")]
    UpstreamBadResponse,
    #[error("upstream timed out")]
    UpstreamTimeout,
    #[error("upstream failing; not contacted for a while")]
    UpstreamCircuitOpen { retry_after: Duration },
    #[error("route not available")]
    NotImplemented,
    #[error("gateway is shutting down")]
    Draining,
    #[error("service temporarily unavailable")]
    StoreUnavailable,
    #[error("service temporarily unavailable: access cannot be recorded")]
    AuditUnavailable,
    #[error("internal error")]
    Internal,
}

impl GatewayError {
    /// The HTTP status of each error, named explicitly for every variant.
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::AmbiguousPath(_) => StatusCode::BAD_REQUEST,
            GatewayError::BadRequest(_) => StatusCode::BAD_REQUEST,
            GatewayError::RouteNotFound => StatusCode::NOT_FOUND,
            GatewayError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::AmbiguousSubject(_) => StatusCode::BAD_REQUEST,
            GatewayError::Unauthenticated => StatusCode::UNAUTHORIZED,
            GatewayError::InvalidToken => StatusCode::UNAUTHORIZED,
            GatewayError::InvalidMobile => StatusCode::BAD_REQUEST,
            GatewayError::InvalidOtp => StatusCode::UNAUTHORIZED,
            GatewayError::OtpTransactionInvalid => StatusCode::UNAUTHORIZED,
            GatewayError::OtpThrottled { .. } => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::OtpDeliveryFailed => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::NotOwned => StatusCode::FORBIDDEN,
            GatewayError::NoRecords => StatusCode::NOT_FOUND,
            GatewayError::AlreadyWaiting => StatusCode::CONFLICT,
            GatewayError::Forbidden => StatusCode::FORBIDDEN,
            GatewayError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::UnsupportedContentEncoding => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            GatewayError::UriTooLong => StatusCode::URI_TOO_LONG,
            GatewayError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            GatewayError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            GatewayError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            GatewayError::UpstreamBadResponse => StatusCode::BAD_GATEWAY,
            GatewayError::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::UpstreamCircuitOpen { .. } => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            GatewayError::Draining => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::AuditUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code clients and dashboards key on.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::AmbiguousPath(_) => "GWY4001",
            GatewayError::BadRequest(_) => "GWY4002",
            GatewayError::AmbiguousSubject(_) => "GWY4003",
            GatewayError::RouteNotFound => "GWY4041",
            GatewayError::NoRecords => "GWY4042",
            GatewayError::AlreadyWaiting => "GWY4091",
            GatewayError::MethodNotAllowed { .. } => "GWY4051",
            GatewayError::Unauthenticated => "USRAUT0001",
            GatewayError::InvalidMobile => "USRAUT0002",
            GatewayError::InvalidOtp => "USRAUT0003",
            GatewayError::OtpTransactionInvalid => "USRAUT0004",
            GatewayError::OtpThrottled { .. } => "USRAUT0005",
            GatewayError::OtpDeliveryFailed => "USRAUT0006",
            GatewayError::InvalidToken => "USRAUT0007",
            GatewayError::Forbidden => "GWY4031",
            GatewayError::NotOwned => "GWY4032",
            GatewayError::PayloadTooLarge => "GWY4131",
            GatewayError::UnsupportedContentEncoding => "GWY4151",
            GatewayError::UriTooLong => "GWY4141",
            GatewayError::HeadersTooLarge => "GWY4311",
            GatewayError::RequestTimeout => "GWY4081",
            GatewayError::RateLimited { .. } => "GWY4291",
            GatewayError::UpstreamUnavailable => "GWY5021",
            GatewayError::UpstreamBadResponse => "GWY5022",
            GatewayError::UpstreamTimeout => "GWY5041",
            GatewayError::UpstreamCircuitOpen { .. } => "GWY5034",
            GatewayError::NotImplemented => "GWY5011",
            GatewayError::Draining => "GWY5031",
            GatewayError::StoreUnavailable => "GWY5032",
            GatewayError::AuditUnavailable => "GWY5033",
            GatewayError::Internal => "GWY5001",
        }
    }

    /// Render the error as the documented JSON shape with the headers its status requires.
    pub fn render(&self, request_id: &str) -> Response<Body> {
        let body = serde_json::json!({
            "errorCode": self.code(),
            "error": self.to_string(),
            "requestId": request_id,
        });
        let mut resp = Response::new(full(Bytes::from(body.to_string())));
        *resp.status_mut() = self.status();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(v) = HeaderValue::from_str(request_id) {
            h.insert("x-request-id", v);
        }
        match self {
            GatewayError::Unauthenticated => {
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"otpgate\""));
            }
            GatewayError::InvalidToken => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"otpgate\", error=\"invalid_token\""),
                );
            }
            GatewayError::InvalidOtp | GatewayError::OtpTransactionInvalid => {
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("OTP realm=\"otpgate\""));
            }
            GatewayError::RateLimited { retry_after }
            | GatewayError::OtpThrottled { retry_after }
            | GatewayError::UpstreamCircuitOpen { retry_after } => {
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                h.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            }
            GatewayError::MethodNotAllowed { allow } => {
                if let Ok(v) = HeaderValue::from_str(allow) {
                    h.insert(header::ALLOW, v);
                }
            }
            GatewayError::Draining => {
                h.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            GatewayError::AmbiguousPath(_)
            | GatewayError::BadRequest(_)
            | GatewayError::AmbiguousSubject(_)
            | GatewayError::RouteNotFound
            | GatewayError::NoRecords
            | GatewayError::AlreadyWaiting
            | GatewayError::InvalidMobile
            | GatewayError::OtpDeliveryFailed
            | GatewayError::Forbidden
            | GatewayError::NotOwned
            | GatewayError::PayloadTooLarge
            | GatewayError::UnsupportedContentEncoding
            | GatewayError::UriTooLong
            | GatewayError::HeadersTooLarge
            | GatewayError::RequestTimeout
            | GatewayError::UpstreamUnavailable
            | GatewayError::UpstreamBadResponse
            | GatewayError::UpstreamTimeout
            | GatewayError::NotImplemented
            | GatewayError::StoreUnavailable
            | GatewayError::AuditUnavailable
            | GatewayError::Internal => {}
        }
        resp
    }
}

#[cfg(test)]
mod tests;
