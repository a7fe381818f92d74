//! The citizen OTP flow (ARCHITECTURE.md, "Defaults and their sources"): `generate` → txnId, `confirm` (SHA-256 of the OTP) → token.
//!
//! - 6 digits from a CSPRNG; stored only as `HMAC(otp_key, txnId ":" sha256hex(otp))`; compared in
//!   constant time; single use, atomically, even when two confirms race (see `store`).
//! - Expiry; `max_attempts` wrong tries burn the transaction.
//! - No stranger can lock the owner out: the resend cooldown, the send caps and the wrong-OTP
//!   count are kept per mobile **and source address** (an IPv4 address or an IPv6 /64), so an
//!   attacker's sends and wrong guesses spend only their own budget for that number. Two ceilings
//!   per mobile, all sources together, bound the rest: sends (SMS cost; 200 a day with 5 tries
//!   each is at most 1,000 guesses) and wrong OTPs (at most 1,000 a day; the policy refuses
//!   more): anyone's chance of guessing one person's OTP stays under 10⁻³ a day. A source that
//!   signed the number in before is not held to the send ceiling. OTPs one source may ask for,
//!   all mobiles together, are limited too (SMS pumping).
//! - Every valid +91 number gets the same answer: the gateway never asks whether a number is
//!   registered, so neither the body, the status, the headers nor the timing can tell.
//! - Store keys hold a keyed hash of the mobile, never the number.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};

use super::delivery::{Delivery, OtpMessage};
use super::jwt::{Tokens, new_session_id};
use crate::error::GatewayError;
use crate::policy::citizens::{OtpRules, SessionRules, WindowLimit};
use crate::store::{Attempt, OtpTxn, Session, SessionLimits, Store, Window};

type HmacSha256 = Hmac<Sha256>;

/// How long a source that signed a number in stays exempt from that number's send ceiling.
const KNOWN_SOURCE_FOR: std::time::Duration = std::time::Duration::from_secs(90 * 86_400);

/// What the OTP flow needs from the app and the current policy.
pub struct OtpFlow<'a> {
    pub store: &'a Store,
    pub otp_key: &'a [u8],
    pub rules: &'a OtpRules,
    pub session: &'a SessionRules,
    pub delivery: &'a Arc<dyn Delivery>,
    pub tokens: &'a Tokens,
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            m.update(b":");
        }
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// The store key part for a mobile: a keyed hash, so no store holds raw numbers.
pub fn mobile_key(otp_key: &[u8], mobile: &str) -> String {
    hex::encode(&mac(otp_key, &[b"mobile", mobile.as_bytes()])[..16])
}

/// The store key part for a source address (see `ratelimit::keys::ip_key`): a keyed hash too.
fn source_key(otp_key: &[u8], source: &str) -> String {
    hex::encode(&mac(otp_key, &[b"source", source.as_bytes()])[..16])
}

/// The store keys of one mobile asked from one source.
struct Keys {
    /// Wrong OTPs for this mobile from this source.
    fail: String,
    /// Wrong OTPs for this mobile from every source (the guessing ceiling).
    fail_all: String,
    /// Sends of this mobile from this source, per cap; and the resend cooldown.
    sends: Vec<String>,
    cool: String,
    /// Sends of this mobile from every source (the SMS ceiling).
    send_all: String,
    /// Sends from this source, to every mobile (SMS pumping).
    source: String,
    /// This source signed this mobile in before (the owner's device): exempt from the ceiling.
    known: String,
}

impl Keys {
    fn new(otp_key: &[u8], mobile: &str, source: &str, caps: usize) -> Keys {
        let (mk, sk) = (mobile_key(otp_key, mobile), source_key(otp_key, source));
        Keys {
            fail: format!("otp:fail:{mk}:{sk}"),
            fail_all: format!("otp:failall:{mk}"),
            sends: (0..caps).map(|i| format!("otp:send{i}:{mk}:{sk}")).collect(),
            cool: format!("otp:cool:{mk}:{sk}"),
            send_all: format!("otp:sendall:{mk}"),
            source: format!("otp:src:{sk}"),
            known: format!("otp:known:{mk}:{sk}"),
        }
    }
}

