//! The identity assertion the gateway forwards to the registry: an HS256 JWT in [`IDENTITY_HEADER`].
//!
//! Shared by both sides: the gateway signs with [`sign_assertion`] (or a reusable [`AssertionSigner`]),
//! the registry verifies with [`AssertionVerifier`]. HS256 only; `iss`, `aud` and `exp` are required and
//! checked, with [`LEEWAY_SECS`] of clock leeway.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The request header that carries the assertion.
pub const IDENTITY_HEADER: &str = "x-otpgate-identity";
/// `iss` of every assertion.
pub const ISSUER: &str = "otpgate";
/// `aud` of every assertion.
pub const AUDIENCE: &str = "otpgate-upstream";
/// `kind` of a citizen assertion (`sub` is the 10-digit mobile).
pub const KIND_CITIZEN: &str = "citizen";
/// `kind` of a partner assertion (`sub` is the partner id).
pub const KIND_PARTNER: &str = "partner";
/// Clock leeway applied to `exp`.
pub const LEEWAY_SECS: u64 = 5;

/// The claims of an identity assertion.
/// `Debug` leaves out `sub` (a mobile number for citizens).
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct IdentityClaims {
    /// Always [`ISSUER`].
    pub iss: String,
    /// Always [`AUDIENCE`].
    pub aud: String,
    /// The citizen's mobile (10 digits) or the partner id.
    pub sub: String,
    /// [`KIND_CITIZEN`] or [`KIND_PARTNER`].
    pub kind: String,
    pub scopes: Vec<String>,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

impl std::fmt::Debug for IdentityClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityClaims").field("kind", &self.kind).field("exp", &self.exp).finish_non_exhaustive()
    }
}

impl IdentityClaims {
    /// Claims for a citizen session of `mobile`, valid `ttl_secs` from `now` (Unix seconds).
    pub fn citizen(mobile: &str, now: u64, ttl_secs: u64) -> IdentityClaims {
        Self::new(KIND_CITIZEN, mobile, Vec::new(), now, ttl_secs)
    }

    /// Claims for partner `partner_id` with `scopes`, valid `ttl_secs` from `now` (Unix seconds).
    pub fn partner(partner_id: &str, scopes: Vec<String>, now: u64, ttl_secs: u64) -> IdentityClaims {
        Self::new(KIND_PARTNER, partner_id, scopes, now, ttl_secs)
    }

    fn new(kind: &str, sub: &str, scopes: Vec<String>, now: u64, ttl_secs: u64) -> IdentityClaims {
        IdentityClaims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: sub.to_owned(),
            kind: kind.to_owned(),
            scopes,
            iat: now,
            exp: now.saturating_add(ttl_secs),
        }
    }
}

/// Sign `claims` as an HS256 JWT with `key`.
pub fn sign_assertion(key: &[u8], claims: &IdentityClaims) -> Result<String, jsonwebtoken::errors::Error> {
    AssertionSigner::new(key).sign(claims)
}

/// Verify an HS256 assertion with `key`: signature, `iss`, `aud` and `exp` (leeway [`LEEWAY_SECS`]).
pub fn verify_assertion(key: &[u8], token: &str) -> Result<IdentityClaims, jsonwebtoken::errors::Error> {
    AssertionVerifier::new(key).verify(token)
}

/// A signing key prepared once.
pub struct AssertionSigner {
    key: EncodingKey,
    header: Header,
}

impl AssertionSigner {
    pub fn new(key: &[u8]) -> AssertionSigner {
        AssertionSigner { key: EncodingKey::from_secret(key), header: Header::new(Algorithm::HS256) }
    }

    pub fn sign(&self, claims: &IdentityClaims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&self.header, claims, &self.key)
    }
}

/// A verification key and rules prepared once (the registry keeps one).
pub struct AssertionVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl AssertionVerifier {
    pub fn new(key: &[u8]) -> AssertionVerifier {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        AssertionVerifier { key: DecodingKey::from_secret(key), validation }
    }

    pub fn verify(&self, token: &str) -> Result<IdentityClaims, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<IdentityClaims>(token, &self.key, &self.validation).map(|d| d.claims)
    }
}
