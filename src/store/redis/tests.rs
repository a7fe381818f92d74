//! The shared store's operations against the machine's real Redis (127.0.0.1:6379; scripts/test.sh
//! starts one if none runs), each test under its own key prefix.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::store::Store;

const URL: &str = "redis://127.0.0.1:6379/0";

fn store() -> RedisStore {
    let prefix = format!("otpgate-test:{}:", uuid::Uuid::new_v4());
    RedisStore::new(&RedisTarget::parse(URL).unwrap(), &prefix, Duration::from_secs(2), StoreCounters::default())
        .unwrap()
}

fn txn(mac: [u8; 32], expires_at_ms: u64) -> OtpTxn {
    OtpTxn { mobile: "9000000001".into(), mac, expires_at_ms, attempts: 0 }
}

#[test]
fn store_urls_name_one_node_or_a_cluster() {
    assert_eq!(RedisTarget::parse("redis://h:6379/2"), Ok(RedisTarget::Single("redis://h:6379/2".into())));
    assert_eq!(RedisTarget::parse("rediss://h:6380"), Ok(RedisTarget::Single("rediss://h:6380".into())));
    assert_eq!(
        RedisTarget::parse("redis+cluster://a:7000,b:7001/"),
        Ok(RedisTarget::Cluster(vec!["redis://a:7000".into(), "redis://b:7001".into()]))
    );
    assert_eq!(RedisTarget::parse("rediss+cluster://a:7000"), Ok(RedisTarget::Cluster(vec!["rediss://a:7000".into()])));
    for bad in ["memcached://x", "redis+cluster://", "nonsense", "http://h"] {
        assert!(RedisTarget::parse(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn an_otp_transaction_is_single_use_and_burns_after_its_tries() {
    let s = store();
    let now = 1_000_000;
    s.txn_put("t1", &txn([7; 32], now + 180_000), Duration::from_secs(180)).await.unwrap();
    assert_eq!(s.txn_mobile("t1", now).await.unwrap().as_deref(), Some("9000000001"));
    assert_eq!(s.txn_mobile("t1", now + 180_000).await.unwrap(), None, "expired by the gateway's clock");
    assert_eq!(s.txn_attempt("t1", &[1; 32], 3, now).await.unwrap(), Attempt::Wrong { burned: false });
    assert_eq!(s.txn_attempt("t1", &[7; 32], 3, now).await.unwrap(), Attempt::Verified("9000000001".into()));
    assert_eq!(s.txn_attempt("t1", &[7; 32], 3, now).await.unwrap(), Attempt::Invalid, "single use");

    s.txn_put("t2", &txn([7; 32], now + 180_000), Duration::from_secs(180)).await.unwrap();
    assert_eq!(s.txn_attempt("t2", &[1; 32], 2, now).await.unwrap(), Attempt::Wrong { burned: false });
    assert_eq!(s.txn_attempt("t2", &[1; 32], 2, now).await.unwrap(), Attempt::Wrong { burned: true });
    assert_eq!(s.txn_attempt("t2", &[7; 32], 2, now).await.unwrap(), Attempt::Invalid, "burned");

    s.txn_put("t3", &txn([7; 32], now + 180_000), Duration::from_secs(180)).await.unwrap();
    s.txn_burn("t3").await.unwrap();
    assert_eq!(s.txn_attempt("t3", &[7; 32], 2, now).await.unwrap(), Attempt::Invalid);
}

#[tokio::test]
async fn of_racing_correct_confirms_exactly_one_wins() {
    let s = Arc::new(store());
    s.txn_put("race", &txn([9; 32], 2_000_000), Duration::from_secs(60)).await.unwrap();
    let tries = (0..16).map(|_| {
        let s = s.clone();
        tokio::spawn(async move { s.txn_attempt("race", &[9; 32], 5, 1_000_000).await.unwrap() })
    });
    let results = futures_util::future::join_all(tries).await;
    let wins = results.iter().filter(|r| matches!(r, Ok(Attempt::Verified(_)))).count();
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn sliding_windows_count_check_and_record() {
    let s = store();
    let w = Duration::from_secs(60);
    assert_eq!(s.window("k", 1_000, w, 2, false).await.unwrap(), Window::Allowed);
    assert_eq!(s.window("k", 1_000, w, 2, true).await.unwrap(), Window::Allowed);
    assert_eq!(s.window("k", 2_000, w, 2, true).await.unwrap(), Window::Allowed);
    assert_eq!(
        s.window("k", 3_000, w, 2, true).await.unwrap(),
        Window::Denied { retry_after: Duration::from_millis(58_000) },
        "the oldest leaves at 61 s"
    );
    assert_eq!(s.window("k", 61_000, w, 2, true).await.unwrap(), Window::Allowed, "the oldest left");
}

#[tokio::test]
async fn distinct_sets_stop_at_their_limit() {
    let s = store();
    let ttl = Duration::from_secs(60);
    assert_eq!(s.distinct_add("q", "a", 2, ttl).await.unwrap(), Distinct::Counted { new: true, count: 1 });
    assert_eq!(s.distinct_add("q", "b", 2, ttl).await.unwrap(), Distinct::Counted { new: true, count: 2 });
    let known = s.distinct_add("q", "a", 2, ttl).await.unwrap();
    assert_eq!(known, Distinct::Counted { new: false, count: 2 }, "a member already counted passes");
    assert_eq!(s.distinct_add("q", "c", 2, ttl).await.unwrap(), Distinct::Full);
}

#[tokio::test]
async fn sessions_expire_when_idle_or_old_and_revoke_everywhere() {
    let s = store();
    let limits = SessionLimits { idle: Duration::from_secs(30), absolute: Duration::from_secs(100) };
    let session = Session { mobile: "9000000001".into(), created_ms: 0, last_seen_ms: 0 };
    s.session_put("a", &session, limits).await.unwrap();
    let seen = s.session_touch("a", 20_000, limits).await.unwrap().unwrap();
    assert_eq!((seen.mobile.as_str(), seen.last_seen_ms), ("9000000001", 20_000));
    assert!(s.session_touch("a", 45_000, limits).await.unwrap().is_some(), "25 s idle");
    assert!(s.session_touch("a", 76_000, limits).await.unwrap().is_none(), "31 s idle");
    s.session_put("b", &session, limits).await.unwrap();
    for t in [25_000, 50_000, 75_000, 100_000] {
        assert!(s.session_touch("b", t, limits).await.unwrap().is_some(), "{t}");
    }
    assert!(s.session_touch("b", 101_000, limits).await.unwrap().is_none(), "older than absolute");
    s.session_put("c", &session, limits).await.unwrap();
    s.session_revoke("c").await.unwrap();
    assert!(s.session_touch("c", 1_000, limits).await.unwrap().is_none());
}

#[tokio::test]
async fn gcra_allows_a_burst_then_refuses_and_charges_all_or_nothing() {
    let s = store();
    let a = s.key("rl", "ip1") + ":w1";
    let b = s.key("rl", "ip1") + ":w2";
    // 3 per minute and 100 per minute.
    let cells = |n: u32| vec![(a.clone(), 60_000_000 / 3, 3), (b.clone(), 60_000_000 / 100, n)];
    for left in [2, 1, 0] {
        let out = s.gcra(&cells(100)).await.unwrap();
        assert_eq!(out[0], Ok(left));
    }
    let out = s.gcra(&cells(100)).await.unwrap();
    assert!(matches!(out[0], Err(us) if us > 0 && us <= 20_000_000), "{out:?}");
    // b was not charged by the refused request: 97 left after the next allowed one would be 96;
    // check it alone.
    let only_b = s.gcra(&[(b.clone(), 60_000_000 / 100, 100)]).await.unwrap();
    assert_eq!(only_b[0], Ok(96), "three charged, the refused one not");
    s.gcra_refund(&[(b.clone(), 60_000_000 / 100)]).await.unwrap();
    let again = s.gcra(&[(b, 60_000_000 / 100, 100)]).await.unwrap();
    assert_eq!(again[0], Ok(96), "a refund gives the cell back");
}

#[tokio::test]
async fn access_lists_keep_the_newest_entries() {
    let s = store();
    for i in 0..5 {
        s.list_push("subj", &format!("e{i}"), 3, Duration::from_secs(60)).await.unwrap();
    }
    assert_eq!(s.list("subj", 10).await.unwrap(), ["e4", "e3", "e2"]);
}

#[tokio::test]
async fn an_unreachable_store_fails_fast_and_is_counted() {
    // Nothing listens on port 1.
    let counters = StoreCounters::default();
    let target = RedisTarget::parse("redis://127.0.0.1:1/0").unwrap();
    let s = RedisStore::new(&target, "x:", Duration::from_millis(300), counters.clone()).unwrap();
    let started = tokio::time::Instant::now();
    assert!(s.session_touch("a", 0, SessionLimits { idle: Duration::ZERO, absolute: Duration::ZERO }).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(2), "bounded by the timeout");
    assert!(!s.is_healthy());
    let store = Store::Redis(Arc::new(s));
    assert!(store.txn_mobile("t", 0).await.is_err());
    let text = crate::metrics::Metrics::with(&Default::default(), &counters).encode();
    assert!(text.contains("otpgate_store_errors_total{op=\"session_touch\"} 1"), "{text}");
}
