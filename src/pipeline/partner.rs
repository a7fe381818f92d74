//! Partner quotas: requests per window, and distinct people looked up per day (IST). The second is
//! what stops one valid credential from being used to look up the whole registry, as in 2023.
//! Subjects are counted as keyed hashes, never stored raw.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::app::{App, Runtime};
use crate::auth::partner::PartnerCaller;
use crate::error::GatewayError;
use crate::policy::Route;
use crate::policy::partners::{ist_day, until_ist_midnight};
use crate::store::Window;

/// Sets of the subjects-per-day quota outlive their day by a margin.
const SUBJECT_SET_TTL: Duration = Duration::from_secs(48 * 3600);

fn store_err(e: crate::store::StoreError) -> GatewayError {
    tracing::error!(error = %e, "state store failed; failing closed");
    GatewayError::StoreUnavailable
}

/// The values of `names` in the query string and the top-level keys of a JSON body.
fn named_values(names: &[String], query: Option<&str>, body: &[u8]) -> Result<Vec<String>, GatewayError> {
    let mut out = Vec::new();
    let wanted = |n: &str| names.iter().any(|w| w.eq_ignore_ascii_case(n));
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_encoding::percent_decode_str(k).decode_utf8_lossy();
        if wanted(k.trim_end_matches("[]")) {
            out.push(percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned());
        }
    }
    if !body.is_empty() {
        let doc = crate::ownership::parse_strict(body)
            .map_err(|_| GatewayError::AmbiguousSubject("the body must be one JSON object"))?;
        let obj = doc.as_object().ok_or(GatewayError::AmbiguousSubject("the body must be one JSON object"))?;
        for (k, v) in obj {
            if !wanted(k) {
                continue;
            }
            match v {
                serde_json::Value::String(s) => out.push(s.clone()),
                serde_json::Value::Number(n) => out.push(n.to_string()),
                serde_json::Value::Array(items) => {
                    for item in items {
                        match item {
                            serde_json::Value::String(s) => out.push(s.clone()),
                            serde_json::Value::Number(n) => out.push(n.to_string()),
                            _ => return Err(GatewayError::AmbiguousSubject("subjects are strings or numbers")),
                        }
                    }
                }
                _ => return Err(GatewayError::AmbiguousSubject("subjects are strings or numbers")),
            }
        }
    }
    // A mobile and the same mobile with +91 are one person.
    Ok(out.into_iter().map(|v| crate::ownership::canonical_mobile(&v).unwrap_or(v)).collect())
}

/// Charge this request to the partner's quotas, or refuse it with 429.
pub async fn charge_quota(
    app: &App,
    rt: &Runtime,
    partner: &PartnerCaller,
    route: &Route,
    query: Option<&str>,
    body: &[u8],
    now_ms: u64,
) -> Result<(), GatewayError> {
    let Some(p) = rt.policy.partners.as_ref().and_then(|ps| ps.clients.iter().find(|c| c.id == partner.id)) else {
        return Err(GatewayError::Forbidden);
    };
    if let Some(req) = p.quota.requests
        && let Window::Denied { retry_after } =
            app.store.window_hit(&format!("pq:req:{}", p.id), now_ms, req.window, req.limit).await.map_err(store_err)?
    {
        return Err(GatewayError::RateLimited { retry_after });
    }
    let Some(limit) = p.quota.subjects_per_day else {
        return Ok(());
    };
    if route.quota_subjects.is_empty() {
        return Ok(());
    }
    let key_material = app.otp_key().unwrap_or(b"otpgate-subjects");
    let key = format!("pq:subj:{}:{}", p.id, ist_day(now_ms));
    for value in named_values(&route.quota_subjects, query, body)? {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key_material).map_err(|_| GatewayError::Internal)?;
        mac.update(b"subject:");
        mac.update(value.as_bytes());
        let member = hex::encode(&mac.finalize().into_bytes()[..16]);
        if !app.store.distinct_add(&key, &member, limit, SUBJECT_SET_TTL).await.map_err(store_err)? {
            return Err(GatewayError::RateLimited { retry_after: until_ist_midnight(now_ms) });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_come_from_query_and_json_and_are_canonical() {
        let names = vec!["mobile".to_string(), "photo_id_number".to_string()];
        let v =
            named_values(&names, Some("mobile=%2B919000000001&x=1"), br#"{"photo_id_number":"234512341234"}"#).unwrap();
        assert_eq!(v, ["9000000001", "234512341234"]);
        let v = named_values(&names, None, br#"{"MOBILE":[9000000002, "9000000003"]}"#).unwrap();
        assert_eq!(v, ["9000000002", "9000000003"]);
        assert!(named_values(&names, None, br#"{"mobile":"1","mobile":"2"}"#).is_err(), "duplicate keys");
        assert!(named_values(&names, None, b"mobile=9000000001").is_err(), "not JSON");
        assert!(named_values(&names, None, br#"{"mobile":{"$ne":1}}"#).is_err());
    }
}
