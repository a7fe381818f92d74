//! Issue 5: the limiter's memory stays bounded under key flooding. Its own test binary (one test,
//! one thread) so the process's resident memory is the limiter's.
//!
//! Documented bound: at most 150 bytes of resident memory per live key, and keys whose bucket is
//! full again are evicted.

use std::num::NonZeroU32;
use std::time::Duration;

use otpgate::policy::Limit;
use otpgate::ratelimit::{LimitKey, Limiters};

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn a_million_distinct_keys_stay_under_150_bytes_each() {
    const KEYS: usize = 1_000_000;
    let limiters = Limiters::default();
    let route = limiters.for_route(
        "flood",
        &[Limit::of(LimitKey::Ip, vec![(NonZeroU32::new(10).unwrap(), Duration::from_millis(500))])],
    );
    let mut values = vec![(LimitKey::Ip, vec![String::with_capacity(16)])];
    // Warm up allocator arenas and the map's first tables.
    for i in 0..1000 {
        values[0].1[0] = format!("warm-{i}");
        ready(limiters.check(&route, &values)).unwrap();
    }
    let before = rss_bytes();
    for i in 0..KEYS {
        values[0].1[0].clear();
        use std::fmt::Write;
        let _ = write!(values[0].1[0], "{i}");
        ready(limiters.check(&route, &values)).unwrap();
    }
    let after = rss_bytes();
    assert_eq!(route.windows[0].len(), KEYS + 1000);
    let per_key = after.saturating_sub(before) / KEYS;
    println!("limiter memory: {per_key} bytes per key ({} MiB for {KEYS} keys)", (after - before) >> 20);
    assert!(per_key <= 150, "{per_key} bytes per key");

    // Every bucket refills within 500 ms; eviction then drops them all.
    std::thread::sleep(Duration::from_millis(600));
    limiters.evict();
    assert_eq!(route.windows[0].len(), 0);
}

/// The in-process store answers at once; poll its future a single time.
fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the local limiter store never waits"),
    }
}
