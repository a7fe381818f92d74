use std::time::Duration;

use super::{Breakers, State, Transition};
use crate::policy::BreakerRules;

const RULES: BreakerRules = BreakerRules { failures: 3, open_for: Duration::from_secs(10) };

fn fail(b: &Breakers, now: u64) -> Transition {
    let a = b.admit("reg", RULES, now).expect("admitted");
    b.record(a, RULES, false, now)
}

fn state(b: &Breakers, now: u64) -> State {
    b.states(now).into_iter().find(|(n, _)| n == "reg").map(|(_, s)| s).unwrap()
}

#[test]
fn opens_after_consecutive_failures_and_refuses_until_open_for_has_passed() {
    let b = Breakers::default();
    assert_eq!(fail(&b, 0), Transition::None);
    let ok = b.admit("reg", RULES, 0).unwrap();
    assert_eq!(b.record(ok, RULES, true, 0), Transition::None, "a success resets the count");
    assert_eq!((fail(&b, 1), fail(&b, 2)), (Transition::None, Transition::None));
    assert_eq!(fail(&b, 3), Transition::Opened);
    assert_eq!(state(&b, 4), State::Open);
    let refused = b.admit("reg", RULES, 4).err().expect("open: refused at once");
    assert_eq!(refused.retry_after, Duration::from_millis(9_999));
    assert!(b.admit("other", RULES, 4).is_ok(), "one breaker per upstream");
}

#[test]
fn half_open_lets_one_probe_through_and_its_result_decides() {
    let b = Breakers::default();
    for t in 0..3 {
        fail(&b, t);
    }
    let later = 2 + 10_000;
    assert_eq!(state(&b, later), State::HalfOpen);
    let probe = b.admit("reg", RULES, later).expect("one probe");
    assert!(b.admit("reg", RULES, later).is_err(), "only one at a time");
    assert_eq!(b.record(probe, RULES, false, later), Transition::Opened, "a failed probe opens it again");
    assert!(b.admit("reg", RULES, later + 1).is_err());
    let again = later + 10_000;
    let probe = b.admit("reg", RULES, again).expect("the next probe");
    assert_eq!(b.record(probe, RULES, true, again), Transition::Closed);
    assert_eq!(state(&b, again), State::Closed);
    assert!(b.admit("reg", RULES, again).is_ok() && b.admit("reg", RULES, again).is_ok());
}

#[test]
fn a_cancelled_probe_gives_its_place_to_the_next_request() {
    let b = Breakers::default();
    for t in 0..3 {
        fail(&b, t);
    }
    let later = 20_000;
    drop(b.admit("reg", RULES, later).expect("probe"));
    assert!(b.admit("reg", RULES, later).is_ok(), "not stuck half open");
}

#[test]
fn zero_failures_means_never_open() {
    let never = BreakerRules { failures: 0, open_for: Duration::from_secs(10) };
    let b = Breakers::default();
    for t in 0..100 {
        let a = b.admit("reg", never, t).unwrap();
        assert_eq!(b.record(a, never, false, t), Transition::None);
    }
    assert!(b.admit("reg", never, 100).is_ok());
}
