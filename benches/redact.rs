//! Criterion benchmarks of streaming redaction on the export document: exactly what the demo
//! registry's `/api/v2/partner/beneficiaries/export` streams (`{"beneficiaries":[…]}`, CoWIN-shaped
//! records of ~400 bytes, a mobile's beneficiaries adjacent), cut to ~1 KB, ~100 KB and ~10 MB and
//! fed in 64 KiB chunks, through the shipped profiles of `policies/profiles.yaml`: `citizen`
//! (keep + mask + drop, allowlist) and `research` (HMAC tokens for three IDs per record, dates
//! generalized), plus `validate-only` (an `allow` profile with no rules: the parser's floor).
//!
//! `cargo bench --bench redact -- --warm-up-time 1 --measurement-time 3`
//!
//! After the criterion runs it prints throughput per CPU-second of the benchmark thread, the
//! per-core figure that the shared machine's other load does not distort.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use otpgate::demo::Dataset;
use otpgate::redact::{Limits, Profile, RawProfile, Redactor, compile, derive_key};

/// The shipped profile `name`, compiled with a key derived as the gateway derives it.
fn shipped(name: &str) -> Profile {
    #[derive(serde::Deserialize)]
    struct File {
        profiles: BTreeMap<String, RawProfile>,
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/profiles.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let file: File = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let raw = file.profiles.get(name).unwrap_or_else(|| panic!("{path}: no profile {name}"));
    compile(name, raw, &derive_key(b"bench-master-secret", name)).unwrap_or_else(|e| panic!("{name}: {e:?}"))
}

fn validate_only() -> Profile {
    let raw: RawProfile = serde_yaml_ng::from_str("default: allow").unwrap_or_else(|e| panic!("{e}"));
    compile("validate-only", &raw, b"bench").unwrap_or_else(|e| panic!("{e:?}"))
}

/// The registry's export framing around records `0..` of a 5,000,000-record data set (the demo's default seed), as many as
/// keep the document within `size` bytes (at least one).
fn export(size: usize) -> Vec<u8> {
    let data = Dataset::new(1, 5_000_000);
    let mut doc = b"{\"beneficiaries\":[".to_vec();
    let mut record = Vec::with_capacity(1024);
    for index in 0.. {
        record.clear();
        data.beneficiary(index).write_json(&mut record);
        if index > 0 && doc.len() + record.len() + 3 > size {
            break;
        }
        if index > 0 {
            doc.push(b',');
        }
        doc.extend_from_slice(&record);
    }
    doc.extend_from_slice(b"]}");
    doc
}

/// Redact `doc` in 64 KiB chunks, forwarding (here: discarding) each chunk's output.
fn run(profile: &Profile, doc: &[u8], out: &mut Vec<u8>) -> u64 {
    let mut r = Redactor::new(profile, Limits::default());
    let mut total = 0;
    for chunk in doc.chunks(64 << 10) {
        out.clear();
        if r.feed(chunk, out).is_err() {
            return 0;
        }
        total += out.len() as u64;
    }
    out.clear();
    match r.finish(out) {
        Ok(report) => total + out.len() as u64 + report.redacted(),
        Err(_) => 0,
    }
}

fn bench(c: &mut Criterion) {
    let profiles =
        [("citizen", shipped("citizen")), ("research", shipped("research")), ("validate-only", validate_only())];
    let mut out = Vec::with_capacity(128 << 10);
    let mut group = c.benchmark_group("redact");
    for (label, size) in [("1KB", 1 << 10), ("100KB", 100 << 10), ("10MB", 10 << 20)] {
        let doc = export(size);
        group.throughput(Throughput::Bytes(doc.len() as u64));
        for (name, profile) in &profiles {
            assert!(run(profile, &doc, &mut out) > 0, "the export must redact cleanly under {name}");
            group.bench_with_input(BenchmarkId::new(*name, label), &doc, |b, doc| {
                b.iter(|| black_box(run(profile, black_box(doc), &mut out)))
            });
        }
    }
    group.finish();
    cpu_time_report(&profiles);
}

/// CPU time this thread has run, from `/proc/thread-self/schedstat` (Linux), in nanoseconds.
fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}

/// Throughput per CPU-second (not per wall-second) of each export size: on a shared machine this
/// is the per-core figure. Printed after the criterion runs under `cargo bench` (not under
/// `cargo test`, which runs the benchmarks once without `--bench`, nor with `--profile-time`).
fn cpu_time_report(profiles: &[(&str, Profile)]) {
    let args: Vec<String> = std::env::args().collect();
    if cpu_ns().is_none() || !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--profile-time") {
        return;
    }
    let mut out = Vec::with_capacity(128 << 10);
    for (label, size) in [("10MB", 10 << 20), ("100KB", 100 << 10), ("1KB", 1 << 10)] {
        let doc = export(size);
        for (name, profile) in profiles {
            // The schedstat clock ticks coarsely: time whole batches of runs.
            let (Some(t0), mut runs) = (cpu_ns(), 0u64) else { return };
            let wall = otpgate::clock::monotonic();
            while wall.elapsed() < std::time::Duration::from_secs(2) {
                black_box(run(profile, black_box(&doc), &mut out));
                runs += 1;
            }
            let Some(t1) = cpu_ns() else { return };
            let mb_s = (runs * doc.len() as u64) as f64 * 1e3 / t1.saturating_sub(t0).max(1) as f64;
            println!("cpu-time throughput {name}/{label} ({} bytes): {mb_s:.0} MB/s", doc.len());
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
