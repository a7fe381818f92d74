//! The invariant the fuzz target `token` (`fuzz/fuzz_targets/token.rs`) and the corpus replay test
//! check on one input. Not part of the gateway's API.
//!
//! The verifier trusts one fixed key (`fuzz-a`); a second key (`fuzz-b`) is an attacker's. The first
//! input byte picks how the rest becomes a token:
//! - 0: the rest is the token text (and, as `Bearer <rest>`, an `Authorization` header);
//! - 1: one of the tokens the trusted key issued, edited by the rest (pairs of position and byte;
//!   byte 0 deletes);
//! - 2: header and claims JSON from the rest (split at the first `0xff`), signed by the attacker's
//!   key under either `kid`;
//! - 3: the same signed by the trusted key.
//!
//! Invariants: verification never panics and answers the same twice (the second time from the
//! cache); a token is accepted only if it is byte for byte one the trusted key issued (modes 0, 1),
//! never when the attacker signed it (2), and when the trusted key signed arbitrary JSON (3) only if
//! an independent reading finds exactly `alg: EdDSA`, an optional `typ: JWT` and the trusted `kid`,
//! and the right issuer, audience, session id shape and times.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::Value;

use super::{TokenConfig, Tokens, valid_session_id};
use crate::auth::keys::SessionKeys;

/// The fixed time of every check (Unix seconds).
pub const NOW: u64 = 1_750_000_000;
const TRUSTED_KID: &str = "fuzz-a";
const ATTACKER_KID: &str = "fuzz-b";
/// Throwaway Ed25519 keys, used only here.
const TRUSTED_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIOZ5gENvjZahkAlDu8LwWFkJmDpMKsXXiSivRVEvOicA
-----END PRIVATE KEY-----
";
const ATTACKER_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIAI/i/fxStM3nj/IkOID+eXjd+LjaIhFNayz47l6wU4o
-----END PRIVATE KEY-----
";
/// Session ids of the issued tokens, and the times (relative to [`NOW`]) they were issued at.
const ISSUED: [(&str, i64); 4] = [("AAECAwQFBgcICQoLDA0ODw", 0), ("s", -60), ("x_y-Z", -1000), ("future", 20)];

/// The verifier, the attacker's key and the tokens the trusted key issued.
pub struct Fixture {
    tokens: Tokens,
    trusted: EncodingKey,
    attacker: EncodingKey,
    issued: Vec<String>,
}

fn sign(header: &[u8], claims: &[u8], key: &EncodingKey) -> Result<String, String> {
    let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), key, Algorithm::EdDSA).map_err(|e| format!("sign: {e}"))?;
    Ok(format!("{message}.{signature}"))
}

