use super::*;

fn txn(mac: u8, expires: u64) -> OtpTxn {
    OtpTxn { mobile: "9000000001".into(), mac: [mac; 32], expires_at_ms: expires, attempts: 0 }
}

#[test]
fn a_transaction_is_single_use() {
    let m = MemoryStore::new();
    m.txn_put("t", txn(7, 1000));
    assert_eq!(m.txn_attempt("t", &[7; 32], 5, 10), Attempt::Verified("9000000001".into()));
    assert_eq!(m.txn_attempt("t", &[7; 32], 5, 11), Attempt::Invalid);
}

#[test]
fn racing_confirms_verify_exactly_once() {
    let m = Arc::new(MemoryStore::new());
    m.txn_put("t", txn(7, u64::MAX));
    let wins: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let m = m.clone();
                s.spawn(move || matches!(m.txn_attempt("t", &[7; 32], 5, 1), Attempt::Verified(_)) as usize)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(wins, 1);
}

#[test]
fn wrong_tries_burn_the_transaction_and_expiry_holds() {
    let m = MemoryStore::new();
    m.txn_put("t", txn(7, 1000));
    for i in 1..=5 {
        assert_eq!(m.txn_attempt("t", &[0; 32], 5, 10), Attempt::Wrong { burned: i == 5 });
    }
    assert_eq!(m.txn_attempt("t", &[7; 32], 5, 10), Attempt::Invalid, "burned even for the right OTP");
    m.txn_put("u", txn(7, 1000));
    assert_eq!(m.txn_attempt("u", &[7; 32], 5, 1000), Attempt::Invalid, "expired");
    assert_eq!(m.txn_mobile("u", 1000), None);
}

#[test]
fn sliding_window_counts_and_says_when_to_retry() {
    let m = MemoryStore::new();
    let w = Duration::from_secs(60);
    assert_eq!(m.window("k", 0, w, 2, true).unwrap(), Window::Allowed);
    assert_eq!(m.window("k", 10_000, w, 2, true).unwrap(), Window::Allowed);
    assert_eq!(m.window("k", 20_000, w, 2, true).unwrap(), Window::Denied { retry_after: Duration::from_secs(40) });
    assert_eq!(m.window("k", 60_000, w, 2, true).unwrap(), Window::Allowed, "the first event left the window");
    assert_eq!(
        m.window("k", 60_001, w, 2, false).unwrap(),
        Window::Denied { retry_after: Duration::from_millis(9_999) }
    );
}

#[test]
fn distinct_sets_cap_new_members_only() {
    let m = MemoryStore::new();
    let ttl = Duration::from_secs(60);
    assert_eq!(m.distinct_add("d", "a", 2, ttl, 0).unwrap(), Distinct::Counted { new: true, count: 1 });
    assert_eq!(m.distinct_add("d", "b", 2, ttl, 0).unwrap(), Distinct::Counted { new: true, count: 2 });
    let known = m.distinct_add("d", "a", 2, ttl, 0).unwrap();
    assert_eq!(known, Distinct::Counted { new: false, count: 2 }, "a known member is still allowed");
    assert_eq!(m.distinct_add("d", "c", 2, ttl, 0).unwrap(), Distinct::Full, "a third distinct member is not");
    assert_eq!(m.distinct_add("other", "c", 2, ttl, 0).unwrap(), Distinct::Counted { new: true, count: 1 });
}

#[test]
fn sessions_expire_when_idle_or_old_and_can_be_revoked() {
    let m = MemoryStore::new();
    let limits = SessionLimits { idle: Duration::from_secs(10), absolute: Duration::from_secs(25) };
    let s = Session { mobile: "9000000001".into(), created_ms: 0, last_seen_ms: 0 };
    m.session_put("s", s.clone(), limits);
    assert!(m.session_touch("s", 9_000, limits).is_some());
    assert!(m.session_touch("s", 18_000, limits).is_some(), "touch moved last_seen");
    assert!(m.session_touch("s", 26_000, limits).is_none(), "absolute limit");
    m.session_put("i", s.clone(), limits);
    assert!(m.session_touch("i", 10_001, limits).is_none(), "idle limit");
    m.session_put("r", s, limits);
    m.session_revoke("r");
    assert!(m.session_touch("r", 1, limits).is_none());
}

/// A flood of new keys beyond the cap never resets a live counter: new keys are refused (the
/// caller fails closed) until old ones expire.
#[test]
fn a_key_flood_beyond_the_cap_is_refused_and_forgets_nothing() {
    let m = MemoryStore::with_caps(64, 16);
    let w = Duration::from_secs(60);
    assert_eq!(m.window("victim", 0, w, 2, true).unwrap(), Window::Allowed);
    assert_eq!(m.window("victim", 0, w, 2, true).unwrap(), Window::Allowed);
    let mut refused = 0;
    for i in 0..10_000 {
        if m.window(&format!("flood-{i}"), 1, w, 5, true).is_err() {
            refused += 1;
        }
    }
    assert!(refused > 9_000, "beyond the cap new keys are refused: {refused}");
    assert!(matches!(m.window("victim", 2, w, 2, true).unwrap(), Window::Denied { .. }), "the count survived");
    assert!(m.window("victim", 2, w, 2, false).is_ok(), "checking a live counter still works");
    assert!(m.counters(2).0 <= 64 + 16, "memory stays bounded: {:?}", m.counters(2));
    // Once the flood's windows have passed, new keys are admitted again.
    assert_eq!(m.window("late", 60_002, w, 2, true).unwrap(), Window::Allowed);

    for i in 0..1_000 {
        let _ = m.distinct_add(&format!("quota-{i}"), "a", 3, w, 0);
    }
    assert!(m.distinct_add("quota-new", "a", 3, w, 0).is_err(), "a full set map refuses, never forgets");
    let counted = m.distinct_add("quota-0", "b", 3, w, 0).unwrap();
    assert_eq!(counted, Distinct::Counted { new: true, count: 2 }, "a live set keeps counting");
}
