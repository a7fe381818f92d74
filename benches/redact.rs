//! Criterion benchmarks of streaming redaction: export-shaped documents (`{"beneficiaries":[…]}`,
//! ~380-byte records from a deterministic generator) of ~1 KB, ~100 KB and ~10 MB, fed in 64 KiB
//! chunks through a citizen-like `deny` profile (mask, hmac, drop, generalize, null, keep), plus
//! the 10 MB document under an HMAC-heavy research profile.
//!
//! `cargo bench --bench redact -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use otpgate::redact::{Limits, Profile, RawProfile, Redactor, compile, derive_key};

const CITIZEN: &str = r#"
default: deny
rules:
  - {path: "beneficiaries[*].beneficiary_reference_id", action: keep}
  - {path: "beneficiaries[*].name", action: keep}
  - {path: "beneficiaries[*].birth_year", action: keep}
  - {path: "beneficiaries[*].gender", action: keep}
  - {path: "beneficiaries[*].photo_id_type", action: keep}
  - {path: "beneficiaries[*].photo_id_number", action: mask, keep_last: 4, format: "XXXX-XXXX-####"}
  - {path: "beneficiaries[*].mobile_number", action: mask, keep_last: 4, format: "XXXXXX####"}
  - {path: "beneficiaries[*].mobile", action: hmac}
  - {path: "beneficiaries[*].comorbidity_ind", action: "null"}
  - {path: "beneficiaries[*].vaccination_status", action: keep}
  - {path: "beneficiaries[*].vaccine", action: keep}
  - {path: "beneficiaries[*].dose1_date", action: generalize}
  - {path: "beneficiaries[*].dose2_date", action: generalize}
  - {path: "beneficiaries[*].appointments", action: keep}
  - {path: "**.aadhaar*", action: drop}
  - {path: "ttl", action: keep}
"#;

const RESEARCH: &str = r#"
default: deny
rules:
  - {path: "beneficiaries[*].beneficiary_reference_id", action: hmac}
  - {path: "beneficiaries[*].photo_id_number", action: hmac}
  - {path: "beneficiaries[*].mobile_number", action: hmac}
  - {path: "beneficiaries[*].birth_year", action: keep}
  - {path: "beneficiaries[*].gender", action: keep}
  - {path: "beneficiaries[*].vaccine", action: keep}
  - {path: "beneficiaries[*].dose1_date", action: generalize}
  - {path: "beneficiaries[*].dose2_date", action: generalize}
  - {path: "**.aadhaar*", action: drop}
"#;

fn profile(name: &str, yaml: &str) -> Profile {
    let raw: RawProfile = match serde_yaml_ng::from_str(yaml) {
        Ok(raw) => raw,
        Err(e) => panic!("bench profile: {e}"),
    };
    match compile(name, &raw, &derive_key(b"bench-master-secret", name)) {
        Ok(p) => p,
        Err(e) => panic!("bench profile: {e:?}"),
    }
}

/// A small deterministic generator (xorshift64*).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from(b'0' + (self.next() % 10) as u8)).collect()
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

const FIRST: &[&str] = &["Asha", "Ravi", "Priya", "Arjun", "Meera", "Vikram", "Lakshmi", "Sanjay", "Fatima", "Joseph"];
const LAST: &[&str] = &["Devi", "Kumar", "Sharma", "Reddy", "Iyer", "Khan", "Singh", "Nair", "Das", "Patel"];

