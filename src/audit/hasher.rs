//! Keyed pseudonyms for the audit trail: mobiles and record references become HMAC-SHA256 tokens, so the
//! trail can be searched by someone holding the key but never shows a raw number.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the HMAC kept in a token (128 bits: collision-free in practice, short in the log).
const TOKEN_BYTES: usize = 16;

/// Turns mobiles and record references into keyed tokens (`m:…`, `r:…`). Cheap to clone.
#[derive(Clone)]
pub struct Hasher {
    keyed: HmacSha256,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hasher(<key>)")
    }
}

impl Hasher {
    /// A hasher keyed with `key` (any length; use ≥ 32 random bytes).
    pub fn new(key: &[u8]) -> Self {
        let keyed =
            <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        Hasher { keyed }
    }

    /// `"m:"` + hex of 16 bytes of HMAC-SHA256(key, `"mobile:"` + the canonical 10 digits).
    ///
    /// `+91 …`, `91…` and `0…` spellings canonicalize to the same token; input that is not a valid mobile
    /// is hashed as given (trimmed), in the same domain, so it still never appears in clear.
    pub fn mobile(&self, mobile: &str) -> String {
        let trimmed = mobile.trim();
        let canonical = crate::ownership::canonical_mobile(trimmed);
        let digits = canonical.as_deref().unwrap_or(trimmed);
        self.token("m:", b"mobile:", digits)
    }

    /// `"r:"` + hex of 16 bytes of HMAC-SHA256(key, `"record:"` + the reference, trimmed).
    pub fn record(&self, reference: &str) -> String {
        self.token("r:", b"record:", reference.trim())
    }

    fn token(&self, prefix: &str, domain: &[u8], value: &str) -> String {
        let mut mac = self.keyed.clone();
        mac.update(domain);
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(prefix.len() + 2 * TOKEN_BYTES);
        out.push_str(prefix);
        out.push_str(&hex::encode(&digest[..TOKEN_BYTES]));
        out
    }
}
