//! Citizen session tokens: EdDSA JWTs that carry no personal data.
//!
//! A token names an opaque session id (`sub`) and its lifetime; the server-side session behind it
//! holds everything else and can be revoked. Verification is strict and hand-rolled around the
//! signature check: exactly three base64url segments, a header of only `alg: EdDSA`, `typ: JWT` and a
//! known `kid` (no embedded or remote keys, no `crit`), then the Ed25519 signature, then typed claims
//! (`iss`, `aud` as one string, `sub`, integer `iat`/`nbf`/`exp`). Verified tokens are cached, so a
//! repeat costs a map lookup rather than a public-key operation; the time checks run on every hit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::keys::SessionKeys;

#[doc(hidden)]
pub mod fuzzing;

/// Largest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Largest leeway honoured for clock skew; [`Tokens::new`] clamps to it.
pub const MAX_LEEWAY: Duration = Duration::from_secs(30);
/// Verified tokens kept in the cache.
const CACHE_CAPACITY: u64 = 100_000;
/// Header fields that carry or point to a key; any of them refuses the token.
const EMBEDDED_KEY_FIELDS: [&str; 6] = ["jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256"];

/// Why a token was not issued or not accepted. Messages carry no token content.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not three base64url segments of JSON objects, or larger than [`MAX_TOKEN_BYTES`].
    #[error("malformed token")]
    Malformed,
    /// The header's `alg` is missing or is not `EdDSA`.
    #[error("token algorithm not accepted")]
    Algorithm,
    /// The header embeds or points to a key (`jwk`, `jku`, `x5u`, `x5c`, `x5t`, `x5t#S256`).
    #[error("token header carries a key")]
    EmbeddedKey,
    /// The header has `crit`, a field other than `alg`/`typ`/`kid`, or a `typ` other than `JWT`.
    #[error("token header not accepted")]
    UnsupportedHeader,
    /// The header's `kid` is missing or names none of our keys.
    #[error("token key id unknown")]
    UnknownKid,
    /// The signature does not verify under the named key.
    #[error("token signature invalid")]
    BadSignature,
    /// A required claim (`iss`, `aud`, `sub`, `iat`, `nbf`, `exp`) is absent or null.
    #[error("token claim missing")]
    MissingClaim,
    /// A claim has the wrong type or shape.
    #[error("token claim invalid")]
    BadClaim,
    /// `iss` is not this gateway.
    #[error("token issuer not accepted")]
    WrongIssuer,
    /// `aud` is not the citizen audience.
    #[error("token audience not accepted")]
    WrongAudience,
    /// `exp` has passed (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` lies in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iat` lies in the future (beyond the leeway).
    #[error("token issued in the future")]
    IssuedInFuture,
    /// [`Tokens::issue`] was given a session id outside `[A-Za-z0-9_-]{1,64}`.
    #[error("invalid session id")]
    InvalidSessionId,
    /// Signing failed in the crypto library.
    #[error("token signing failed")]
    Signing,
}

