//! The response body type every stage hands around, and small constructors for it.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, combinators::UnsyncBoxBody};

/// Errors a body stream may end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A boxed, streaming response body.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A body holding exactly `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

/// A body with no bytes.
pub fn empty() -> Body {
    Empty::<Bytes>::new().map_err(|never| match never {}).boxed_unsync()
}
