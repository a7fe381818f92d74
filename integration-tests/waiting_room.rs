//! Issue 14, items 2–4: the waiting room on `schedule`, against the real binary. Seats of a
//! capacity-1 session go to whoever the draw puts first — not to the fastest client — with one
//! ticket per person whatever number of tokens they hold; seats are never given twice; held
//! requests keep ownership, limits and audit; two replicas on one Redis run one contest.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use otpgate::demo::Dataset;
use otpgate::demo::data::Date;
use serde_json::{Value, json};

use crate::citizen_flow::{post, sign_in_from};
use crate::harness::*;
use crate::scaleout::Deployment;

const SCHEDULE: &str = "/api/v2/appointment/schedule";

/// Capacity-1 sessions (`Dataset::capacity_one_session`) with the dose their seat is for.
fn seats(ds: &Dataset, n: usize) -> Vec<(String, u8)> {
    let mut out = Vec::new();
    for day in ["05-07-2021", "06-07-2021", "07-07-2021", "08-07-2021", "09-07-2021"] {
        for district in 1..=12 {
            let key = ds.capacity_one_session(district, Date::parse_dmy(day).unwrap()).unwrap();
            let s = ds.session(key).unwrap();
            out.push((ds.session_id(key).to_string(), if s.available_capacity_dose1 > 0 { 1 } else { 2 }));
        }
    }
    out.truncate(n);
    assert_eq!(out.len(), n);
    out
}

/// `count` registered mobiles from `from` on with `per` beneficiaries free to book, and those.
fn people(ds: &Dataset, from: u64, per: usize, count: usize) -> Vec<(String, Vec<String>)> {
    (from..)
        .map(|m| (m.to_string(), ds.beneficiaries_of_mobile(m)))
        .filter(|(_, list)| list.len() >= per && list.iter().all(|b| b.appointment.is_none()))
        .map(|(m, list)| (m, list.iter().map(|b| b.reference_id_string()).collect()))
        .take(count)
        .collect()
}

/// The error code of a refusal, empty for a success.
fn code(r: &Resp) -> String {
    if r.status == 200 { String::new() } else { r.error_code() }
}

fn booking(session_id: &str, dose: u8, reference: &str) -> String {
    json!({"dose": dose, "session_id": session_id, "slot": "09:00AM-11:00AM", "beneficiaries": [reference]}).to_string()
}

/// A distinct loopback source per sign-in (OTP sends are limited per source).
fn source(i: usize) -> String {
    format!("127.0.{}.{}", 60 + i / 250, 1 + i % 250)
}

