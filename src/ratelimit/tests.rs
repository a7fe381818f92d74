use std::num::NonZeroU32;

use super::*;
use crate::policy::Limit;

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn three(l: &Limiters, route: &str) -> RouteLimits {
    l.for_route(
        route,
        &[
            Limit::of(
                LimitKey::Session,
                vec![(nz(3), Duration::from_secs(900)), (nz(10), Duration::from_secs(86_400))],
            ),
            Limit::of(LimitKey::Ip, vec![(nz(100), Duration::from_secs(300))]),
        ],
    )
}

fn vals(session: &str, ip: &str) -> Vec<(LimitKey, Vec<String>)> {
    vec![(LimitKey::Session, vec![session.into()]), (LimitKey::Ip, vec![ip.into()])]
}

#[tokio::test]
async fn all_windows_are_checked_and_the_first_refusal_wins() {
    let l = Limiters::default();
    let r = three(&l, "schedule");
    for i in 0..3 {
        let h = l.check(&r, &vals("s1", "10.0.0.1")).await.unwrap().unwrap();
        assert_eq!(&*h.policy, "\"session-15m\";q=3;w=900, \"session-1d\";q=10;w=86400, \"ip-5m\";q=100;w=300");
        assert!(h.state.starts_with("\"session-15m\";r="), "the tightest window: {}", h.state);
        assert!(h.state.contains(&format!("r={}", 2 - i)), "{}", h.state);
    }
    let t = l.check(&r, &vals("s1", "10.0.0.1")).await.unwrap_err();
    assert_eq!(t.key, LimitKey::Session);
    assert!(
        t.retry_after > Duration::from_secs(200) && t.retry_after <= Duration::from_secs(300),
        "{:?}",
        t.retry_after
    );
    assert_eq!(t.headers.state, format!("\"session-15m\";r=0;t={}", t.retry_after.as_secs() + 1));
    assert!(l.check(&r, &vals("s2", "10.0.0.1")).await.is_ok(), "another session has its own bucket");
}

#[tokio::test]
async fn buckets_survive_a_rebuild_with_the_same_quota_only() {
    let l = Limiters::default();
    let r = three(&l, "schedule");
    for _ in 0..3 {
        l.check(&r, &vals("s1", "ip")).await.unwrap();
    }
    let again = three(&l, "schedule");
    assert!(l.check(&again, &vals("s1", "ip")).await.is_err(), "a reload keeps the state");
    let other = l.for_route("schedule", &[Limit::of(LimitKey::Session, vec![(nz(4), Duration::from_secs(900))])]);
    assert!(l.check(&other, &vals("s1", "ip")).await.is_ok(), "a changed quota is a new limiter");
}

#[tokio::test]
async fn values_missing_for_a_key_charge_nothing_and_every_value_is_charged() {
    let l = Limiters::default();
    let r = l.for_route("b", &[Limit::of(LimitKey::Beneficiary, vec![(nz(1), Duration::from_secs(3600))])]);
    assert!(l.check(&r, &[]).await.is_ok());
    assert!(l.check(&r, &[(LimitKey::Beneficiary, vec!["a".into(), "b".into()])]).await.is_ok());
    assert!(l.check(&r, &[(LimitKey::Beneficiary, vec!["c".into(), "b".into()])]).await.is_err(), "b again");
}

#[tokio::test]
async fn eviction_drops_replenished_keys_and_unused_limiters() {
    let clock = governor::clock::FakeRelativeClock::default();
    let l = Limiters::with_store(Box::new(store::LocalStore::with_clock(clock.clone())));
    let r = l.for_route("fast", &[Limit::of(LimitKey::Ip, vec![(nz(1), Duration::from_millis(20))])]);
    for i in 0..100 {
        l.check(&r, &[(LimitKey::Ip, vec![format!("10.0.0.{i}")])]).await.unwrap();
    }
    assert_eq!(r.windows[0].len(), 100);
    l.evict();
    assert_eq!(r.windows[0].len(), 100, "buckets still filling are kept");
    clock.advance(Duration::from_millis(60));
    l.evict();
    assert_eq!(r.windows[0].len(), 0, "replenished keys are gone");
    drop(r);
    l.evict();
    assert!(l.windows.lock().is_empty(), "limiters of removed routes are dropped");
}

#[test]
fn window_names_are_readable() {
    assert_eq!(human(Duration::from_secs(900)), "15m");
    assert_eq!(human(Duration::from_secs(86_400)), "1d");
    assert_eq!(human(Duration::from_secs(7200)), "2h");
    assert_eq!(human(Duration::from_secs(45)), "45s");
    assert_eq!(human(Duration::from_millis(250)), "250ms");
}

#[tokio::test]
async fn a_caller_refused_on_its_own_window_spends_nothing_of_the_number_it_names() {
    let l = Limiters::default();
    // As generateOTP: the mobile window is declared first.
    let r = l.for_route(
        "otp",
        &[
            Limit::of(LimitKey::Mobile, vec![(nz(3), Duration::from_secs(900))]),
            Limit::of(LimitKey::Ip, vec![(nz(1), Duration::from_secs(900))]),
        ],
    );
    let ask = |mobile: &str, ip: &str| vec![(LimitKey::Mobile, vec![mobile.into()]), (LimitKey::Ip, vec![ip.into()])];
    assert!(l.check(&r, &ask("9000000001", "10.0.0.1")).await.is_ok());
    for _ in 0..5 {
        let t = l.check(&r, &ask("9000000002", "10.0.0.1")).await.unwrap_err();
        assert_eq!(t.key, LimitKey::Ip);
    }
    // The victim's number still has its whole window, from elsewhere.
    for ip in ["10.0.0.2", "10.0.0.3", "10.0.0.4"] {
        assert!(l.check(&r, &ask("9000000002", ip)).await.is_ok(), "{ip}");
    }
    assert_eq!(l.check(&r, &ask("9000000002", "10.0.0.5")).await.unwrap_err().key, LimitKey::Mobile);
}

#[tokio::test]
async fn routes_naming_one_budget_share_its_buckets() {
    let l = Limiters::default();
    let budget = |route: &str| {
        l.for_route(
            route,
            &[Limit {
                budget: Some("search".into()),
                ..Limit::of(LimitKey::Session, vec![(nz(3), Duration::from_secs(900))])
            }],
        )
    };
    let (a, b) = (budget("by-district"), budget("by-pin"));
    let s = vec![(LimitKey::Session, vec!["s1".to_string()])];
    for route in [&a, &b, &a] {
        let h = l.check(route, &s).await.unwrap().unwrap();
        assert!(h.policy.starts_with("\"search-15m\";q=3"), "{}", h.policy);
    }
    assert!(l.check(&b, &s).await.is_err(), "three searches across both routes spend the budget");
    let own = l.for_route("by-pin", &[Limit::of(LimitKey::Session, vec![(nz(3), Duration::from_secs(900))])]);
    assert!(l.check(&own, &s).await.is_ok(), "a route's own limit is another bucket");
}