/// Token parameters; [`Default`] gives the documented defaults (15 min, 30 s leeway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenConfig {
    /// `iss` written and required (`otpgate`).
    pub issuer: String,
    /// `aud` written and required (`otpgate-citizen`).
    pub audience: String,
    /// Lifetime of an issued token.
    pub ttl: Duration,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`; at most [`MAX_LEEWAY`].
    pub leeway: Duration,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            issuer: "otpgate".to_owned(),
            audience: "otpgate-citizen".to_owned(),
            ttl: Duration::from_secs(15 * 60),
            leeway: MAX_LEEWAY,
        }
    }
}

/// What a verified token says: the session it belongs to and its lifetime. No personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionClaims {
    /// Opaque session id.
    pub sub: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
}

/// A verified token as cached: the claims plus what the per-hit time checks need.
#[derive(Clone)]
struct Cached {
    claims: SessionClaims,
    nbf: u64,
    /// Time left until `exp` when inserted; the cache drops the entry after it.
    ttl: Duration,
}

struct UntilExp;

impl moka::Expiry<String, Cached> for UntilExp {
    fn expire_after_create(&self, _key: &String, value: &Cached, _created_at: Instant) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Issues and verifies session tokens with the session keys.
pub struct Tokens {
    keys: Arc<SessionKeys>,
    config: TokenConfig,
    cache: moka::sync::Cache<String, Cached>,
}

#[derive(Serialize)]
struct OutHeader<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

#[derive(Serialize)]
struct OutClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
}

impl Tokens {
    /// Tokens signed by `keys.active_kid()`; `config.leeway` is clamped to [`MAX_LEEWAY`].
    pub fn new(keys: Arc<SessionKeys>, mut config: TokenConfig) -> Self {
        config.leeway = config.leeway.min(MAX_LEEWAY);
        let cache = moka::sync::Cache::builder().max_capacity(CACHE_CAPACITY).expire_after(UntilExp).build();
        Tokens { keys, config, cache }
    }

    /// The configuration in force (leeway already clamped).
    pub fn config(&self) -> &TokenConfig {
        &self.config
    }

    /// Sign a token for `session_id` issued at `now` (Unix seconds), valid for the configured ttl.
    pub fn issue(&self, session_id: &str, now: u64) -> Result<String, TokenError> {
        if !valid_session_id(session_id) {
            return Err(TokenError::InvalidSessionId);
        }
        let header = OutHeader { alg: "EdDSA", typ: "JWT", kid: self.keys.active_kid() };
        let claims = OutClaims {
            iss: &self.config.issuer,
            aud: &self.config.audience,
            sub: session_id,
            iat: now,
            nbf: now,
            exp: now.saturating_add(self.config.ttl.as_secs()),
        };
        let header = serde_json::to_vec(&header).map_err(|_| TokenError::Signing)?;
        let claims = serde_json::to_vec(&claims).map_err(|_| TokenError::Signing)?;
        let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), self.keys.signing_key(), Algorithm::EdDSA)
            .map_err(|_| TokenError::Signing)?;
        Ok(format!("{message}.{signature}"))
    }

    /// Verify a bearer token at time `now` (unix seconds). A token verified before is answered from a
    /// moka cache (bounded: 100_000 entries; an entry never outlives the token's exp) so the public-key
    /// verify does not run on every request; the cache is keyed on the full token string. The time
    /// checks (`exp`, `nbf`, `iat` against `now`) run on every call, cached or not.
    pub fn verify(&self, token: &str, now: u64) -> Result<SessionClaims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed);
        }
        if let Some(hit) = self.cache.get(token) {
            self.check_times(hit.claims.iat, hit.nbf, hit.claims.exp, now)?;
            return Ok(hit.claims);
        }
        let (claims, nbf) = self.verify_uncached(token, now)?;
        // Drop the entry by `exp` (by the cache's clock, and no later than one token lifetime); hits
        // re-check `exp` against `now` anyway.
        let ttl = Duration::from_secs(claims.exp.saturating_sub(now).min(self.config.ttl.as_secs()).max(1));
        self.cache.insert(token.to_owned(), Cached { claims: claims.clone(), nbf, ttl });
        Ok(claims)
    }

    fn verify_uncached(&self, token: &str, now: u64) -> Result<(SessionClaims, u64), TokenError> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header = b64(header_b64)?;
        let payload = b64(payload_b64)?;
        let signature = b64(signature_b64)?;

        let key = self.check_header(&header)?;
        let message_len = header_b64.len() + 1 + payload_b64.len();
        let message = &token.as_bytes()[..message_len];
        // Ed25519 signatures are exactly 64 bytes; anything else (including empty) cannot verify.
        if signature.len() != 64 {
            return Err(TokenError::BadSignature);
        }
        match jsonwebtoken::crypto::verify(signature_b64, message, key, Algorithm::EdDSA) {
            Ok(true) => {}
            _ => return Err(TokenError::BadSignature),
        }
        self.check_claims(&payload, now)
    }

    /// Check the raw header JSON and return the verifying key its `kid` names.
    fn check_header(&self, header: &[u8]) -> Result<&jsonwebtoken::DecodingKey, TokenError> {
        let fields = parse_object(header)?;
        if fields.iter().any(|(name, _)| EMBEDDED_KEY_FIELDS.contains(&name.as_str())) {
            return Err(TokenError::EmbeddedKey);
        }
        let get = |wanted: &str| fields.iter().find(|(name, _)| name == wanted).map(|(_, value)| value);
        if get("crit").is_some() {
            return Err(TokenError::UnsupportedHeader);
        }
        if get("alg").and_then(Value::as_str) != Some("EdDSA") {
            return Err(TokenError::Algorithm);
        }
        if fields.iter().any(|(name, _)| !matches!(name.as_str(), "alg" | "typ" | "kid")) {
            return Err(TokenError::UnsupportedHeader);
        }
        if let Some(typ) = get("typ")
            && !typ.as_str().is_some_and(|t| t.eq_ignore_ascii_case("JWT"))
        {
            return Err(TokenError::UnsupportedHeader);
        }
        let kid = get("kid").and_then(Value::as_str).ok_or(TokenError::UnknownKid)?;
        self.keys.verifying_key(kid).ok_or(TokenError::UnknownKid)
    }

    /// Type the claims of a token whose signature has verified; returns the claims and `nbf`.
    fn check_claims(&self, payload: &[u8], now: u64) -> Result<(SessionClaims, u64), TokenError> {
        let fields = parse_object(payload)?;
        let get = |wanted: &str| fields.iter().find(|(name, _)| name == wanted).map(|(_, value)| value);
        let iss = required_str(get("iss"))?;
        let aud = required_str(get("aud"))?;
        let sub = required_str(get("sub"))?;
        let iat = required_time(get("iat"))?;
        let nbf = required_time(get("nbf"))?;
        let exp = required_time(get("exp"))?;
        if get("jti").is_some_and(|jti| !jti.is_string()) {
            return Err(TokenError::BadClaim);
        }
        if !valid_session_id(sub) {
            return Err(TokenError::BadClaim);
        }
        if iss != self.config.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if aud != self.config.audience {
            return Err(TokenError::WrongAudience);
        }
        self.check_times(iat, nbf, exp, now)?;
        Ok((SessionClaims { sub: sub.to_owned(), iat, exp }, nbf))
    }

    fn check_times(&self, iat: u64, nbf: u64, exp: u64, now: u64) -> Result<(), TokenError> {
        let leeway = self.config.leeway.as_secs();
        if exp.saturating_add(leeway) < now {
            return Err(TokenError::Expired);
        }
        if nbf > now.saturating_add(leeway) {
            return Err(TokenError::NotYetValid);
        }
        if iat > now.saturating_add(leeway) {
            return Err(TokenError::IssuedInFuture);
        }
        Ok(())
    }
}

/// A new session id: 16 bytes from the CSPRNG, base64url without padding (22 characters).
pub fn new_session_id() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

/// Session ids accepted in tokens: `[A-Za-z0-9_-]{1,64}` (what [`new_session_id`] makes fits).
fn valid_session_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn b64(segment: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD.decode(segment).map_err(|_| TokenError::Malformed)
}

fn required_str(value: Option<&Value>) -> Result<&str, TokenError> {
    match value {
        None | Some(Value::Null) => Err(TokenError::MissingClaim),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(TokenError::BadClaim),
    }
}

/// A NumericDate as this gateway writes it: a non-negative JSON integer.
fn required_time(value: Option<&Value>) -> Result<u64, TokenError> {
    match value {
        None | Some(Value::Null) => Err(TokenError::MissingClaim),
        Some(v) => v.as_u64().ok_or(TokenError::BadClaim),
    }
}

/// A JSON object as its `(name, value)` list, refusing duplicate names (which parsers resolve differently).
fn parse_object(bytes: &[u8]) -> Result<Vec<(String, Value)>, TokenError> {
    struct Fields(Vec<(String, Value)>);

    impl<'de> Deserialize<'de> for Fields {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Fields;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                    let mut fields: Vec<(String, Value)> = Vec::new();
                    while let Some((name, value)) = map.next_entry::<String, Value>()? {
                        if fields.iter().any(|(seen, _)| *seen == name) {
                            return Err(serde::de::Error::custom("duplicate field"));
                        }
                        fields.push((name, value));
                    }
                    Ok(Fields(fields))
                }
            }
            deserializer.deserialize_map(Visit)
        }
    }

    serde_json::from_slice::<Fields>(bytes).map(|f| f.0).map_err(|_| TokenError::Malformed)
}

#[cfg(test)]
mod tests;
