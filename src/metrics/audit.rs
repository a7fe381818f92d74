//! The audit log's metrics, read from the log at each scrape.

use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// The histogram of audit write-and-sync times: 50 µs … ~1.6 s.
pub fn write_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
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
    /// How long each write of a batch of lines and its sync took (seconds).
    fn write_seconds(&self) -> Histogram;
}

/// Reads the audit log (once one is attached) at each scrape.
#[derive(Clone, Default)]
pub(super) struct AuditCollector {
    pub(super) source: Arc<OnceLock<Box<dyn AuditSource>>>,
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
        let h = source.write_seconds();
        h.encode(encoder.encode_descriptor(
            "audit_write_seconds",
            "Time of one audit write and its sync (a batch of lines)",
            None,
            h.metric_type(),
        )?)?;
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
