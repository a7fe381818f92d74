//! The cost of checking a citizen's bearer token: the first sight of a token (Ed25519 signature,
//! claims) and every later request carrying it (the verified-token cache).

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use otpgate::auth::jwt::{TokenConfig, Tokens};
use otpgate::auth::keys::SessionKeys;

fn token_check(c: &mut Criterion) {
    let keys = Arc::new(SessionKeys::generate_ephemeral().unwrap());
    let now = otpgate::clock::system_now_ms() / 1000;
    let issuer = Tokens::new(keys.clone(), TokenConfig::default());
    let tokens: Vec<String> = (0..1000).map(|i| issuer.issue(&format!("session-{i}"), now).unwrap()).collect();
    let mut group = c.benchmark_group("token");
    group.throughput(Throughput::Elements(1));
    group.bench_function("first_sight_signature_and_claims", |b| {
        let mut i = 0;
        b.iter_batched_ref(
            // A fresh cache each time (built and dropped outside the timing): every check
            // verifies the signature.
            || Tokens::new(keys.clone(), TokenConfig::default()),
            |fresh| {
                i = (i + 1) % tokens.len();
                fresh.verify(&tokens[i], now).unwrap()
            },
            criterion::BatchSize::SmallInput,
        )
    });
    let cached = Tokens::new(keys.clone(), TokenConfig::default());
    for t in &tokens {
        cached.verify(t, now).unwrap();
    }
    group.bench_function("cached", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % tokens.len();
            cached.verify(&tokens[i], now).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, token_check);
criterion_main!(benches);
