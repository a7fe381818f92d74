use std::num::NonZeroU32;
use std::sync::Arc;

use parking_lot::Mutex;

use super::*;
use crate::policy::Limit;

fn room(window_ms: u64) -> WaitingRoom {
    WaitingRoom {
        window: Duration::from_millis(window_ms),
        key: vec!["session_id".into()],
        admission: (NonZeroU32::new(1000).unwrap(), Duration::from_secs(1)),
    }
}

#[test]
fn two_spellings_of_one_session_are_one_contest() {
    let r = room(1000);
    let id = "3FA85F64-5717-4562-B3FC-2C963F66AFA6";
    let a = key_values(&r, format!(r#"{{"session_id":"{id}","dose":1}}"#).as_bytes()).unwrap();
    let b = key_values(&r, br#"{"session_id":" 3FA85F6457174562B3FC2C963F66AFA6 ","dose":"1"}"#).unwrap();
    let c = key_values(&r, br#"{"session_id":"3fa85f64-5717-4562-b3fc-2c963f66afa6"}"#).unwrap();
    assert_eq!(a, ["3fa85f64-5717-4562-b3fc-2c963f66afa6"]);
    assert_eq!(a, c);
    assert_eq!(a, b);
    assert_eq!(key_values(&r, br#"{"session_id":42}"#).unwrap(), ["42"]);
    assert_eq!(key_values(&r, br#"{"session_id":"042"}"#).unwrap(), ["42"]);
    for bad in [&br#"{"dose":1}"#[..], br#"{"session_id":[1]}"#, b"not json", br#"{"session_id":"a","session_id":"b"}"#]
    {
        assert!(matches!(key_values(&r, bad), Err(GatewayError::BadRequest(_))), "{}", String::from_utf8_lossy(bad));
    }
    assert_eq!(store_key("schedule", &a), store_key("schedule", &c));
    assert_ne!(store_key("schedule", &a), store_key("reschedule", &a));
    assert_eq!(contest_id("schedule", &a, 7), format!("schedule:{}@7", a[0]));
    let odd = contest_id("schedule", &["a b\"c".to_string()], 7);
    assert!(odd.starts_with("schedule:h") && !odd.contains('"'), "{odd}");
}

/// What was forwarded, in order: mobile, rank, contest.
type Log = Mutex<Vec<(String, u64, String)>>;

struct Process {
    store: Store,
    clock: Clock,
    metrics: Metrics,
    limiters: Limiters,
    admission: RouteLimits,
    rooms: Rooms,
    forwarded: Mutex<Vec<tokio::time::Instant>>,
    upstream_ms: u64,
}

impl Process {
    fn new(store: Store) -> Arc<Process> {
        Process::admitting(store, 1000)
    }

    /// A process whose waiting room forwards at most `per_second` a second.
    fn admitting(store: Store, per_second: u32) -> Arc<Process> {
        let limiters = Limiters::default();
        let limit = Limit::of(LimitKey::Ip, vec![(NonZeroU32::new(per_second).unwrap(), Duration::from_secs(1))]);
        let admission = limiters.for_route("t(waiting-room)", &[limit]);
        Arc::new(Process {
            store,
            clock: Clock::system(),
            metrics: Metrics::new(),
            limiters,
            admission,
            rooms: Rooms::new(Hasher::new(b"k")),
            forwarded: Mutex::new(Vec::new()),
            upstream_ms: 60,
        })
    }

    async fn book(&self, room: &WaitingRoom, mobile: &str, log: &Log) -> Result<u64, GatewayError> {
        let deps = Deps {
            store: &self.store,
            clock: &self.clock,
            audit: None,
            metrics: &self.metrics,
            limiters: &self.limiters,
        };
        let at =
            Room { route: "t", policy_version: "v", room, admission: &self.admission, timeout: Duration::from_secs(1) };
        let turn = self.rooms.wait(&deps, &at, &["s1".to_string()], mobile).await?;
        let rank = turn.record().rank;
        log.lock().push((mobile.to_string(), rank, turn.record().contest));
        self.forwarded.lock().push(tokio::time::Instant::now());
        // The registry's answer takes a while.
        tokio::time::sleep(Duration::from_millis(self.upstream_ms)).await;
        turn.finish().await;
        Ok(rank)
    }
}

/// Held requests go one at a time in the drawn order; a person's second request is 409 once the
/// first has gone; one who arrives after the window, while the contest is still served, queues
/// behind; once it has ended, the next request opens a new contest.
#[tokio::test]
async fn held_requests_go_one_by_one_in_the_drawn_order() {
    let p = Process::new(Store::memory());
    let r = room(300);
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (i, mobile) in ["9000000001", "9000000002", "9000000003", "9000000001"].into_iter().enumerate() {
        let (p, r, log) = (p.clone(), r.clone(), log.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20 * i as u64)).await;
            p.book(&r, mobile, &log).await
        }));
    }
    // The draw is served from 300 ms on, 60 ms a turn: at 350 ms it is still being served.
    let (p2, r2, log2) = (p.clone(), r.clone(), log.clone());
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(350)).await;
        p2.book(&r2, "9000000004", &log2).await
    });
    let mut ranks = Vec::new();
    for t in tasks {
        ranks.push(t.await.unwrap());
    }
    assert!(matches!(ranks[3], Err(GatewayError::AlreadyWaiting)), "{ranks:?}");
    let mut drawn: Vec<u64> = ranks[..3].iter().map(|r| *r.as_ref().unwrap()).collect();
    drawn.sort();
    assert_eq!(drawn, [0, 1, 2]);
    assert_eq!(late.await.unwrap().unwrap(), 3, "after the window: behind the draw");
    let forwarded = log.lock().clone();
    assert_eq!(forwarded.iter().map(|(_, rank, _)| *rank).collect::<Vec<_>>(), [0, 1, 2, 3], "one by one, by rank");
    assert!(forwarded.iter().all(|(_, _, c)| *c == forwarded[0].2), "one contest");

    let started = tokio::time::Instant::now();
    assert_eq!(p.book(&r, "9000000005", &log).await.unwrap(), 0);
    assert!(started.elapsed() >= Duration::from_millis(300), "a new contest: held for its window");
    assert_ne!(log.lock()[4].2, forwarded[0].2);
    assert!(p.metrics.encode().contains("otpgate_waiting_room_held 0"));
}

/// A request that goes away while held (the client hung up) does not stall the others.
#[tokio::test]
async fn a_request_that_goes_away_does_not_stall_the_contest() {
    let p = Process::new(Store::memory());
    let r = room(200);
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for mobile in ["9000000011", "9000000012", "9000000013"] {
        let (p, r, log) = (p.clone(), r.clone(), log.clone());
        tasks.push(tokio::spawn(async move { p.book(&r, mobile, &log).await }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    tasks[1].abort();
    let started = tokio::time::Instant::now();
    for t in [tasks.remove(2), tasks.remove(0)] {
        assert!(t.await.unwrap().is_ok());
    }
    assert!(started.elapsed() < Duration::from_secs(1), "no turn timeout waited for");
    assert_eq!(log.lock().len(), 2);
}

/// The admission rate spaces forwards: 2 a second is a burst of 2, then one every 500 ms.
#[tokio::test]
async fn the_admission_rate_spaces_the_forwards() {
    let p = Process::admitting(Store::memory(), 2);
    let p = Arc::new(Process { upstream_ms: 1, ..Arc::into_inner(p).unwrap() });
    let r = room(100);
    let log = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = ["9000000021", "9000000022", "9000000023", "9000000024"]
        .into_iter()
        .map(|mobile| {
            let (p, r, log) = (p.clone(), r.clone(), log.clone());
            tokio::spawn(async move { p.book(&r, mobile, &log).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let at = p.forwarded.lock().clone();
    assert_eq!(at.len(), 4);
    let spread = at[3] - at[0];
    assert!(spread >= Duration::from_millis(900), "two cells refilled at 500 ms each: {spread:?}");
}