fn record(g: &mut Gen, mobile: u64) -> String {
    let dose2 = if g.next().is_multiple_of(2) { String::new() } else { format!("{:02}-09-2021", 1 + g.next() % 28) };
    format!(
        concat!(
            r#"{{"beneficiary_reference_id":"{ref_id}","name":"{first} {last}","birth_year":"{year}","#,
            r#""gender":"{gender}","mobile_number":"{mobile}","photo_id_type":"Aadhaar Card","#,
            r#""photo_id_number":"{id}","comorbidity_ind":"{comorb}","vaccination_status":"{status}","#,
            r#""vaccine":"{vaccine}","dose1_date":"{d1:02}-06-2021","dose2_date":"{dose2}","appointments":[],"#,
            r#""mobile":"{mobile}","aadhaar_number":"{aadhaar}"}}"#
        ),
        ref_id = g.digits(14),
        first = g.pick(FIRST),
        last = g.pick(LAST),
        year = 1940 + g.next() % 65,
        gender = g.pick(&["Female", "Male", "Other"]),
        mobile = mobile,
        id = g.digits(12),
        comorb = g.pick(&["Y", "N"]),
        status = g.pick(&["Partially Vaccinated", "Vaccinated", "Not Vaccinated"]),
        vaccine = g.pick(&["COVISHIELD", "COVAXIN", "SPUTNIK V"]),
        d1 = 1 + g.next() % 28,
        dose2 = dose2,
        aadhaar = g.digits(12),
    )
}

/// An export document of at least `size` bytes.
fn export(size: usize) -> Vec<u8> {
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    let mut doc = String::from(r#"{"beneficiaries":["#);
    // 1–4 beneficiaries per mobile (2.5 on average), adjacent as in a registry export.
    let (mut i, mut mobile) = (0, 9_000_000_001u64);
    while doc.len() < size.saturating_sub(12) || i == 0 {
        if i > 0 {
            doc.push(',');
            mobile += u64::from(g.next() % 5 < 2);
        }
        doc.push_str(&record(&mut g, mobile));
        i += 1;
    }
    doc.push_str(r#"],"ttl":15}"#);
    doc.into_bytes()
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
    let citizen = profile("citizen", CITIZEN);
    let research = profile("research", RESEARCH);
    let passthrough = profile("passthrough", "default: allow");
    let mut out = Vec::with_capacity(128 << 10);
    let mut group = c.benchmark_group("redact");
    for (label, size) in [("1KB", 1 << 10), ("100KB", 100 << 10), ("10MB", 10 << 20)] {
        let doc = export(size);
        assert!(run(&citizen, &doc, &mut out) > 0, "the bench document must redact cleanly");
        group.throughput(Throughput::Bytes(doc.len() as u64));
        group.bench_with_input(BenchmarkId::new("citizen", label), &doc, |b, doc| {
            b.iter(|| black_box(run(&citizen, black_box(doc), &mut out)))
        });
        if size == 10 << 20 {
            group.bench_with_input(BenchmarkId::new("research", label), &doc, |b, doc| {
                b.iter(|| black_box(run(&research, black_box(doc), &mut out)))
            });
            group.bench_with_input(BenchmarkId::new("validate-only", label), &doc, |b, doc| {
                b.iter(|| black_box(run(&passthrough, black_box(doc), &mut out)))
            });
        }
    }
    group.finish();
    cpu_time_report(&[("citizen", &citizen), ("research", &research), ("validate-only", &passthrough)]);
}

/// CPU time this thread has run, from `/proc/thread-self/schedstat` (Linux), in nanoseconds.
fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}

/// Throughput per CPU-second (not per wall-second): on a shared machine this is the per-core
/// figure. Printed after the criterion runs (not when profiling with `--profile-time`).
fn cpu_time_report(profiles: &[(&str, &Profile)]) {
    if cpu_ns().is_none() || std::env::args().any(|a| a == "--profile-time") {
        return;
    }
    let mut out = Vec::with_capacity(128 << 10);
    for (size, which) in [(1 << 10, 1), (100 << 10, 1), (10 << 20, profiles.len())] {
        let doc = export(size);
        for &(name, profile) in &profiles[..which] {
            // The schedstat clock ticks coarsely: time whole batches of runs.
            let (Some(t0), mut runs) = (cpu_ns(), 0u64) else { return };
            let wall = std::time::Instant::now();
            while wall.elapsed() < std::time::Duration::from_secs(2) {
                black_box(run(profile, black_box(&doc), &mut out));
                runs += 1;
            }
            let Some(t1) = cpu_ns() else { return };
            let mb_s = (runs * doc.len() as u64) as f64 * 1e3 / t1.saturating_sub(t0).max(1) as f64;
            println!("cpu-time throughput {name}/{} bytes: {mb_s:.0} MB/s", doc.len());
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
