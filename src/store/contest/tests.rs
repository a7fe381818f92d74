//! The contest state machine, alone and through both stores (memory, and the machine's Redis
//! under a fresh prefix): the same scenario must give the same answers.

use std::collections::HashMap;
use std::time::Duration;

use super::*;
use crate::metrics::StoreCounters;
use crate::store::Store;

const WINDOW: Duration = Duration::from_millis(1000);
const TTL: Duration = Duration::from_secs(60);
const TURN: Duration = Duration::from_secs(20);

fn redis() -> Store {
    let prefix = format!("otpgate-test:{}:", uuid::Uuid::new_v4());
    Store::open("redis://127.0.0.1:6379/0", &prefix, StoreCounters::default()).unwrap()
}

#[test]
fn the_order_is_the_tickets_order_and_one_ticket_per_person() {
    let mut c = Contest::default();
    assert_eq!(c.enter("bob", "c0", 1_000, 500).kind, EntryKind::Held);
    assert_eq!(c.enter("amy", "0a", 1_100, 500).kind, EntryKind::Held);
    // Bob again, with a better ticket: he keeps his first one.
    assert_eq!(c.enter("bob", "00", 1_200, 500).kind, EntryKind::Duplicate);
    assert_eq!(c.enter("cat", "ff", 1_499, 500).kind, EntryKind::Held);
    let v = c.poll("amy", 1_499, 10_000).unwrap();
    assert!(!v.frozen && v.rank.is_none());
    let v = c.poll("amy", 1_500, 10_000).unwrap();
    assert_eq!((v.frozen, v.turn, v.rank, v.drawn), (true, 0, Some(0), 3));
    assert_eq!(c.drawn_order(), ["amy", "bob", "cat"]);
    // After the window: behind everyone, in arrival order.
    assert_eq!(c.enter("dan", "01", 1_600, 500).kind, EntryKind::Ranked(3));
    assert_eq!(c.enter("amy", "01", 1_600, 500).kind, EntryKind::Duplicate, "her turn has not passed");
    assert_eq!(c.advance(1, 1_700), Some(0), "only the holder of the turn moves it");
    assert_eq!(c.advance(0, 1_700), Some(1));
    assert_eq!(c.enter("amy", "01", 1_800, 500).kind, EntryKind::Ranked(4), "done: a new request queues");
    // Bob's request goes away: his turn is skipped; Cat's stalls past the timeout and is skipped.
    c.withdraw("bob", 1_900);
    assert_eq!(c.poll("cat", 1_900, 10_000).unwrap().turn, 2);
    assert_eq!(c.poll("cat", 11_899, 10_000).unwrap().turn, 2);
    assert_eq!(c.poll("dan", 11_900, 10_000).unwrap().turn, 3);
    assert!(c.claim() && !c.claim(), "the draw is recorded once");
    assert_eq!(c.advance(3, 12_000), Some(4));
    assert_eq!(c.advance(4, 12_100), None, "everyone's turn has passed: the contest ends");
    assert!(c.poll("amy", 12_100, 10_000).is_none());
    let again = c.enter("eve", "05", 20_000, 500);
    assert_eq!((again.opened_ms, again.kind), (20_000, EntryKind::Held), "a new contest, a new window");
}

/// A contest opened early (a script booking before the seats are released) is over long before
/// they are: the release opens a new contest and everyone in its window is drawn.
#[test]
fn an_early_contest_ends_and_does_not_make_the_release_first_come_first_served() {
    let mut c = Contest::default();
    c.enter("script", "00", 0, 1_000);
    c.poll("script", 1_000, u64::MAX);
    assert_eq!(c.advance(0, 1_010), None, "its one request answered (no seats yet)");
    assert_eq!(c.enter("script", "ff", 60_000, 1_000).kind, EntryKind::Held, "held, not queued");
    assert_eq!(c.enter("person", "11", 60_900, 1_000).kind, EntryKind::Held);
    assert_eq!(c.poll("person", 61_000, u64::MAX).unwrap().drawn, 2);
}

#[test]
fn a_withdrawn_request_gives_its_ticket_to_the_next_of_the_same_person() {
    let mut c = Contest::default();
    c.enter("amy", "aa", 0, 100);
    c.withdraw("amy", 10);
    assert_eq!(c.enter("amy", "00", 20, 100).kind, EntryKind::Held);
    assert_eq!(c.enter("amy", "00", 30, 100).kind, EntryKind::Duplicate);
    c.enter("bob", "bb", 40, 100);
    c.poll("bob", 100, u64::MAX);
    assert_eq!(c.drawn_order(), ["amy", "bob"], "her first ticket, not the second draw");
}

/// Uniform: over many contests of three people entering in a fixed order, each person is first
/// about a third of the time (ticket order, not arrival order).
#[test]
fn arrival_order_does_not_decide_the_draw() {
    let mut first: HashMap<String, u32> = HashMap::new();
    for _ in 0..3000 {
        let mut c = Contest::default();
        for (i, p) in ["fast", "middle", "slow"].iter().enumerate() {
            c.enter(p, &format!("{:016x}", rand::random::<u64>()), i as u64 * 100, 1000);
        }
        c.poll("slow", 1000, u64::MAX);
        *first.entry(c.drawn_order()[0].clone()).or_default() += 1;
    }
    // Binomial(3000, 1/3): mean 1000, sd ≈ 25.8; ±6 sd fails with probability < 1e-8.
    for (p, n) in &first {
        assert!((845..=1155).contains(n), "{p} first {n} times of 3000: {first:?}");
    }
}

