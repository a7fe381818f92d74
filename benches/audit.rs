//! Criterion benchmarks of the audit log: records/s with group commit (64, then 256, concurrent tasks
//! appending realistic records, as a busy gateway does) and, for scale, one task alone (every record
//! pays a full `fdatasync`: the disk's sync latency). With N appenders the rate is about N / sync time.
//! Lines are keyed (HMAC-SHA256) and the writer's periodic checkpoints run at their defaults.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use otpgate::audit::{AuditLog, AuditRecord, ChainKey, Decision, Hasher, LogOptions};

/// Concurrent appenders: 64 as in the target, 256 to show how the rate follows the offered concurrency.
const TASKS: [u64; 2] = [64, 256];

fn record(hasher: &Hasher, task: u64, i: u64) -> AuditRecord {
    let mobile = format!("9{:09}", (task * 7919 + i) % 1_000_000_000);
    AuditRecord {
        time: otpgate::clock::rfc3339(otpgate::clock::system_now_ms()),
        request_id: format!("{task:08x}-{i:016x}"),
        trace_id: format!("{:032x}", (u128::from(task) << 64) | u128::from(i)),
        caller_kind: "partner".into(),
        caller_id: "icmr".into(),
        route: "/api/v2/partner/beneficiaries/search".into(),
        method: "POST".into(),
        decision: Decision::Allow,
        reason: "ok".into(),
        status: 200,
        records: (0..2).map(|k| hasher.record(&format!("{mobile}{k}"))).collect(),
        record_count: 2,
        subjects: vec![hasher.mobile(&mobile)],
        fields_redacted: vec!["name".into(), "photo_id_number".into(), "mobile_number".into()],
        policy_version: "2026-11-01".into(),
        upstream_ms: Some(3.25),
        client: "10.20.30.40".into(),
        count: None,
        waiting_room: None,
        draw: None,
    }
}

fn appends(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let key = ChainKey::derive(b"bench audit key, at least 32 bytes long");
    let log = rt.block_on(AuditLog::open(dir.path(), &key, LogOptions::default())).expect("open log");
    let hasher = Arc::new(Hasher::new(b"bench audit key"));
    let appended = Arc::new(AtomicU64::new(0));

    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Elements(1));
    for tasks in TASKS {
        let (syncs_before, appended_before) = (log.fsync_count(), appended.load(Ordering::Relaxed));
        group.bench_function(format!("append/group-commit-{tasks}-tasks"), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (log, hasher, appended) = (log.clone(), hasher.clone(), appended.clone());
                async move {
                    let per_task = iters.div_ceil(tasks);
                    let start = otpgate::clock::monotonic();
                    let handles: Vec<_> = (0..tasks)
                        .map(|t| {
                            let (log, hasher) = (log.clone(), hasher.clone());
                            tokio::spawn(async move {
                                for i in 0..per_task {
                                    log.append(&record(&hasher, t, i)).await.expect("append");
                                }
                            })
                        })
                        .collect();
                    for handle in handles {
                        handle.await.expect("task");
                    }
                    let elapsed = start.elapsed();
                    appended.fetch_add(per_task * tasks, Ordering::Relaxed);
                    // Scale to exactly `iters` records.
                    elapsed.mul_f64(iters as f64 / (per_task * tasks) as f64)
                }
            })
        });
        let records = appended.load(Ordering::Relaxed) - appended_before;
        let syncs = (log.fsync_count() - syncs_before).max(1);
        eprintln!(
            "{tasks} tasks: {records} records, {syncs} syncs, {:.0} records per sync",
            records as f64 / syncs as f64
        );
    }

    let before = log.fsync_count();
    let alone = Arc::new(AtomicU64::new(0));
    group.bench_function("append/one-task", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (log, hasher, alone) = (log.clone(), hasher.clone(), alone.clone());
            async move {
                let start = otpgate::clock::monotonic();
                for i in 0..iters {
                    log.append(&record(&hasher, 0, i)).await.expect("append");
                }
                alone.fetch_add(iters, Ordering::Relaxed);
                start.elapsed()
            }
        })
    });
    let syncs = (log.fsync_count() - before).max(1);
    eprintln!("one task: {} records, {syncs} syncs", alone.load(Ordering::Relaxed));
    group.finish();
    rt.block_on(log.close());
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = appends
}
criterion_main!(benches);
