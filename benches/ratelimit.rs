//! The per-request cost of checking three rate limits (session, subject, beneficiary), as a
//! citizen booking does, against limiters already holding many keys.

use std::num::NonZeroU32;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use otpgate::policy::Limit;
use otpgate::ratelimit::{LimitKey, Limiters};

fn three_limits(c: &mut Criterion) {
    let nz = |n| NonZeroU32::new(n).unwrap();
    let limiters = Limiters::default();
    let route = limiters.for_route(
        "schedule",
        &[
            Limit::of(LimitKey::Session, vec![(nz(1_000_000), Duration::from_secs(900))]),
            Limit::of(LimitKey::Subject, vec![(nz(1_000_000), Duration::from_secs(86_400))]),
            Limit::of(LimitKey::Beneficiary, vec![(nz(1_000_000), Duration::from_secs(900))]),
        ],
    );
    // 100,000 identities already known.
    for i in 0..100_000 {
        let v = vec![
            (LimitKey::Session, vec![format!("s{i}")]),
            (LimitKey::Subject, vec![format!("m:{i}")]),
            (LimitKey::Beneficiary, vec![format!("b{i}")]),
        ];
        ready(limiters.check(&route, &v)).unwrap();
    }
    let mut group = c.benchmark_group("ratelimit");
    group.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    let mut values = vec![
        (LimitKey::Session, vec![String::new()]),
        (LimitKey::Subject, vec![String::new()]),
        (LimitKey::Beneficiary, vec![String::new()]),
    ];
    group.bench_function("three_limits_per_request", |b| {
        b.iter(|| {
            i = (i + 1) % 100_000;
            for (n, (_, v)) in values.iter_mut().enumerate() {
                v[0].clear();
                use std::fmt::Write;
                let _ = write!(v[0], "{n}-{i}");
            }
            std::hint::black_box(ready(limiters.check(&route, &values)).is_ok())
        })
    });
    group.finish();
}

criterion_group!(benches, three_limits);
criterion_main!(benches);

/// The in-process store answers at once; poll its future a single time.
fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the local limiter store never waits"),
    }
}
