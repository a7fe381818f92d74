//! Logs and traces: structured logs on stderr (text or JSON; control characters are escaped by
//! both formatters), and OpenTelemetry spans exported over OTLP when the standard `OTEL_*`
//! variables ask for it (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL` = `grpc` or
//! `http/protobuf`, `OTEL_SERVICE_NAME`, `OTEL_TRACES_EXPORTER=none`, `OTEL_BSP_*`).
//!
//! Spans go through a bounded queue of our own: when the collector is slow or away, spans are
//! dropped (and counted in `otpgate_spans_dropped_total`), never buffered without limit and never
//! allowed to slow requests. The durable audit log does not depend on this path.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter as _, SpanProcessor};
use prometheus_client::metrics::counter::Counter;

pub use crate::metrics::SpanCounters;
use tokio::sync::mpsc;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::FilterExt as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

mod access;
mod sink;
pub use access::ACCESS_TARGET;
pub use sink::LogSink;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Target of request spans; only these go to the OTLP exporter.
pub const SPAN_TARGET: &str = "otpgate::span";

/// Keeps the tracer provider alive; `shutdown` flushes what is queued.
pub struct Telemetry {
    pub counters: SpanCounters,
    provider: Option<SdkTracerProvider>,
    pub otlp: Option<String>,
    logs: LogSink,
}

