//! The compiled `citizens` section: OTP rules, delivery, session limits, the subject source.

use std::time::Duration;

use crate::config::raw::{RawCitizens, RawWindow};
use crate::config::{At, ConfigError, Merged};

#[derive(Debug, Clone, Copy)]
pub struct WindowLimit {
    pub limit: u32,
    pub window: Duration,
}

#[derive(Debug, Clone)]
pub enum Delivery {
    /// Path relative to the data dir (or absolute).
    Outbox {
        path: String,
    },
    Webhook {
        url: http::Uri,
        timeout: Duration,
    },
}

#[derive(Debug, Clone)]
pub struct OtpRules {
    pub validity: Duration,
    pub max_attempts: u32,
    pub resend_after: Duration,
    /// Per mobile and source address.
    pub send_limits: Vec<WindowLimit>,
    /// Per mobile and source address.
    pub failure_limit: WindowLimit,
    /// Per mobile, every source together.
    pub mobile_send_ceiling: WindowLimit,
    /// Per mobile, every source together: at most [`MAX_WRONG_OTPS_PER_DAY`] a day.
    pub mobile_failure_ceiling: WindowLimit,
    /// Per source address, every mobile together.
    pub source_send_limit: WindowLimit,
    pub delivery: Delivery,
    pub console: bool,
}

#[derive(Debug, Clone)]
pub struct SessionRules {
    pub token_ttl: Duration,
    pub idle: Duration,
    pub absolute: Duration,
    pub leeway: Duration,
    pub issuer: String,
    pub audience: String,
}