async fn scenario(s: Store) {
    let t0 = 1_000_000;
    let enter = |p: &'static str, ticket: &'static str, at: u64| {
        let s = s.clone();
        async move { s.contest_enter("k", p, ticket, at, WINDOW, TTL).await.unwrap() }
    };
    let first = enter("bob", "c000000000000000", t0).await;
    assert_eq!((first.opened_ms, first.close_ms, first.kind), (t0, t0 + 1000, EntryKind::Held));
    assert_eq!(enter("amy", "0a00000000000000", t0 + 10).await.kind, EntryKind::Held);
    assert_eq!(enter("bob", "0000000000000000", t0 + 20).await.kind, EntryKind::Duplicate);
    assert_eq!(enter("cat", "ff00000000000000", t0 + 999).await.opened_ms, t0);
    let v = s.contest_poll("k", "amy", t0 + 500, TURN, TTL).await.unwrap().unwrap();
    assert!(!v.frozen);
    assert_eq!(s.contest_order("k", t0 + 500).await.unwrap(), Vec::<String>::new());
    let v = s.contest_poll("k", "bob", t0 + 1000, TURN, TTL).await.unwrap().unwrap();
    assert_eq!((v.frozen, v.turn, v.rank, v.drawn), (true, 0, Some(1), 3));
    assert_eq!(s.contest_order("k", t0 + 1000).await.unwrap(), ["amy", "bob", "cat"]);
    assert_eq!(enter("dan", "0000000000000000", t0 + 1100).await.kind, EntryKind::Ranked(3));
    assert!(s.contest_claim("k", t0).await.unwrap());
    assert!(!s.contest_claim("k", t0).await.unwrap());
    s.contest_advance("k", 2, t0 + 1200, TTL).await.unwrap();
    assert_eq!(s.contest_poll("k", "amy", t0 + 1200, TURN, TTL).await.unwrap().unwrap().turn, 0);
    s.contest_advance("k", 0, t0 + 1200, TTL).await.unwrap();
    s.contest_withdraw("k", "bob", t0 + 1300, TTL).await.unwrap();
    let v = s.contest_poll("k", "cat", t0 + 1300, TURN, TTL).await.unwrap().unwrap();
    assert_eq!((v.turn, v.rank), (2, Some(2)), "Bob's withdrawn turn is skipped");
    let stalled = t0 + 1300 + TURN.as_millis() as u64;
    assert_eq!(s.contest_poll("k", "dan", stalled, TURN, TTL).await.unwrap().unwrap().turn, 3);
    assert_eq!(enter("amy", "0000000000000000", stalled).await.kind, EntryKind::Ranked(4));
    assert!(s.contest_poll("other", "amy", t0, TURN, TTL).await.unwrap().is_none());
    // The last turns: the contest ends, and the next request opens a new one.
    s.contest_advance("k", 3, stalled, TTL).await.unwrap();
    assert_eq!(s.contest_poll("k", "amy", stalled, TURN, TTL).await.unwrap().unwrap().turn, 4);
    s.contest_advance("k", 4, stalled + 1, TTL).await.unwrap();
    assert!(s.contest_poll("k", "amy", stalled + 1, TURN, TTL).await.unwrap().is_none());
    assert!(!s.contest_claim("k", stalled + 1).await.unwrap(), "nothing to claim in an ended contest");
    let again = enter("amy", "0000000000000000", stalled + 2).await;
    assert_eq!((again.opened_ms, again.kind), (stalled + 2, EntryKind::Held));
}

#[tokio::test]
async fn the_memory_store_runs_contests() {
    scenario(Store::memory()).await;
}

#[tokio::test]
async fn the_shared_store_runs_the_same_contests() {
    scenario(redis()).await;
}

/// Racing entries on two "replicas" (two connections) of one Redis: one contest, one ticket each.
#[tokio::test]
async fn racing_replicas_enter_one_contest() {
    let prefix = format!("otpgate-test:{}:", uuid::Uuid::new_v4());
    let a = Store::open("redis://127.0.0.1:6379/0", &prefix, StoreCounters::default()).unwrap();
    let b = Store::open("redis://127.0.0.1:6379/0", &prefix, StoreCounters::default()).unwrap();
    let t0 = 5_000_000;
    let tasks = (0..40).map(|i| {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move {
            let person = format!("p{}", i % 20);
            let ticket = format!("{:016x}", rand::random::<u64>());
            s.contest_enter("race", &person, &ticket, t0 + i, WINDOW, TTL).await.unwrap()
        })
    });
    let entered: Vec<Entered> = futures_util::future::join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
    assert!(entered.iter().all(|e| e.opened_ms == entered[0].opened_ms));
    assert_eq!(entered.iter().filter(|e| e.kind == EntryKind::Held).count(), 20);
    assert_eq!(entered.iter().filter(|e| e.kind == EntryKind::Duplicate).count(), 20);
    let v = a.contest_poll("race", "p0", t0 + 5000, TURN, TTL).await.unwrap().unwrap();
    assert_eq!(v.drawn, 20);
    let order = b.contest_order("race", t0).await.unwrap();
    let mut sorted = order.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 20, "each person ranked once: {order:?}");
}
