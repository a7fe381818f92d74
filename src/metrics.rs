//! Prometheus metrics served on the admin listener at `/metrics`.
//!
//! Label values are bounded: route names come from the policy (or `unmatched`), methods from a
//! fixed list, statuses are numbers. No request data ever becomes a label.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

mod audit;
mod process;
mod waiting;

use audit::AuditCollector;
pub use audit::{AuditSample, AuditSource, write_histogram as audit_write_histogram};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamErrorLabels {
    pub route: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ThrottleLabels {
    pub route: String,
    pub key: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RedactionLabels {
    pub profile: String,
    /// `applied`, or `dry_run` (would have been redacted).
    pub mode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartnerLabels {
    pub partner: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartnerStatusLabels {
    pub partner: String,
    pub status: u16,
}

/// What happened to an OTP request (`otpgate_otp_events_total{event}`).
pub const OTP_EVENTS: [&str; 8] = [
    "sent",
    "send_throttled",
    "delivery_failed",
    "confirmed",
    "wrong_otp",
    "invalid_txn",
    "confirm_throttled",
    "refused",
];
/// How a TLS handshake ended (`otpgate_tls_handshakes_total{kind}`).
pub const HANDSHAKE_KINDS: [&str; 3] = ["full", "resumed", "failed"];

/// Per-partner families: requests by status, people looked up today and the quota.
#[derive(Default)]
struct PartnerFamilies {
    requests: Family<PartnerStatusLabels, Counter>,
    subjects_today: Family<PartnerLabels, Gauge>,
    subject_quota: Family<PartnerLabels, Gauge>,
    subjects_new: Family<PartnerLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    pub upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub result: String,
}

/// Counters the span exporter keeps (see `telemetry`), exposed here.
#[derive(Clone, Default)]
pub struct SpanCounters {
    pub dropped: Counter,
    pub exported: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreOpLabels {
    pub op: String,
}

/// Counters the shared store keeps (see `store::redis`), exposed here.
#[derive(Clone)]
pub struct StoreCounters {
    errors: Family<StoreOpLabels, Counter>,
    fallbacks: Counter,
    up: Gauge,
}

impl Default for StoreCounters {
    fn default() -> Self {
        let up = Gauge::default();
        up.set(1);
        StoreCounters { errors: Family::default(), fallbacks: Counter::default(), up }
    }
}

impl StoreCounters {
    /// A call to the shared store failed or timed out.
    pub fn error(&self, op: &str) {
        self.errors.get_or_create(&StoreOpLabels { op: op.to_string() }).inc();
    }

    /// Whether the last call reached the store.
    pub fn set_up(&self, up: bool) {
        self.up.set(i64::from(up));
    }

    /// A rate-limit check used local windows because the shared store did not answer.
    pub fn fallback(&self) {
        self.fallbacks.inc();
    }
}

fn latency_histogram() -> Histogram {
    // 0.25 ms … ~8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    upstream_errors: Family<UpstreamErrorLabels, Counter>,
    reloads: Family<ReloadLabels, Counter>,
    throttled: Family<ThrottleLabels, Counter>,
    audit_failures: Counter,
    audit: AuditCollector,
    /// Values redacted (or, in dry run, that would have been), by profile.
    pub redactions: Family<RedactionLabels, Counter>,
    pub connections: Gauge,
    partner_crls_expired: Gauge,
    partner_crl_next_update: Gauge,
    partner_ca_not_after: Gauge,
    partners: PartnerFamilies,
    otp_events: Family<EventLabels, Counter>,
    tls_handshakes: Family<KindLabels, Counter>,
    tls_not_after: Gauge,
    breaker_state: Family<UpstreamLabels, Gauge>,
    breaker_opened: Family<UpstreamLabels, Counter>,
    /// Connections closed because an answer waited on its client longer than `timeouts.request`.
    pub stalled_closes: Counter,
    /// The waiting room's contests, entrants, wait and held requests.
    pub waiting_room: waiting::WaitingRoom,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Metrics including the span exporter's and the shared store's counters.
    pub fn with(spans: &SpanCounters, store: &StoreCounters) -> Self {
        let mut m = Self::new();
        m.registry.register(
            "store_errors",
            "Calls to the shared state store that failed or timed out, by operation",
            store.errors.clone(),
        );
        m.registry.register(
            "store_fallbacks",
            "Rate-limit checks answered from local windows because the shared store was unreachable",
            store.fallbacks.clone(),
        );
        m.registry.register(
            "store_up",
            "1 when the shared state store answers (or none is configured), else 0",
            store.up.clone(),
        );
        m.registry.register(
            "spans_dropped",
            "Spans dropped: the export queue was full, or the collector refused or did not answer",
            spans.dropped.clone(),
        );
        m.registry.register("spans_exported", "Spans accepted by the OTLP collector", spans.exported.clone());
        m
    }

    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("otpgate");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let upstream_errors = Family::<UpstreamErrorLabels, Counter>::default();
        let reloads = Family::<ReloadLabels, Counter>::default();
        let connections = Gauge::default();
        let throttled = Family::<ThrottleLabels, Counter>::default();
        registry.register(
            "throttled",
            "Requests refused by a rate limit or quota, by route and key kind",
            throttled.clone(),
        );
        registry.register("requests", "Requests by route, method and status", requests.clone());
        registry.register("request_duration_seconds", "Request latency by route", latency.clone());
        registry.register("upstream_errors", "Upstream failures by route and kind", upstream_errors.clone());
        registry.register("policy_reloads", "Policy reload attempts by result", reloads.clone());
        registry.register("connections_open", "Client connections currently open", connections.clone());
        // Present from the start, so that alerts on them work before the first reload.
        for result in ["success", "failure"] {
            drop(reloads.get_or_create(&ReloadLabels { result: result.into() }));
        }
        let audit_failures = Counter::default();
        registry.register(
            "audit_failures",
            "Personal-data responses withheld because the audit log could not be written",
            audit_failures.clone(),
        );
        let audit = AuditCollector::default();
        registry.register_collector(Box::new(audit.clone()));
        registry.register_collector(Box::new(process::Process));
        let redactions = Family::<RedactionLabels, Counter>::default();
        registry.register(
            "redacted_values",
            "Values redacted by profile; mode dry_run counts what a dry-run profile would have redacted",
            redactions.clone(),
        );
        let partner_crls_expired = Gauge::default();
        registry.register(
            "partner_crls_expired",
            "Partner CRLs of the current policy past their nextUpdate: certificates of the CAs they cover are refused",
            partner_crls_expired.clone(),
        );
        let partner_crl_next_update = Gauge::default();
        registry.register(
            "partner_crl_next_update_seconds",
            "Earliest nextUpdate (unix seconds) of the current policy's partner CRLs, 0 without CRLs; alert before it passes",
            partner_crl_next_update.clone(),
        );
        let partner_ca_not_after = Gauge::default();
        registry.register(
            "partner_ca_not_after_seconds",
            "Earliest notAfter (unix seconds) of the current policy's partner CA certificates, 0 without partners",
            partner_ca_not_after.clone(),
        );
        let partners = PartnerFamilies::default();
        registry.register("partner_requests", "Partner requests by partner and status", partners.requests.clone());
        registry.register(
            "partner_subjects_today",
            "Distinct people a partner looked up today (IST), as this replica last saw the shared count",
            partners.subjects_today.clone(),
        );
        registry.register(
            "partner_subject_quota",
            "A partner's daily quota of distinct people",
            partners.subject_quota.clone(),
        );
        registry.register(
            "partner_subjects_new",
            "People a partner looked up for the first time that day",
            partners.subjects_new.clone(),
        );
        let otp_events = Family::<EventLabels, Counter>::default();
        registry.register("otp_events", "OTP requests and confirmations by outcome", otp_events.clone());
        for event in OTP_EVENTS {
            drop(otp_events.get_or_create(&EventLabels { event }));
        }
        let tls_handshakes = Family::<KindLabels, Counter>::default();
        registry.register(
            "tls_handshakes",
            "TLS handshakes: full, resumed (ticket or session id) or failed",
            tls_handshakes.clone(),
        );
        for kind in HANDSHAKE_KINDS {
            drop(tls_handshakes.get_or_create(&KindLabels { kind }));
        }
        let tls_not_after = Gauge::default();
        registry.register(
            "tls_certificate_not_after_seconds",
            "notAfter (unix seconds) of the serving certificate, 0 without HTTPS",
            tls_not_after.clone(),
        );
        let breaker_state = Family::<UpstreamLabels, Gauge>::default();
        registry.register(
            "upstream_breaker_state",
            "Circuit breaker of each upstream: 0 closed, 1 open (refusing at once), 2 half open (probing)",
            breaker_state.clone(),
        );
        let breaker_opened = Family::<UpstreamLabels, Counter>::default();
        registry.register(
            "upstream_breaker_opened",
            "Times an upstream's circuit breaker opened",
            breaker_opened.clone(),
        );
        let waiting_room = waiting::WaitingRoom::register(&mut registry);
        let stalled_closes = Counter::default();
        registry.register(
            "connections_stalled_closed",
            "Connections closed because an answer waited for its client longer than timeouts.request",
            stalled_closes.clone(),
        );
        Metrics {
            waiting_room,
            stalled_closes,
            registry,
            breaker_state,
            breaker_opened,
            partner_ca_not_after,
            partners,
            otp_events,
            tls_handshakes,
            tls_not_after,
            requests,
            latency,
            upstream_errors,
            reloads,
            throttled,
            audit_failures,
            audit,
            redactions,
            connections,
            partner_crls_expired,
            partner_crl_next_update,
        }
    }

    pub fn request(&self, route: &str, method: &http::Method, status: u16, elapsed: Duration) {
        let method = match *method {
            http::Method::GET => "GET",
            http::Method::POST => "POST",
            http::Method::HEAD => "HEAD",
            http::Method::PUT => "PUT",
            http::Method::PATCH => "PATCH",
            http::Method::DELETE => "DELETE",
            http::Method::OPTIONS => "OPTIONS",
            _ => "other",
        };
        let labels = RequestLabels { route: route.to_string(), method: method.to_string(), status };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&RouteLabels { route: route.to_string() }).observe(elapsed.as_secs_f64());
    }

    pub fn upstream_error(&self, route: &str, kind: &str) {
        let labels = UpstreamErrorLabels { route: route.to_string(), kind: kind.to_string() };
        self.upstream_errors.get_or_create(&labels).inc();
    }

    pub fn throttled(&self, route: &str, key: &str) {
        self.throttled.get_or_create(&ThrottleLabels { route: route.to_string(), key: key.to_string() }).inc();
    }

    pub fn audit_failure(&self) {
        self.audit_failures.inc();
    }

    /// Report the audit log's head, health, free space and retention at each scrape (the first source
    /// attached stays).
    pub fn observe_audit(&self, source: impl AuditSource) {
        let _ = self.audit.source.set(Box::new(source));
    }

    pub fn redacted(&self, profile: &str, dry_run: bool, values: u64) {
        let mode = if dry_run { "dry_run" } else { "applied" };
        self.redactions
            .get_or_create(&RedactionLabels { profile: profile.to_string(), mode: mode.into() })
            .inc_by(values);
    }

    pub fn reload(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.reloads.get_or_create(&ReloadLabels { result: result.into() }).inc();
    }

    /// The state of the current policy's partner CRLs: how many are past their `nextUpdate`, and
    /// the earliest `nextUpdate` (unix ms), if there are CRLs.
    pub fn partner_crls(&self, expired: usize, earliest_next_update_ms: Option<u64>) {
        self.partner_crls_expired.set(i64::try_from(expired).unwrap_or(i64::MAX));
        let seconds = earliest_next_update_ms.map_or(0, |ms| ms / 1000);
        self.partner_crl_next_update.set(i64::try_from(seconds).unwrap_or(i64::MAX));
    }

    /// The earliest notAfter of the partner CAs (unix ms), if there are partners.
    pub fn partner_cas(&self, earliest_not_after_ms: Option<u64>) {
        self.partner_ca_not_after
            .set(i64::try_from(earliest_not_after_ms.map_or(0, |ms| ms / 1000)).unwrap_or(i64::MAX));
    }

    /// One answer to a partner.
    pub fn partner_request(&self, partner: &str, status: u16) {
        self.partners.requests.get_or_create(&PartnerStatusLabels { partner: partner.to_string(), status }).inc();
    }

    /// A partner's count of distinct people today after a lookup, its quota, and whether the person
    /// was new today.
    pub fn partner_subjects(&self, partner: &str, today: u64, quota: u32, new: bool) {
        let labels = PartnerLabels { partner: partner.to_string() };
        self.partners.subjects_today.get_or_create(&labels).set(i64::try_from(today).unwrap_or(i64::MAX));
        self.partners.subject_quota.get_or_create(&labels).set(i64::from(quota));
        if new {
            self.partners.subjects_new.get_or_create(&labels).inc();
        }
    }

    /// One outcome of the OTP flow (one of [`OTP_EVENTS`]).
    pub fn otp_event(&self, event: &'static str) {
        self.otp_events.get_or_create(&EventLabels { event }).inc();
    }

    /// One TLS handshake's end (one of [`HANDSHAKE_KINDS`]).
    pub fn tls_handshake(&self, kind: &'static str) {
        self.tls_handshakes.get_or_create(&KindLabels { kind }).inc();
    }

    /// The serving certificate's notAfter (unix seconds).
    pub fn tls_certificate(&self, not_after_secs: i64) {
        self.tls_not_after.set(not_after_secs);
    }

    /// An upstream's circuit breaker state (0 closed, 1 open, 2 half open); `opened` counts it.
    pub fn breaker(&self, upstream: &str, state: i64, opened: bool) {
        let labels = UpstreamLabels { upstream: upstream.to_string() };
        self.breaker_state.get_or_create(&labels).set(state);
        if opened {
            self.breaker_opened.get_or_create(&labels).inc();
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
