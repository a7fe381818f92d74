//! The verified identity sent upstream: one HS256 assertion per session, cached until shortly
//! before it expires, so no request pays for a signature (and none for a public-key operation).

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

use super::assertion::{AssertionSigner, IdentityClaims};
use crate::authz::{Identity, Permit};

/// Lifetime of a partner's assertion.
const PARTNER_TTL: Duration = Duration::from_secs(300);

/// Reuse an assertion while it has at least this long to live.
const MIN_LEFT_SECS: u64 = 60;

pub struct Assertions {
    signer: AssertionSigner,
    cache: Cache<String, (Arc<str>, u64)>,
}

impl Assertions {
    pub fn new(identity_key: &[u8]) -> Self {
        Assertions {
            signer: AssertionSigner::new(identity_key),
            cache: Cache::builder().max_capacity(500_000).time_to_live(Duration::from_secs(3600)).build(),
        }
    }

    /// The assertion of the permit's identity at `now` (unix seconds): a citizen's lives
    /// `citizen_ttl`, a partner's five minutes. `None` for a public route, or when signing failed.
    pub fn mint(&self, permit: &Permit<'_>, now: u64, citizen_ttl: Duration) -> Option<Arc<str>> {
        match permit.identity()? {
            Identity::Citizen { session_id, mobile } => self.citizen(session_id, mobile.as_str(), now, citizen_ttl),
            Identity::Partner { id, scopes } => self.partner(id, scopes, now, PARTNER_TTL),
        }
    }

    /// The assertion for citizen session `session_id` (subject `mobile`), at `now` (unix seconds).
    fn citizen(&self, session_id: &str, mobile: &str, now: u64, ttl: Duration) -> Option<Arc<str>> {
        if let Some((token, exp)) = self.cache.get(session_id)
            && exp >= now + MIN_LEFT_SECS
        {
            return Some(token);
        }
        let claims = IdentityClaims::citizen(mobile, now, ttl.as_secs());
        let exp = claims.exp;
        let token: Arc<str> = self
            .signer
            .sign(&claims)
            .map_err(|e| tracing::error!(error = %e, "identity assertion signing failed"))
            .ok()?
            .into();
        self.cache.insert(session_id.to_string(), (token.clone(), exp));
        Some(token)
    }

    /// The assertion for partner `id` with its scopes.
    fn partner(&self, id: &str, scopes: &[String], now: u64, ttl: Duration) -> Option<Arc<str>> {
        let key = format!("partner:{id}");
        if let Some((token, exp)) = self.cache.get(&key)
            && exp >= now + MIN_LEFT_SECS
        {
            return Some(token);
        }
        let claims = IdentityClaims::partner(id, scopes.to_vec(), now, ttl.as_secs());
        let exp = claims.exp;
        let token: Arc<str> = self.signer.sign(&claims).ok()?.into();
        self.cache.insert(key, (token.clone(), exp));
        Some(token)
    }

    /// Forget a session's assertion (logout).
    pub fn forget(&self, session_id: &str) {
        self.cache.invalidate(session_id);
    }
}

#[cfg(test)]
mod tests;