#[derive(Debug, Clone)]
pub struct SubjectSource {
    pub upstream: usize,
    pub path: String,
    pub records: String,
    pub owner: String,
    pub reference: String,
    pub photo_id: String,
    /// `(array in each record, id field in each of its elements)` of the records' appointments.
    pub appointments: Option<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Citizens {
    pub otp: OtpRules,
    pub session: SessionRules,
    pub subjects: Option<SubjectSource>,
    pub assertion_ttl: Duration,
}

/// Longest OTP validity ARCHITECTURE.md ("Defaults and their sources") allows.
const MAX_OTP_VALIDITY: Duration = Duration::from_secs(600);
const MAX_LEEWAY: Duration = Duration::from_secs(30);
/// Wrong OTPs a day, per mobile, that keep a stranger's chance of guessing one person's 6-digit
/// OTP at most 10⁻³ a day: each wrong try is a fresh 10⁻⁶ chance, so 1,000 tries are ≤ 10⁻³,
/// however many addresses the stranger has (README, "Abuse resistance").
pub const MAX_WRONG_OTPS_PER_DAY: u64 = 1000;

pub fn compile(m: &Merged, errors: &mut Vec<ConfigError>) -> Option<Citizens> {
    let (at, c): (&At, &RawCitizens) = m.citizens.as_ref().map(|(a, c)| (a, c))?;
    let before = errors.len();
    let o = &c.otp;
    if o.validity.0.is_zero() || o.validity.0 > MAX_OTP_VALIDITY {
        errors.push(at.err("otp.validity", "must be between 1s and 10m"));
    }
    if !(1..=10).contains(&o.max_attempts) {
        errors.push(at.err("otp.max_attempts", "must be between 1 and 10"));
    }
    let window = |field: String, w: &RawWindow, errors: &mut Vec<ConfigError>| {
        if w.limit == 0 || w.window.0.is_zero() {
            errors.push(at.err(&field, "limit and window must be greater than zero"));
        }
        WindowLimit { limit: w.limit, window: w.window.0 }
    };
    let send_limits: Vec<WindowLimit> =
        o.send_limits.iter().enumerate().map(|(i, w)| window(format!("otp.send_limits[{i}]"), w, errors)).collect();
    let failure_limit = window("otp.failure_limit".into(), &o.failure_limit, errors);
    let mobile_send_ceiling = window("otp.mobile_send_ceiling".into(), &o.mobile_send_ceiling, errors);
    let mobile_failure_ceiling = window("otp.mobile_failure_ceiling".into(), &o.mobile_failure_ceiling, errors);
    let source_send_limit = window("otp.source_send_limit".into(), &o.source_send_limit, errors);
    // Wrong tries a day the ceiling allows, a window at a time (a window shorter than a day
    // refills several times in it).
    let day = Duration::from_secs(86_400);
    let windows_a_day = day.as_millis().div_ceil(mobile_failure_ceiling.window.as_millis().max(1));
    let per_day = u128::from(mobile_failure_ceiling.limit) * windows_a_day;
    if per_day > u128::from(MAX_WRONG_OTPS_PER_DAY) {
        errors.push(at.err(
            "otp.mobile_failure_ceiling",
            format!(
                "allows {per_day} wrong OTPs a day per mobile; more than {MAX_WRONG_OTPS_PER_DAY} gives a stranger \
                 more than a 10^-3 chance a day of guessing one person's OTP"
            ),
        ));
    }
    let delivery = match (&o.delivery.outbox, &o.delivery.webhook) {
        (Some(outbox), None) if outbox.path.is_empty() => {
            errors.push(at.err("otp.delivery.outbox.path", "must not be empty"));
            None
        }
        (Some(outbox), None) => Some(Delivery::Outbox { path: outbox.path.clone() }),
        (None, Some(hook)) => {
            let parsed = hook
                .url
                .parse::<http::Uri>()
                .ok()
                .filter(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some());
            if parsed.is_none() {
                errors.push(at.err("otp.delivery.webhook.url", format!("`{}` is not an http(s) URL", hook.url)));
            }
            let timeout = hook.timeout.map_or(Duration::from_secs(3), |t| t.0);
            if timeout.is_zero() || timeout > Duration::from_secs(10) {
                errors.push(at.err("otp.delivery.webhook.timeout", "must be between 1ms and 10s"));
            }
            parsed.map(|url| Delivery::Webhook { url, timeout })
        }
        _ => {
            errors.push(at.err("otp.delivery", "give exactly one of `outbox` and `webhook`"));
            None
        }
    };
    let s = &c.session;
    if s.leeway.0 > MAX_LEEWAY {
        errors.push(at.err("session.leeway", "must be at most 30s"));
    }
    if s.token_ttl.0.is_zero() || s.token_ttl.0 > s.absolute.0 {
        errors.push(at.err("session.token_ttl", "must be greater than zero and at most session.absolute"));
    }
    if s.idle.0.is_zero() {
        errors.push(at.err("session.idle", "must be greater than zero"));
    }
    if s.issuer.is_empty() || s.audience.is_empty() {
        errors.push(at.err("session", "issuer and audience must not be empty"));
    }
    let subjects = c.subjects.as_ref().and_then(|sub| {
        let upstream = m.upstreams.iter().position(|(_, n, _)| *n == sub.upstream);
        if upstream.is_none() {
            errors.push(at.err("subjects.upstream", format!("no upstream named `{}`", sub.upstream)));
        }
        if crate::policy::router::parse_template(&sub.path).is_err() || sub.path.contains('{') {
            errors.push(at.err("subjects.path", "must be a plain path such as /api/v2/appointment/beneficiaries"));
        }
        let appointments = match (&sub.appointments, &sub.appointment_id) {
            (Some(list), Some(id)) => Some((list.clone(), id.clone())),
            (None, None) => None,
            _ => {
                errors.push(at.err("subjects.appointments", "`appointments` and `appointment_id` go together"));
                None
            }
        };
        upstream.map(|upstream| SubjectSource {
            upstream,
            path: sub.path.clone(),
            records: sub.records.clone(),
            owner: sub.owner.clone(),
            reference: sub.reference.clone(),
            photo_id: sub.photo_id.clone(),
            appointments,
        })
    });
    let assertion_ttl = c.assertion_ttl.map_or(Duration::from_secs(300), |d| d.0);
    if assertion_ttl < Duration::from_secs(60) || assertion_ttl > Duration::from_secs(3600) {
        errors.push(at.err("assertion_ttl", "must be between 60s and 1h"));
    }
    if errors.len() != before {
        return None;
    }
    Some(Citizens {
        otp: OtpRules {
            validity: o.validity.0,
            max_attempts: o.max_attempts,
            resend_after: o.resend_after.0,
            send_limits,
            failure_limit,
            mobile_send_ceiling,
            mobile_failure_ceiling,
            source_send_limit,
            delivery: delivery?,
            console: o.console,
        },
        session: SessionRules {
            token_ttl: s.token_ttl.0,
            idle: s.idle.0,
            absolute: s.absolute.0,
            leeway: s.leeway.0,
            issuer: s.issuer.clone(),
            audience: s.audience.clone(),
        },
        subjects,
        assertion_ttl,
    })
}
