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
    /// Values redacted (or, in dry run, that would have been), by profile.
    pub redactions: Family<RedactionLabels, Counter>,
    pub connections: Gauge,
    partner_crls_expired: Gauge,
    partner_crl_next_update: Gauge,
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
        m.registry.register("spans_dropped", "Spans dropped because the export queue was full", spans.dropped.clone());
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
        Metrics {
            registry,
            requests,
            latency,
            upstream_errors,
            reloads,
            throttled,
            audit_failures,
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

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