pub fn session_limits(rules: &SessionRules) -> SessionLimits {
    SessionLimits { idle: rules.idle, absolute: rules.absolute }
}

fn store_err(e: crate::store::StoreError) -> GatewayError {
    tracing::error!(error = %e, "state store failed; failing closed");
    GatewayError::StoreUnavailable
}

fn throttled(w: Window) -> Result<(), GatewayError> {
    match w {
        Window::Allowed => Ok(()),
        Window::Denied { retry_after } => Err(GatewayError::OtpThrottled { retry_after }),
    }
}

#[derive(serde::Deserialize)]
struct GenerateBody {
    mobile: serde_json::Value,
}

#[derive(serde::Deserialize)]
struct ConfirmBody {
    otp: String,
    #[serde(rename = "txnId")]
    txn_id: String,
}

impl OtpFlow<'_> {
    /// `{"mobile": "9XXXXXXXXX"}` → `{"txnId": uuid}`, asked from `source` (the client's
    /// address key).
    pub async fn generate(&self, body: &[u8], now_ms: u64, source: &str) -> Result<serde_json::Value, GatewayError> {
        let parsed: GenerateBody = crate::ownership::parse_strict(body)
            .ok()
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or(GatewayError::BadRequest("expected a JSON body {\"mobile\": \"…\"}"))?;
        let raw = match &parsed.mobile {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => return Err(GatewayError::InvalidMobile),
        };
        let mobile = crate::ownership::canonical_mobile(&raw).ok_or(GatewayError::InvalidMobile)?;
        let k = Keys::new(self.otp_key, &mobile, source, self.rules.send_limits.len());
        let r = self.rules;
        let s = self.store;

        // Wrong OTPs are counted on confirm; here they are only checked.
        for (key, cap) in [(&k.fail, r.failure_limit), (&k.fail_all, r.mobile_failure_ceiling)] {
            throttled(s.window_check(key, now_ms, cap.window, cap.limit).await.map_err(store_err)?)?;
        }
        // Each send window is checked and charged in one atomic step, in order, stopping at the
        // first refusal: no number of concurrent requests gets past a cap, and a source refused
        // on its own windows has not spent the number's ceiling. A source that signed this
        // number in before (the owner's device) is not held to the ceiling, so strangers who
        // spend it from many addresses still cannot lock the owner out there.
        let known = matches!(
            s.window_check(&k.known, now_ms, KNOWN_SOURCE_FOR, 1).await.map_err(store_err)?,
            Window::Denied { .. }
        );
        let sends = [(&k.cool, WindowLimit { limit: 1, window: r.resend_after })].into_iter();
        let sends = sends.chain(k.sends.iter().zip(r.send_limits.iter().copied()));
        let sends = sends.chain([(&k.source, r.source_send_limit)]);
        let ceiling = (!known).then_some((&k.send_all, r.mobile_send_ceiling));
        for (key, cap) in sends.chain(ceiling) {
            throttled(s.window_hit(key, now_ms, cap.window, cap.limit).await.map_err(store_err)?)?;
        }

        let otp = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
        let txn_id = uuid::Uuid::new_v4().to_string();
        let otp_hash = hex::encode(Sha256::digest(otp.as_bytes()));
        let txn = OtpTxn {
            mobile: mobile.clone(),
            mac: mac(self.otp_key, &[txn_id.as_bytes(), otp_hash.as_bytes()]),
            expires_at_ms: now_ms + u64::try_from(r.validity.as_millis()).unwrap_or(u64::MAX),
            attempts: 0,
        };
        s.txn_put(&txn_id, txn, r.validity).await.map_err(store_err)?;

        // Deliver on its own task: a client that hangs up does not cancel the send, and the wait
        // is bounded by the delivery's own timeout.
        let msg = OtpMessage { mobile, txn_id: txn_id.clone(), otp, time_ms: now_ms, validity: r.validity };
        let delivery = self.delivery.clone();
        let delivered = tokio::spawn(async move { delivery.deliver(&msg).await }).await;
        match delivered {
            Ok(Ok(())) => Ok(serde_json::json!({ "txnId": txn_id })),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "OTP delivery failed; transaction burned");
                s.txn_burn(&txn_id).await.map_err(store_err)?;
                Err(GatewayError::OtpDeliveryFailed)
            }
            Err(_) => {
                s.txn_burn(&txn_id).await.map_err(store_err)?;
                Err(GatewayError::OtpDeliveryFailed)
            }
        }
    }

    /// `{"otp": sha256hex(otp), "txnId"}` → `{"token"}` and a new server-side session; `source`
    /// is the client's address key.
    pub async fn confirm(&self, body: &[u8], now_ms: u64, source: &str) -> Result<serde_json::Value, GatewayError> {
        let parsed: ConfirmBody = crate::ownership::parse_strict(body)
            .ok()
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or(GatewayError::BadRequest("expected a JSON body {\"otp\": \"<sha256 hex>\", \"txnId\": \"…\"}"))?;
        let otp_hash = parsed.otp.to_ascii_lowercase();
        if otp_hash.len() != 64 || !otp_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(GatewayError::BadRequest("otp must be the SHA-256 of the OTP, in hex"));
        }
        let txn_id = uuid::Uuid::parse_str(&parsed.txn_id)
            .map_err(|_| GatewayError::OtpTransactionInvalid)?
            .hyphenated()
            .to_string();
        let s = self.store;
        let r = self.rules;
        let mobile =
            s.txn_mobile(&txn_id, now_ms).await.map_err(store_err)?.ok_or(GatewayError::OtpTransactionInvalid)?;
        let k = Keys::new(self.otp_key, &mobile, source, 0);
        for (key, cap) in [(&k.fail, r.failure_limit), (&k.fail_all, r.mobile_failure_ceiling)] {
            if let Window::Denied { retry_after } =
                s.window_check(key, now_ms, cap.window, cap.limit).await.map_err(store_err)?
            {
                s.txn_burn(&txn_id).await.map_err(store_err)?;
                return Err(GatewayError::OtpThrottled { retry_after });
            }
        }
        let candidate = mac(self.otp_key, &[txn_id.as_bytes(), otp_hash.as_bytes()]);
        match s.txn_attempt(&txn_id, &candidate, r.max_attempts, now_ms).await.map_err(store_err)? {
            Attempt::Verified(mobile) => {
                // This source now knows this number (see `generate`).
                s.window_record(&k.known, now_ms, KNOWN_SOURCE_FOR).await.map_err(store_err)?;
                let sid = new_session_id();
                let session = Session { mobile, created_ms: now_ms, last_seen_ms: now_ms };
                s.session_put(&sid, session, session_limits(self.session)).await.map_err(store_err)?;
                let token = self.tokens.issue(&sid, now_ms / 1000).map_err(|e| {
                    tracing::error!(error = %e, "token signing failed");
                    GatewayError::Internal
                })?;
                Ok(serde_json::json!({ "token": token }))
            }
            Attempt::Wrong { .. } => {
                s.window_record(&k.fail, now_ms, r.failure_limit.window).await.map_err(store_err)?;
                s.window_record(&k.fail_all, now_ms, r.mobile_failure_ceiling.window).await.map_err(store_err)?;
                Err(GatewayError::InvalidOtp)
            }
            Attempt::Invalid => Err(GatewayError::OtpTransactionInvalid),
        }
    }
}

#[cfg(test)]
mod tests;
