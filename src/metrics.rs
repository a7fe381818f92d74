//! Prometheus metrics served on the admin listener at `/metrics`.
//!
//! Label values are bounded: route names come from the policy (or `unmatched`), methods from a
//! fixed list, statuses are numbers. No request data ever becomes a label.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

mod process;

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

/// The audit log's state at one scrape (see `audit::AuditLog`), read in one go so the head's seq and MAC
/// belong together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditSample {
    /// Seq of the newest durable line of the chain.
    pub head_seq: Option<u64>,
    /// The first 48 bits of that line's MAC, as an integer (exact in a float sample).
    pub head_mac48: u64,
    /// Whether appends are accepted (false while a failed write is retried).
    pub up: bool,
    /// Free bytes on the log's filesystem.
    pub free_bytes: Option<u64>,
    pub write_errors: u64,
    pub files_removed: u64,
    pub checkpoints: u64,
}

/// Where the audit metrics are read from at each scrape.
pub trait AuditSource: Send + Sync + 'static {
    fn sample(&self) -> AuditSample;
}

/// Reads the audit log (once one is attached) at each scrape.
#[derive(Clone, Default)]
struct AuditCollector {
    source: Arc<OnceLock<Box<dyn AuditSource>>>,
}

impl std::fmt::Debug for AuditCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditCollector").field("attached", &self.source.get().is_some()).finish()
    }
}

impl Collector for AuditCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(source) = self.source.get() else { return Ok(()) };
        let s = source.sample();
        let gauge = |encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64| {
            let g = ConstGauge::new(value);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
        };
        let counter = |encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64| {
            let c = ConstCounter::new(value);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)
        };
        let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        if let Some(seq) = s.head_seq {
            gauge(&mut encoder, "audit_head_seq", "Seq of the newest durable line of the audit chain", int(seq))?;
            gauge(
                &mut encoder,
                "audit_head_mac48",
                "First 48 bits of that line's MAC (printf %012x gives the hex for audit verify --anchor SEQ:HEX)",
                int(s.head_mac48),
            )?;
        }
        gauge(
            &mut encoder,
            "audit_up",
            "1 when the audit log accepts records, 0 while a failed write is retried",
            i64::from(s.up),
        )?;
        if let Some(free) = s.free_bytes {
            gauge(&mut encoder, "audit_free_bytes", "Free bytes on the audit log's filesystem", int(free))?;
        }
        counter(
            &mut encoder,
            "audit_write_errors",
            "Failed audit log writes or syncs (retries included)",
            s.write_errors,
        )?;
        counter(&mut encoder, "audit_files_removed", "Rotated audit log files removed by retention", s.files_removed)?;
        counter(
            &mut encoder,
            "audit_checkpoints",
            "Signed checkpoint lines written to the audit chain",
            s.checkpoints,
        )?;
        Ok(())
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
        Metrics {
            registry,
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

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
