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
    for value in super::params::named_values(&route.quota_subjects, query, body)? {
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