fn edit(token: &str, edits: &[u8]) -> String {
    let mut bytes = token.as_bytes().to_vec();
    for pair in edits.chunks_exact(2) {
        if bytes.is_empty() {
            break;
        }
        let at = usize::from(pair[0]) % bytes.len();
        match pair[1] {
            0 => {
                bytes.remove(at);
            }
            b => bytes[at] = b,
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// What the verifier may accept of a token the trusted key signed, read independently.
fn acceptable(header: &[u8], claims: &[u8], config: &TokenConfig) -> Result<(), String> {
    let header: serde_json::Map<String, Value> = serde_json::from_slice(header).map_err(|e| format!("header: {e}"))?;
    let claims: serde_json::Map<String, Value> = serde_json::from_slice(claims).map_err(|e| format!("claims: {e}"))?;
    if header.get("alg") != Some(&Value::from("EdDSA")) || header.get("kid") != Some(&Value::from(TRUSTED_KID)) {
        return Err("accepted a header without alg EdDSA and the trusted kid".into());
    }
    if header.keys().any(|k| !matches!(k.as_str(), "alg" | "kid" | "typ")) {
        return Err("accepted a header with another field".into());
    }
    if header.get("typ").is_some_and(|t| !t.as_str().is_some_and(|t| t.eq_ignore_ascii_case("jwt"))) {
        return Err("accepted a typ other than JWT".into());
    }
    if claims.get("iss") != Some(&Value::from(config.issuer.as_str()))
        || claims.get("aud") != Some(&Value::from(config.audience.as_str()))
    {
        return Err("accepted another issuer or audience".into());
    }
    if !claims.get("sub").and_then(Value::as_str).is_some_and(valid_session_id) {
        return Err("accepted a session id of the wrong shape".into());
    }
    let time = |name: &str| claims.get(name).and_then(Value::as_u64).ok_or(format!("accepted without integer {name}"));
    let leeway = config.leeway.as_secs();
    if time("exp")?.saturating_add(leeway) < NOW {
        return Err("accepted an expired token".into());
    }
    if time("nbf")?.max(time("iat")?) > NOW + leeway {
        return Err("accepted a token from the future".into());
    }
    Ok(())
}

impl Fixture {
    /// Load the keys and issue the fixture's tokens.
    pub fn new() -> Result<Fixture, String> {
        let keys = SessionKeys::from_pems([(TRUSTED_KID, TRUSTED_PEM)]).map_err(|e| format!("keys: {e}"))?;
        let tokens = Tokens::new(Arc::new(keys), TokenConfig::default());
        let issued = ISSUED
            .iter()
            .map(|(sub, at)| tokens.issue(sub, NOW.saturating_add_signed(*at)).map_err(|e| format!("issue: {e}")))
            .collect::<Result<_, _>>()?;
        let key = |pem: &str| EncodingKey::from_ed_pem(pem.as_bytes()).map_err(|e| format!("key: {e}"));
        Ok(Fixture { tokens, trusted: key(TRUSTED_PEM)?, attacker: key(ATTACKER_PEM)?, issued })
    }

    /// The tokens the trusted key issued (the corpus seeds are built from them).
    pub fn issued(&self) -> &[String] {
        &self.issued
    }

    /// Check the invariant on one input; `Err` describes the violation.
    pub fn check(&self, data: &[u8]) -> Result<(), String> {
        let Some((&mode, rest)) = data.split_first() else {
            return Ok(());
        };
        let (header, claims) = match rest.iter().position(|&b| b == 0xff) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        match mode % 4 {
            0 => {
                let text = String::from_utf8_lossy(rest);
                self.only_issued(&text)?;
                let mut headers = http::HeaderMap::new();
                if let Ok(v) = http::HeaderValue::from_str(&format!("Bearer {text}")) {
                    headers.insert(http::header::AUTHORIZATION, v);
                }
                if let Ok(Some(token)) = crate::auth::bearer_token(&headers) {
                    if token.is_empty() || token.contains(' ') {
                        return Err(format!("bearer_token gave {token:?}"));
                    }
                    self.only_issued(token)?;
                }
                Ok(())
            }
            1 => {
                let Some(first) = rest.first() else {
                    return Ok(());
                };
                let base = &self.issued[usize::from(*first) % self.issued.len()];
                self.only_issued(&edit(base, &rest[1..]))
            }
            2 => {
                for kid in [TRUSTED_KID, ATTACKER_KID] {
                    let header = forged_header(header, kid);
                    let token = sign(&header, claims, &self.attacker)?;
                    if self.verify_twice(&token)? {
                        return Err(format!("accepted a token the attacker signed: {token}"));
                    }
                }
                Ok(())
            }
            _ => {
                let token = sign(header, claims, &self.trusted)?;
                if self.verify_twice(&token)? {
                    acceptable(header, claims, self.tokens.config())?;
                }
                Ok(())
            }
        }
    }

    fn only_issued(&self, token: &str) -> Result<(), String> {
        if self.verify_twice(token)? && !self.issued.iter().any(|t| t == token) {
            return Err(format!("accepted a token the trusted key never issued: {token:?}"));
        }
        Ok(())
    }

    /// Whether `token` is accepted; `Err` when a second (cached) verification disagrees.
    fn verify_twice(&self, token: &str) -> Result<bool, String> {
        let first = self.tokens.verify(token, NOW);
        let second = self.tokens.verify(token, NOW);
        if first != second {
            return Err(format!("verified twice, answered {first:?} then {second:?}"));
        }
        Ok(first.is_ok())
    }
}

/// The fuzzer's header, or when it is not a JSON object a well-formed one naming `kid`; an object
/// gets `kid` unless it has one.
fn forged_header(header: &[u8], kid: &str) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Map<String, Value>>(header) {
        Ok(mut object) => {
            object.entry("kid").or_insert_with(|| Value::from(kid));
            serde_json::to_vec(&object).unwrap_or_default()
        }
        Err(_) => format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}"}}"#).into_bytes(),
    }
}

/// [`Fixture::check`] with a fixture built for this one call.
pub fn check(data: &[u8]) -> Result<(), String> {
    Fixture::new()?.check(data)
}
