//! What operators expect of any server's metrics: `otpgate_build_info` and the process's CPU time,
//! resident memory and open descriptors, read from `/proc/self` at each scrape.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    revision: &'static str,
    profile: &'static str,
}

#[derive(Debug, Default)]
pub(super) struct Process;

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let labels = BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
            revision: env!("OTPGATE_GIT_REV"),
            profile: env!("OTPGATE_BUILD_PROFILE"),
        };
        let info = ConstGauge::new(1i64);
        let mut family = encoder.encode_descriptor(
            "build_info",
            "The running binary: version, git revision and build profile (always 1)",
            None,
            info.metric_type(),
        )?;
        info.encode(family.encode_family(&labels)?)?;
        if let Some(cpu) = cpu_seconds() {
            let c = ConstCounter::new(cpu);
            c.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time of the process, in seconds",
                None,
                c.metric_type(),
            )?)?;
        }
        if let Some(rss) = resident_bytes() {
            let g = ConstGauge::new(rss);
            g.encode(encoder.encode_descriptor(
                "process_resident_memory_bytes",
                "Resident memory",
                None,
                g.metric_type(),
            )?)?;
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            let g = ConstGauge::new(i64::try_from(fds.count()).unwrap_or(i64::MAX));
            g.encode(encoder.encode_descriptor("process_open_fds", "Open file descriptors", None, g.metric_type())?)?;
        }
        Ok(())
    }
}

/// utime + stime of `/proc/self/stat` (fields 14 and 15, after the parenthesised name).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / rustix::param::clock_ticks_per_second() as f64)
}

/// Resident pages of `/proc/self/statm`, in bytes.
fn resident_bytes() -> Option<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages = statm.split_whitespace().nth(1)?.parse::<u64>().ok()?;
    i64::try_from(pages.saturating_mul(rustix::param::page_size() as u64)).ok()
}
