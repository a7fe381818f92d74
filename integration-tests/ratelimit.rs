//! Issue 5: per-identity rate limits against the shipped policy (`otpgate demo`).

use std::time::{Duration, Instant};

use crate::citizen_flow::{get_auth, post, sign_in, sign_in_from};
use crate::harness::*;

const DATE: &str = "01-06-2021";

#[tokio::test]
async fn a_script_is_throttled_while_a_human_books_and_one_seat_goes_once() {
    // The shipped policy with the booking waiting room's window at 1 s: the script's first two
    // bookings (each opening a contest) are held that long, the rest refused at once by the
    // limits (`waiting_room.rs` tests the room itself).
    let policy = shipped_policy(&[("window: 10s", "window: 1s")]);
    let gw = Gateway::demo(&["--listen-plain", "127.0.0.1:0", "--config", &policy.path().display().to_string()]);
    let http = gw.addr("http");
    let outbox = gw.data_path("otp-outbox.jsonl");
    let data = otpgate::demo::Dataset::new(1, 10_000);
    let (human_mobile, bot_mobile) = ("9000000005", "9000000006");
    let human = sign_in(http, &outbox, human_mobile).await;
    let bot = sign_in(http, &outbox, bot_mobile).await;
    let human_ref = data.beneficiaries_of_mobile(9_000_000_005)[0].reference_id_string();
    let bot_ref = data.beneficiaries_of_mobile(9_000_000_006)[0].reference_id_string();

    // A roomy session in district 1 (not the capacity-1 one).
    let calendar = format!("/api/v2/appointment/sessions/calendarByDistrict?district_id=1&date={DATE}");
    let cal = get_auth(http, &calendar, &human).await;
    assert_eq!(cal.status, 200);
    assert!(cal.headers.contains_key("ratelimit-policy") && cal.headers.contains_key("ratelimit"));
    let session = cal.json()["centers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["sessions"].as_array().unwrap().clone())
        .find(|s| s["available_capacity"].as_u64().unwrap_or(0) >= 20 && s["date"] == DATE)
        .expect("a session with room");
    let session_id = session["session_id"].as_str().unwrap().to_string();
    let booking = |reference: &str| {
        format!(r#"{{"dose":1,"session_id":"{session_id}","slot":"09:00AM-11:00AM","beneficiaries":["{reference}"]}}"#)
    };

    let deadline = Instant::now() + Duration::from_secs(4);
    let (bot_poll, bot_book) = {
        let (poller, calendar) = (bot.clone(), calendar.clone());
        let poll = tokio::spawn(async move {
            let mut statuses = Vec::new();
            while Instant::now() < deadline {
                statuses.push(get_auth(http, &calendar, &poller).await.status);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            statuses
        });
        let (booker, body) = (bot.clone(), booking(&bot_ref));
        let book = tokio::spawn(async move {
            let mut statuses = Vec::new();
            while Instant::now() < deadline {
                statuses.push(post(http, "/api/v2/appointment/schedule", &body, Some(&booker)).await.status);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            statuses
        });
        (poll, book)
    };
    // The human: a search, a pause, another search, then one booking.
    for _ in 0..2 {
        assert_eq!(get_auth(http, &calendar, &human).await.status, 200, "human-paced searches are never throttled");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let r = post(http, "/api/v2/appointment/schedule", &booking(&human_ref), Some(&human)).await;
    assert_eq!(r.status, 200, "the human books: {}", r.text());

    let polls = bot_poll.await.unwrap();
    let books = bot_book.await.unwrap();
    let ok = |v: &[u16]| v.iter().filter(|s| **s != 429).count();
    assert!(
        polls.len() > 30 && books.len() > 25,
        "the script really ran: {} polls, {} bookings",
        polls.len(),
        books.len()
    );
    assert!(ok(&polls) <= 20, "20 searches per 15 min per session: {} passed", ok(&polls));
    assert!(ok(&books) <= 2, "2 bookings per beneficiary per 15 min: {} passed", ok(&books));
    let throttled = polls.iter().chain(&books).filter(|s| **s == 429).count();
    let m = get_h1(gw.addr("admin"), "/metrics").await.text();
    assert!(metric(&m, "otpgate_throttled_total", &[("route", "schedule"), ("key", "beneficiary")]) >= 1.0, "{m}");
    assert!(metric(&m, "otpgate_throttled_total", &[("route", "calendar-by-district")]) >= 1.0);
    assert_eq!(metric(&m, "otpgate_throttled_total", &[]) as usize, throttled, "every 429 the script saw is counted");

    // 100 concurrent bookings of the one seat of a capacity-1 session, from 25 citizens with four
    // beneficiaries each: within every limit, and the seat goes exactly once. In the waiting room
    // each citizen holds one ticket: a second request of theirs while the first waits is 409
    // GWY4091 (book several beneficiaries in one request), the others the registry's APPOIN0040.
    let date = otpgate::demo::data::Date::parse_dmy(DATE).unwrap();
    let seat = data.session_id(data.capacity_one_session(1, date).unwrap()).to_string();
    let mut bookers = Vec::new();
    let mut m = 9_000_000_011u64;
    while bookers.len() < 25 {
        let refs: Vec<String> = data.beneficiaries_of_mobile(m).iter().map(|b| b.reference_id_string()).collect();
        if refs.len() == 4 {
            // One address each: OTP sends are limited per source (20 an hour).
            let src = format!("127.0.5.{}", bookers.len() + 1);
            bookers.push((sign_in_from(&src, http, &outbox, &m.to_string()).await, refs));
        }
        m += 1;
    }
    let mut tasks = Vec::new();
    for (token, refs) in bookers {
        for reference in refs {
            let (token, seat) = (token.clone(), seat.clone());
            tasks.push(tokio::spawn(async move {
                let body = format!(
                    r#"{{"dose":1,"session_id":"{seat}","slot":"09:00AM-11:00AM","beneficiaries":["{reference}"]}}"#
                );
                post(http, "/api/v2/appointment/schedule", &body, Some(&token)).await
            }));
        }
    }
    let mut statuses = std::collections::BTreeMap::new();
    for t in tasks {
        let r = t.await.unwrap();
        let code = if r.status == 200 { String::new() } else { r.error_code() };
        assert!(["", "APPOIN0040", "GWY4091"].contains(&code.as_str()), "{} {}", r.status, r.text());
        *statuses.entry((r.status, code)).or_insert(0) += 1;
    }
    assert_eq!(statuses.get(&(200, String::new())), Some(&1), "exactly one booking: {statuses:?}");
    assert_eq!(statuses.values().sum::<usize>(), 100, "{statuses:?}");
    assert!(statuses.get(&(409, "GWY4091".into())).is_some_and(|n| *n <= 75), "one ticket each: {statuses:?}");
}

#[tokio::test]
async fn forwarded_for_values_do_not_open_new_buckets() {
    // Untrusted peer: X-Forwarded-For is ignored, every request counts against 127.0.0.1.
    let gw = Gateway::demo(&["--listen-plain", "127.0.0.1:0"]);
    let http = gw.addr("http");
    let path = "/api/v2/appointment/sessions/public/findByDistrict?district_id=1&date=01-06-2021";
    let mut refused = None;
    for i in 0..110 {
        let req = http::Request::get(path)
            .header("host", "x")
            .header("x-forwarded-for", format!("198.51.100.{}", i % 250))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let r = h1(tcp(http).await, req).await;
        if r.status == 429 {
            refused = Some((i, r));
            break;
        }
    }
    let (i, r) = refused.expect("the per-IP limit holds whatever X-Forwarded-For says");
    assert_eq!(i, 100, "100 per 5 minutes");
    assert_eq!(r.error_code(), "GWY4291");
    assert!(r.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(r.headers["ratelimit-policy"], "\"public-search-5m\";q=100;w=300", "the shared budget");
    assert!(r.headers["ratelimit"].to_str().unwrap().starts_with("\"public-search-5m\";r=0;t="));
}

/// Per-beneficiary limits are charged only once ownership is proven: requests naming someone
/// else's beneficiary are refused (403) without spending that person's limit.
#[tokio::test]
async fn refused_requests_do_not_spend_a_strangers_beneficiary_limit() {
    let gw = Gateway::demo(&["--listen-plain", "127.0.0.1:0"]);
    let http = gw.addr("http");
    let outbox = gw.data_path("otp-outbox.jsonl");
    let data = otpgate::demo::Dataset::new(1, 10_000);
    let victim_ref = data.beneficiaries_of_mobile(9_000_000_005)[0].reference_id_string();
    let book =
        |refs: &str| format!(r#"{{"dose":1,"session_id":"x","slot":"09:00AM-11:00AM","beneficiaries":[{refs}]}}"#);
    let attacker = sign_in(http, &outbox, "9000000006").await;
    // The shipped limit is 2 per beneficiary per 15 minutes; naming it repeatedly, and twice per
    // request, is refused every time.
    for _ in 0..3 {
        let r = post(
            http,
            "/api/v2/appointment/schedule",
            &book(&format!("\"{victim_ref}\",\"{victim_ref}\"")),
            Some(&attacker),
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.text());
    }
    let victim = sign_in(http, &outbox, "9000000005").await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = post(http, "/api/v2/appointment/schedule", &book(&format!("\"{victim_ref}\"")), Some(&victim)).await;
        statuses.push(r.status);
    }
    // The owner's own requests reach the registry (which refuses the made-up session) until
    // their own limit of 2 is spent.
    assert!(statuses[..2].iter().all(|&s| s != 429 && s != 403), "{statuses:?}");
    assert_eq!(statuses[2], 429, "{statuses:?}");
}
