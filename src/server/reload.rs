//! The serving gateway's background work: reload the policy when its files — or the partner CA
//! and CRL files it names — change (polled) or on SIGHUP, watch partner CRLs pass their
//! `nextUpdate`, drop rate-limit keys whose buckets are full again, and watch the shared store's
//! health (for `/readyz` and `otpgate_store_up`). Each task ends when the gateway starts to drain.

use std::sync::Arc;
use std::time::Duration;

use crate::runtime::App;

/// Start the background tasks of `app`.
pub fn start(app: &Arc<App>) {
    tokio::spawn(watch_files(app.clone(), Duration::from_secs(1)));
    tokio::spawn(watch_crls(app.clone(), Duration::from_secs(1)));
    tokio::spawn(evict_limiters(app.clone(), Duration::from_secs(30)));
    tokio::spawn(watch_store(app.clone(), Duration::from_secs(1)));
    tokio::spawn(summarise_refusals(app.clone(), SUMMARY_INTERVAL));
    #[cfg(unix)]
    tokio::spawn(on_sighup(app.clone()));
}

/// Reload whenever the policy directory's content changes, or the content of a CA or CRL file
/// the running policy names (a CRL that now revokes a partner, a CA removed from a bundle), until
/// the app drains. Open connections follow: their certificates are verified again under the new
/// runtime before their next request (`auth::partner`).
async fn watch_files(app: Arc<App>, every: Duration) {
    if !app.source().can_change() {
        return;
    }
    let mut last_failed: Option<String> = None;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = app.shutdown.cancelled() => return,
        }
        let Ok(sources) = app.source().read() else { continue };
        let version = sources.version();
        let (policy_changed, files) = {
            let rt = app.snapshot();
            let files = rt.policy.partners.as_ref().and_then(|p| p.changed_trust_files());
            (version != rt.policy.version, files)
        };
        // A rejected edit is reported once, not every tick.
        let state = format!("{version}/{}", files.as_deref().unwrap_or(""));
        if (!policy_changed && files.is_none()) || last_failed.as_deref() == Some(&state) {
            continue;
        }
        if !policy_changed {
            tracing::info!("a partner CA or CRL file changed: reloading policy");
        }
        // Same policy text, other CA or CRL content: rebuild anyway.
        last_failed = app.reload(files.is_some()).is_err().then_some(state);
    }
}

/// Keep the partner CRL metrics current, and log when a CRL of the running policy passes its
/// `nextUpdate` (one already past when the policy was loaded was reported by the compile step).
/// The refusal itself needs no task: handshakes and requests check the CRL's time themselves.
async fn watch_crls(app: Arc<App>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<(u64, u64)> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = app.shutdown.cancelled() => return,
        }
        let rt = app.snapshot();
        let now = app.clock.now_ms();
        let crls = rt.policy.partners.as_ref().map_or(&[][..], |p| p.crl_info.as_slice());
        let expired = crls.iter().filter(|c| c.expired(now)).count();
        app.metrics.partner_crls(expired, crls.iter().map(|c| c.next_update_ms).min());
        app.metrics.partner_cas(rt.policy.partners.as_ref().and_then(|p| p.ca_not_after_ms));
        if let Some((generation, then)) = last
            && generation == rt.generation
        {
            for c in crls.iter().filter(|c| then < c.next_update_ms && c.expired(now)) {
                tracing::error!(
                    file = %c.file,
                    issuer = %c.issuer,
                    next_update = %crate::clock::rfc3339(c.next_update_ms),
                    "partner CRL passed its nextUpdate: certificates of the CA it covers are refused until a current CRL is installed"
                );
            }
        }
        last = Some((rt.generation, now));
    }
}

/// Keys whose buckets are full again are dropped, so limiter memory stays bounded.
async fn evict_limiters(app: Arc<App>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => app.limiters.evict(),
            _ = app.shutdown.cancelled() => return,
        }
    }
}

/// How often refusals before identification are written as summary records.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(60);

/// Write the summary records of refusals before identification every `every` (the drain writes
/// the last one, after the last request: see `Server::run`).
async fn summarise_refusals(app: Arc<App>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => flush_refusals(&app).await,
            _ = app.shutdown.cancelled() => return,
        }
    }
}

/// Write what refusals were counted since the last summary.
pub async fn flush_refusals(app: &App) {
    let Some(audit) = &app.audit else { return };
    let time = crate::clock::rfc3339(app.clock.now_ms());
    if let Err(e) = audit.flush_refusals(&time, &app.snapshot().policy.version).await {
        tracing::error!(error = %e, "refusal summary not written");
        app.metrics.audit_failure();
    }
}

/// Ask the shared store every `every` whether it answers; log when that changes.
async fn watch_store(app: Arc<App>, every: Duration) {
    let Some(store) = app.store.shared().cloned() else { return };
    let mut tick = tokio::time::interval(every);
    let mut was_up: Option<bool> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = app.shutdown.cancelled() => return,
        }
        let up = store.ping().await.is_ok();
        match (was_up, up) {
            (Some(true) | None, false) => {
                tracing::error!("state store unreachable: sign-in, sessions and quotas fail closed")
            }
            (Some(false), true) => tracing::info!("state store reachable again"),
            _ => {}
        }
        was_up = Some(up);
    }
}

/// SIGHUP forces a reload (CA and CRL files the policy names may have changed).
#[cfg(unix)]
async fn on_sighup(app: Arc<App>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
    loop {
        tokio::select! {
            got = hup.recv() => {
                if got.is_none() {
                    return;
                }
                tracing::info!("SIGHUP: reloading policy");
                let _ = app.reload(true);
            }
            _ = app.shutdown.cancelled() => return,
        }
    }
}