impl Telemetry {
    /// Flush what is queued: spans, then the log lines still buffered.
    pub fn shutdown(&self) {
        if let Some(p) = &self.provider {
            let _ = p.shutdown_with_timeout(Duration::from_secs(5));
        }
        self.logs.close();
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn env_num(name: &str, default: u64) -> u64 {
    env(name).and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// Install the global subscriber. Call inside the tokio runtime (the exporters need it).
pub fn init(format: LogFormat) -> Telemetry {
    let counters = SpanCounters::default();
    let (provider, otlp, problem) = otlp_provider(&counters);
    let logs = LogSink::stderr();
    subscriber(format, provider.as_ref(), &logs).init();
    if let Some(p) = problem {
        tracing::warn!(problem = %p, "OTLP export disabled");
    }
    Telemetry { counters, provider, otlp, logs }
}

/// Logs to `logs` (filtered by `OTPGATE_LOG`, default `info`), request spans to `provider`.
fn subscriber(
    format: LogFormat,
    provider: Option<&SdkTracerProvider>,
    logs: &LogSink,
) -> Box<dyn tracing::Subscriber + Send + Sync> {
    let env_filter = || EnvFilter::try_from_env("OTPGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // The filter sits outside the `Option` (an absent layer would otherwise say yes to every
    // span), and says up to which level it can want anything, so that spans and events below
    // every layer's level are refused at their call site (h2 opens trace spans per frame).
    let exporting = provider.is_some();
    let otel_layer = provider.map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("otpgate"))).with_filter(
        tracing_subscriber::filter::filter_fn(move |m| exporting && m.target() == SPAN_TARGET).with_max_level_hint(
            if exporting {
                tracing::level_filters::LevelFilter::INFO
            } else {
                tracing::level_filters::LevelFilter::OFF
            },
        ),
    );
    let fmt = tracing_subscriber::fmt::layer().with_writer(logs.clone()).with_ansi(false);
    // Request spans are for the exporter only: the log never prints them, so without an exporter
    // no layer wants them and a request's span costs nothing. One filter (a second, nested
    // per-layer filter said yes to every span the first refused).
    let no_spans = tracing_subscriber::filter::filter_fn(|m| !(m.is_span() && m.target() == SPAN_TARGET));
    let filter = || env_filter().and(no_spans.clone());
    let registry = tracing_subscriber::registry().with(otel_layer);
    match format {
        LogFormat::Json => {
            let fmt = fmt.json().flatten_event(true).map_event_format(access::Fast::json);
            Box::new(registry.with(fmt.with_filter(filter())))
        }
        LogFormat::Text => {
            let fmt = fmt.map_event_format(access::Fast::text);
            Box::new(registry.with(fmt.with_filter(filter())))
        }
    }
}

use tracing_subscriber::Layer as _;

fn otlp_provider(counters: &SpanCounters) -> (Option<SdkTracerProvider>, Option<String>, Option<String>) {
    let endpoint = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"));
    let Some(endpoint) = endpoint else { return (None, None, None) };
    if env("OTEL_TRACES_EXPORTER").is_some_and(|v| v == "none") {
        return (None, None, None);
    }
    let protocol = env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|| "http/protobuf".into());
    let built = match protocol.as_str() {
        "grpc" => opentelemetry_otlp::SpanExporter::builder().with_tonic().build(),
        "http/protobuf" => opentelemetry_otlp::SpanExporter::builder().with_http().build(),
        other => return (None, None, Some(format!("unsupported OTEL_EXPORTER_OTLP_PROTOCOL `{other}`"))),
    };
    let mut exporter = match built {
        Ok(e) => e,
        Err(e) => return (None, None, Some(e.to_string())),
    };
    let service = env("OTEL_SERVICE_NAME").unwrap_or_else(|| "otpgate".into());
    let resource = Resource::builder().with_service_name(service).build();
    exporter.set_resource(&resource);
    let queue = env_num("OTEL_BSP_MAX_QUEUE_SIZE", 2048).clamp(1, 1 << 20) as usize;
    let batch = env_num("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512).clamp(1, queue as u64) as usize;
    let delay = Duration::from_millis(env_num("OTEL_BSP_SCHEDULE_DELAY", 5000).max(1));
    let (tx, rx) = mpsc::channel(queue);
    let (flush_tx, flush_rx) = mpsc::channel(1);
    tokio::spawn(export_loop(exporter, rx, flush_rx, batch, delay, counters.clone()));
    let processor = QueueProcessor { tx, flush: flush_tx, dropped: counters.dropped.clone() };
    let provider = SdkTracerProvider::builder().with_resource(resource).with_span_processor(processor).build();
    (Some(provider), Some(format!("{protocol} {endpoint}")), None)
}

/// Finished spans go into a bounded channel; a full channel drops the span and counts it.
#[derive(Debug)]
struct QueueProcessor {
    tx: mpsc::Sender<SpanData>,
    flush: mpsc::Sender<tokio::sync::oneshot::Sender<()>>,
    dropped: Counter,
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        if self.tx.try_send(span).is_err() {
            self.dropped.inc();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        let (done_tx, _done_rx) = tokio::sync::oneshot::channel();
        let _ = self.flush.try_send(done_tx);
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.force_flush()
    }
}

async fn export_loop(
    exporter: opentelemetry_otlp::SpanExporter,
    mut rx: mpsc::Receiver<SpanData>,
    mut flush: mpsc::Receiver<tokio::sync::oneshot::Sender<()>>,
    batch_size: usize,
    delay: Duration,
    counters: SpanCounters,
) {
    let exporter = Arc::new(exporter);
    let mut batch = Vec::with_capacity(batch_size);
    loop {
        let send_now = tokio::select! {
            span = rx.recv() => match span {
                Some(s) => {
                    batch.push(s);
                    batch.len() >= batch_size
                }
                None => true,
            },
            _ = tokio::time::sleep(delay), if !batch.is_empty() => true,
            done = flush.recv() => {
                while let Ok(s) = rx.try_recv() {
                    batch.push(s);
                }
                if let Some(done) = done {
                    let _ = done.send(());
                }
                true
            }
        };
        if send_now && !batch.is_empty() {
            let spans = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
            let n = spans.len() as u64;
            match exporter.export(spans).await {
                Ok(()) => {
                    counters.exported.inc_by(n);
                }
                Err(e) => {
                    // Lost like a span that found the queue full: counted the same way.
                    counters.dropped.inc_by(n);
                    tracing::debug!(error = %e, spans = n, "span export failed");
                }
            }
        }
        if rx.is_closed() && rx.is_empty() && batch.is_empty() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{LogFormat, LogSink, SPAN_TARGET, subscriber};

    #[test]
    fn without_an_exporter_a_request_span_is_never_built_and_logs_still_are() {
        let out = super::sink::tests::Out::default();
        let logs = LogSink::to(Box::new(out.clone()));
        for format in [LogFormat::Text, LogFormat::Json] {
            tracing::subscriber::with_default(subscriber(format, None, &logs), || {
                let span = tracing::info_span!(target: SPAN_TARGET, "request", http.route = "x");
                assert!(span.is_disabled(), "{format:?}: a request span was built with no exporter");
                assert!(!tracing::info_span!("other").is_disabled(), "{format:?}: other spans are kept");
                // Below the log's level nothing is built either: h2 opens trace spans per frame.
                let frame = tracing::trace_span!(target: "h2::proto::streams", "poll_complete");
                assert!(frame.is_disabled(), "{format:?}: a trace span was built at level info");
                tracing::warn!(target: "otpgate::access", "a line");
            });
        }
        logs.flush();
        assert_eq!(out.text().matches("a line").count(), 2);
    }
}