/// Every record of an audit log (JSON lines; control lines included, told apart by their fields).
fn audit(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// The draws in `records`: contest id → (entrants, order).
fn draws(records: &[Value]) -> HashMap<String, (u64, Vec<String>)> {
    records
        .iter()
        .filter(|r| r["reason"] == "waiting_room_draw")
        .map(|r| {
            let d = &r["draw"];
            let order = d["order"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_string()).collect();
            (d["contest"].as_str().unwrap().to_string(), (d["entrants"].as_u64().unwrap(), order))
        })
        .collect()
}

/// Forwarded booking records: (contest, rank, caller, status).
fn forwarded(records: &[Value]) -> Vec<(String, u64, String, u64)> {
    records
        .iter()
        .filter(|r| r["route"] == "schedule" && r["waiting_room"].is_object())
        .map(|r| {
            let w = &r["waiting_room"];
            (
                w["contest"].as_str().unwrap().to_string(),
                w["rank"].as_u64().unwrap(),
                r["caller_id"].as_str().unwrap().to_string(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The narrowest interval `[lo, hi]` with P(X < lo) ≤ α/2 and P(X > hi) ≤ α/2 for X ~ Binomial(n, p).
fn binomial_interval(n: usize, p: f64, alpha: f64) -> (usize, usize) {
    let ln_fact = |k: usize| (1..=k).map(|i| (i as f64).ln()).sum::<f64>();
    let pmf: Vec<f64> = (0..=n)
        .map(|k| (ln_fact(n) - ln_fact(k) - ln_fact(n - k) + k as f64 * p.ln() + (n - k) as f64 * (1.0 - p).ln()).exp())
        .collect();
    let (mut lo, mut tail) = (0, 0.0);
    while tail + pmf[lo] <= alpha / 2.0 {
        tail += pmf[lo];
        lo += 1;
    }
    let (mut hi, mut tail) = (n, 0.0);
    while tail + pmf[hi] <= alpha / 2.0 {
        tail += pmf[hi];
        hi -= 1;
    }
    (lo, hi)
}

#[test]
fn the_interval_is_the_binomials() {
    // Binomial(48, 1/3): P(X < 2) ≈ 8.8e-8 and P(X > 33) ≈ 1.2e-7 are cut; P(X < 3) would be 9.4e-7.
    assert_eq!(binomial_interval(48, 1.0 / 3.0, 1e-6), (2, 33));
}

/// 48 capacity-1 sessions, each contested by three people in a 3 s window: a fast client that
/// books at once, a slow one that books 1.5 s later (a person reading the SMS), and one who
/// holds three tokens and books with all three at once. Each should win with probability 1/3:
/// X ~ Binomial(48, 1/3) for each role, accepted in the interval whose two tails together have
/// probability < 1e-6 (computed by `binomial_interval`: 2..=33, the
/// two tails together 2.1e-7). Under first come, first
/// served the slow client wins none; with a ticket per token the triple would win about 3/5 —
/// and its draws would show five entrants, not three. The tickets come from the gateway's
/// CSPRNG, unseeded by design; the registry's data is the demo's (seed 1).
#[tokio::test]
async fn seats_go_by_draw_not_speed_with_one_ticket_per_person() {
    const CONTESTS: usize = 48;
    const ROLES: [&str; 3] = ["fast", "slow", "three tokens"];
    let policy = shipped_policy(&[
        ("window: 10s", "window: 3s"),
        ("resend_after: 60s", "resend_after: 1s"),
        (
            "{key: beneficiary, rate: [{limit: 2, per: 15m}, {limit: 5, per: 24h}]}",
            "{key: beneficiary, rate: [{limit: 9, per: 15m}]}",
        ),
    ]);
    let gw = Gateway::demo(&["--listen-plain", "127.0.0.1:0", "--config", &policy.path().display().to_string()]);
    let http = gw.addr("http");
    let outbox = gw.data_path("otp-outbox.jsonl");
    let ds = Dataset::new(1, 10_000);
    let seats = seats(&ds, CONTESTS);
    let folks = people(&ds, 9_000_001_001, 1, CONTESTS * ROLES.len());

    // Everyone signs in once; the person of role 2 twice more (the resend cooldown is 1 s here).
    let mut tokens: Vec<Vec<String>> = vec![Vec::new(); folks.len()];
    let mut rounds = vec![(0..folks.len()).collect::<Vec<_>>()];
    rounds.extend([1, 2].map(|_| (0..CONTESTS).map(|c| c * 3 + 2).collect::<Vec<_>>()));
    let mut n = 0;
    for (round, who) in rounds.into_iter().enumerate() {
        if round > 0 {
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
        let tasks: Vec<_> = who
            .into_iter()
            .map(|i| {
                n += 1;
                let (src, mobile, outbox) = (source(n), folks[i].0.clone(), outbox.clone());
                tokio::spawn(async move { (i, sign_in_from(&src, http, &outbox, &mobile).await) })
            })
            .collect();
        for t in tasks {
            let (i, token) = t.await.unwrap();
            tokens[i].push(token);
        }
    }

    let mut tasks = Vec::new();
    for (c, (session_id, dose)) in seats.iter().enumerate() {
        for role in 0..ROLES.len() {
            let i = c * 3 + role;
            let body = booking(session_id, *dose, &folks[i].1[0]);
            for token in tokens[i].clone() {
                let body = body.clone();
                tasks.push(tokio::spawn(async move {
                    if role == 1 {
                        tokio::time::sleep(Duration::from_millis(1500)).await;
                    }
                    let sent = Instant::now();
                    let r = post(http, SCHEDULE, &body, Some(&token)).await;
                    (c, role, r, sent.elapsed())
                }));
            }
        }
    }
    let mut wins = [0usize; 3];
    let mut per_seat: BTreeMap<usize, usize> = BTreeMap::new();
    let mut refusals: BTreeMap<(usize, String), usize> = BTreeMap::new();
    let mut slowest = Duration::ZERO;
    for t in tasks {
        let (c, role, r, took) = t.await.unwrap();
        slowest = slowest.max(took);
        match r.status {
            200 => {
                wins[role] += 1;
                *per_seat.entry(c).or_default() += 1;
            }
            409 => *refusals.entry((role, r.error_code())).or_default() += 1,
            other => panic!("{}: unexpected {other}: {}", ROLES[role], r.text()),
        }
    }
    assert!(per_seat.len() == CONTESTS && per_seat.values().all(|n| *n == 1), "one seat each: {per_seat:?}");
    assert_eq!(refusals.get(&(2, "GWY4091".into())), Some(&(2 * CONTESTS)), "extra tokens: {refusals:?}");
    assert_eq!(refusals.values().sum::<usize>(), 4 * CONTESTS, "{refusals:?}");

    let (lo, hi) = binomial_interval(CONTESTS, 1.0 / 3.0, 1e-6);
    for (role, won) in wins.iter().enumerate() {
        assert!((lo..=hi).contains(won), "{} won {won} of {CONTESTS} (accepted {lo}..={hi}): {wins:?}", ROLES[role]);
    }
    eprintln!("wins {wins:?} of {CONTESTS} (accepted {lo}..={hi}); slowest answer {slowest:?}");

    // The audit trail: one draw per contest with three entrants, and every forwarded request
    // named by its contest and rank, its caller at that rank of the recorded order.
    let records = audit(&gw.data_path("audit.log"));
    let draws = draws(&records);
    assert_eq!(draws.len(), CONTESTS);
    assert!(draws.values().all(|(n, order)| *n == 3 && order.len() == 3), "{draws:?}");
    let forwarded = forwarded(&records);
    assert_eq!(forwarded.len(), 3 * CONTESTS);
    for (contest, rank, caller, status) in &forwarded {
        let (_, order) = &draws[contest];
        assert_eq!(&order[*rank as usize], caller, "{contest}");
        assert_eq!(*status == 200, *rank == 0, "the first in the order takes the one seat");
    }
    let m = get_h1(gw.addr("admin"), "/metrics").await.text();
    assert_eq!(metric(&m, "otpgate_waiting_room_contests_total", &[("route", "schedule")]), CONTESTS as f64);
    assert_eq!(metric(&m, "otpgate_waiting_room_entrants_sum", &[]), 3.0 * CONTESTS as f64);
    assert_eq!(metric(&m, "otpgate_waiting_room_held", &[]), 0.0);
}

/// A refused request never takes a ticket nor waits; limits are charged before the wait; the
/// waiting costs the booking the window; the audit names the contest and rank.
#[tokio::test]
async fn held_requests_keep_ownership_limits_and_audit() {
    let policy = shipped_policy(&[("window: 10s", "window: 2s")]);
    let gw = Gateway::demo(&["--listen-plain", "127.0.0.1:0", "--config", &policy.path().display().to_string()]);
    let http = gw.addr("http");
    let outbox = gw.data_path("otp-outbox.jsonl");
    let ds = Dataset::new(1, 10_000);
    let (seat, dose) = seats(&ds, 1).remove(0);
    let folks = people(&ds, 9_000_002_001, 1, 3);
    let mut tokens = Vec::new();
    for (i, (mobile, _)) in folks.iter().enumerate() {
        tokens.push(sign_in_from(&source(900 + i), http, &outbox, mobile).await);
    }
    let (alice, bob, carol) = (tokens[0].clone(), tokens[1].clone(), tokens[2].clone());
    let alice_books = {
        let body = booking(&seat, dose, &folks[0].1[0]);
        tokio::spawn(async move {
            let sent = Instant::now();
            (post(http, SCHEDULE, &body, Some(&alice)).await, sent.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Bob names Alice's beneficiary: refused at once, no ticket.
    let sent = Instant::now();
    let r = post(http, SCHEDULE, &booking(&seat, dose, &folks[0].1[0]), Some(&bob)).await;
    assert_eq!((r.status, r.error_code().as_str()), (403, "GWY4032"), "{}", r.text());
    assert!(sent.elapsed() < Duration::from_secs(1), "not held: {:?}", sent.elapsed());
    // Carol sends three at once with her one beneficiary (limit: 2 per 15 min): one is refused at
    // once (429), one waits and goes upstream, the third waits for that turn and is 409 GWY4091.
    let carols: Vec<_> = (0..3)
        .map(|_| {
            let (body, token) = (booking(&seat, dose, &folks[2].1[0]), carol.clone());
            tokio::spawn(async move {
                let sent = Instant::now();
                (post(http, SCHEDULE, &body, Some(&token)).await, sent.elapsed())
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in carols {
        let (r, took) = t.await.unwrap();
        if r.status == 429 {
            assert!(took < Duration::from_secs(1), "the limit refuses before the wait: {took:?}");
        }
        statuses.push((r.status, code(&r)));
    }
    let (r, took) = alice_books.await.unwrap();
    assert!(took >= Duration::from_millis(1800), "held for the window: {took:?}");
    statuses.push((r.status, code(&r)));
    statuses.sort();
    let codes: Vec<(u16, &str)> = statuses.iter().map(|(s, c)| (*s, c.as_str())).collect();
    assert!(codes.contains(&(429, "GWY4291")) && codes.contains(&(409, "GWY4091")), "{codes:?}");
    assert_eq!(codes.iter().filter(|(s, _)| *s == 200).count(), 1, "{codes:?}");
    assert!(codes.contains(&(409, "APPOIN0040")), "the other of the two is told the session is full: {codes:?}");

    let records = audit(&gw.data_path("audit.log"));
    let draws = draws(&records);
    assert_eq!(draws.len(), 1);
    let (entrants, order) = draws.values().next().unwrap();
    assert_eq!(*entrants, 2, "Alice and Carol; Bob's refused request took no ticket");
    let fwd = forwarded(&records);
    assert_eq!(fwd.len(), 2);
    let callers: HashSet<&String> = fwd.iter().map(|(_, _, c, _)| c).collect();
    assert_eq!(callers, order.iter().collect::<HashSet<_>>());
    let refused: Vec<&Value> = records.iter().filter(|r| r["route"] == "schedule" && r["status"] != 200).collect();
    assert!(refused.iter().any(|r| r["status"] == 403 && r["waiting_room"].is_null()), "Bob's refusal audited");
    assert!(refused.iter().any(|r| r["status"] == 429 && r["waiting_room"].is_null()), "Carol's 429 audited");
    assert!(refused.iter().any(|r| r["status"] == 409 && r["reason"] == "GWY4091"), "the duplicate audited");
}

/// Two replicas on the machine's Redis: people on either contest the same four sessions; one
/// contest (and one draw record) per session across both, ranks 0..4 each used once, one seat.
#[tokio::test]
async fn two_replicas_run_one_contest_per_session() {
    two_replicas_one_contest("redis://127.0.0.1:6379/0").await;
}

/// The same on a three-master Redis Cluster: a contest's keys share one slot.
#[tokio::test]
async fn two_replicas_on_a_cluster_run_one_contest_per_session() {
    let nodes = crate::scaleout::start_cluster();
    let seeds: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
    two_replicas_one_contest(&format!("redis+cluster://{}", seeds.join(","))).await;
}

async fn two_replicas_one_contest(store: &str) {
    let d = Deployment::with(&[("window: 10s", "window: 2s")]);
    let (a, b) = (d.replica("wa", store), d.replica("wb", store));
    let ds = Dataset::new(1, 2000);
    let seats = seats(&ds, 4);
    let folks = people(&ds, 9_000_000_401, 4, 4);
    let mut callers = Vec::new();
    for (i, (mobile, refs)) in folks.iter().enumerate() {
        let gw = if i % 2 == 0 { &a } else { &b };
        let token = sign_in_from(&source(950 + i), gw.addr("http"), &gw.data_path("otp-outbox.jsonl"), mobile).await;
        callers.push((gw.addr("http"), token, refs.clone()));
    }
    let mut tasks = Vec::new();
    for (s, (session_id, dose)) in seats.iter().enumerate() {
        for (addr, token, refs) in &callers {
            let (addr, token, body) = (*addr, token.clone(), booking(session_id, *dose, &refs[s]));
            tasks.push(tokio::spawn(async move { (s, post(addr, SCHEDULE, &body, Some(&token)).await) }));
        }
    }
    let mut wins: BTreeMap<usize, usize> = BTreeMap::new();
    for t in tasks {
        let (s, r) = t.await.unwrap();
        match r.status {
            200 => *wins.entry(s).or_default() += 1,
            409 => assert_eq!(r.error_code(), "APPOIN0040"),
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    assert_eq!(wins.len(), 4, "{wins:?}");
    assert!(wins.values().all(|n| *n == 1), "one seat each: {wins:?}");
    let mut records = audit(&a.data_path("audit/wa/audit.log"));
    records.extend(audit(&b.data_path("audit/wb/audit.log")));
    let draws = draws(&records);
    assert_eq!(draws.len(), 4, "one draw per session, whichever replica closed it: {draws:?}");
    assert!(draws.values().all(|(n, _)| *n == 4));
    let mut ranks: HashMap<String, Vec<u64>> = HashMap::new();
    for (contest, rank, caller, _) in forwarded(&records) {
        assert_eq!(draws[&contest].1[rank as usize], caller);
        ranks.entry(contest).or_default().push(rank);
    }
    for (contest, mut r) in ranks {
        r.sort();
        assert_eq!(r, [0, 1, 2, 3], "{contest}");
    }
}

/// A replica that dies with requests held cannot stall the contests: their turns are skipped
/// after the turn timeout (route timeout 2 s here + 5 s), and the live replica's requests are
/// all answered, one seat per session.
#[tokio::test]
async fn a_replica_that_dies_holding_requests_does_not_stall_the_contest() {
    let d = Deployment::with(&[("window: 10s", "window: 2s"), ("route: 15s", "route: 2s")]);
    let store = "redis://127.0.0.1:6379/0";
    let (a, b) = (d.replica("da", store), d.replica("db", store));
    let ds = Dataset::new(1, 2000);
    let seats = seats(&ds, 3);
    let folks = people(&ds, 9_000_000_601, 3, 3);
    let mut callers = Vec::new();
    for (i, (mobile, refs)) in folks.iter().enumerate() {
        let gw = if i == 0 { &a } else { &b };
        let token = sign_in_from(&source(970 + i), gw.addr("http"), &gw.data_path("otp-outbox.jsonl"), mobile).await;
        callers.push((gw.addr("http"), token, refs.clone()));
    }
    let started = Instant::now();
    let mut on_b = Vec::new();
    for (s, (session_id, dose)) in seats.iter().enumerate() {
        for (i, (addr, token, refs)) in callers.iter().enumerate() {
            let (addr, token, body) = (*addr, token.clone(), booking(session_id, *dose, &refs[s]));
            let task = tokio::spawn(async move { (s, post(addr, SCHEDULE, &body, Some(&token)).await) });
            if i > 0 {
                on_b.push(task);
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Its clients' tasks end in a panic (connection reset), left unawaited.
    a.signal("KILL");
    let mut wins: BTreeMap<usize, usize> = BTreeMap::new();
    for t in on_b {
        let (s, r) = t.await.unwrap();
        match r.status {
            200 => *wins.entry(s).or_default() += 1,
            409 => assert_eq!(r.error_code(), "APPOIN0040"),
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(15), "window 2 s + one skipped turn of 7 s at most: {took:?}");
    assert!(wins.len() == 3 && wins.values().all(|n| *n == 1), "{wins:?}");
    let records = audit(&b.data_path("audit/db/audit.log"));
    let draws = draws(&records);
    assert!(draws.values().all(|(n, _)| *n == 3), "the dead replica's entrant was drawn too: {draws:?}");
    eprintln!("answered in {took:?}");
}
