//! The verified identity sent upstream: one HS256 assertion per session, cached until shortly
//! before it expires, so no request pays for a signature (and none for a public-key operation).

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

use super::assertion::{AssertionSigner, IdentityClaims};

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

    /// The assertion for citizen session `session_id` (subject `mobile`), at `now` (unix seconds).
    pub fn citizen(&self, session_id: &str, mobile: &str, now: u64, ttl: Duration) -> Option<Arc<str>> {
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
    pub fn partner(&self, id: &str, scopes: &[String], now: u64, ttl: Duration) -> Option<Arc<str>> {
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

    /// Forget a partner's cached assertion (its scopes may have changed).
    pub fn forget_partner(&self, id: &str) {
        self.cache.invalidate(&format!("partner:{id}"));
    }

    /// Forget a session's assertion (logout).
    pub fn forget(&self, session_id: &str) {
        self.cache.invalidate(session_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::assertion::verify_assertion;

    #[test]
    fn cached_until_close_to_expiry_and_verifiable() {
        let a = Assertions::new(b"k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y!");
        let now = 2_000_000_000;
        let ttl = Duration::from_secs(300);
        let t1 = a.citizen("s1", "9000000001", now, ttl).unwrap();
        assert_eq!(a.citizen("s1", "9000000001", now + 200, ttl).unwrap(), t1, "reused");
        let t2 = a.citizen("s1", "9000000001", now + 241, ttl).unwrap();
        assert_ne!(t1, t2, "re-signed when under a minute is left");
        a.forget("s1");
        assert_ne!(a.citizen("s1", "9000000001", now + 242, ttl).unwrap(), t2);
        let claims = verify_assertion(b"k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y!", &t1);
        // Verification uses the wall clock; an assertion from 2033 is valid today.
        assert_eq!(claims.unwrap().sub, "9000000001");
    }
}
