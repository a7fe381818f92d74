//! Identification: turning credentials into a [`Caller`].
//!
//! Each authenticator either recognises its credential or is not responsible; what no
//! authenticator recognises is `Anonymous`. Only the credential a route asks for is read: a public
//! route never looks at a token, a citizen route only at its bearer token.

pub mod delivery;
pub mod jwt;
pub mod keys;
pub mod otp;
pub mod partner;

use std::fmt;

use http::{HeaderMap, header};

use crate::error::GatewayError;
use crate::policy::citizens::SessionRules;
use crate::store::Store;

/// A verified 10-digit mobile number. `Debug`/`Display` show only the last two digits, so the
/// number cannot reach a log by accident; [`Mobile::as_str`] is the deliberate way to read it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Mobile(String);

impl Mobile {
    pub fn new(canonical: String) -> Mobile {
        Mobile(canonical)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Mobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Mobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = &self.0[self.0.len().saturating_sub(2)..];
        write!(f, "********{tail}")
    }
}

/// A citizen with a live, verified session. Only `auth` builds one (from a verified token and a
/// live session), so holding a `Citizen` is proof of sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Citizen {
    session_id: String,
    mobile: Mobile,
}

impl Citizen {
    /// Opaque server-side session id (the token's `sub`).
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The verified mobile of the session.
    pub fn mobile(&self) -> &Mobile {
        &self.mobile
    }

    /// A citizen for unit tests of the stages after identification.
    #[cfg(test)]
    pub fn for_tests(session_id: &str, mobile: &str) -> Citizen {
        Citizen { session_id: session_id.into(), mobile: Mobile::new(mobile.into()) }
    }
}

/// Who is calling, as proven by credentials.
#[derive(Debug, Clone)]
pub enum Caller {
    /// No credentials, or none that this route reads.
    Anonymous,
    Citizen(Citizen),
    Partner(partner::PartnerCaller),
}

impl Caller {
    /// Metric and audit label of the caller kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Caller::Anonymous => "anonymous",
            Caller::Citizen(_) => "citizen",
            Caller::Partner(_) => "partner",
        }
    }
}

/// The bearer token of a request: `Ok(None)` when there is no `Authorization` header, an error
/// when there is one that is not exactly one well-formed `Bearer` credential.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, GatewayError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(GatewayError::InvalidToken);
    }
    let value = value.to_str().map_err(|_| GatewayError::InvalidToken)?;
    let (scheme, token) = value.split_once(' ').ok_or(GatewayError::InvalidToken)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(GatewayError::InvalidToken);
    }
    Ok(Some(token))
}

/// Identify a citizen from a bearer token: verify it (cached), then require a live server-side
/// session (not revoked, not idle too long, not too old). Revocation is a store lookup, never a
/// re-verification.
pub async fn identify_citizen(
    headers: &HeaderMap,
    tokens: &jwt::Tokens,
    store: &Store,
    rules: &SessionRules,
    now_ms: u64,
) -> Result<Caller, GatewayError> {
    let Some(token) = bearer_token(headers)? else {
        return Err(GatewayError::Unauthenticated);
    };
    let claims = tokens.verify(token, now_ms / 1000).map_err(|e| {
        tracing::debug!(reason = ?e, "token refused");
        GatewayError::InvalidToken
    })?;
    let session = store
        .session_touch(&claims.sub, now_ms, otp::session_limits(rules))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "session store failed; failing closed");
            GatewayError::StoreUnavailable
        })?
        .ok_or(GatewayError::InvalidToken)?;
    Ok(Caller::Citizen(Citizen { session_id: claims.sub, mobile: Mobile::new(session.mobile) }))
}

#[cfg(test)]
mod tests;
