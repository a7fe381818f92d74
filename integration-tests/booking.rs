//! Issue 14, item 1 (registry fidelity) against the real binary (`otpgate demo`): CoWIN-shaped
//! sessions, one appointment per beneficiary and dose, reschedule / cancel / appointment slip for
//! one's own appointments only, and capacity-1 seats given once under concurrency.

use std::collections::{BTreeMap, HashMap};

use otpgate::demo::Dataset;
use otpgate::demo::data::{Date, Session};
use serde_json::Value;

use crate::citizen_flow::{OUTBOX_POLICY, get_auth, post, sign_in, sign_in_from};
use crate::harness::upstream::{Hostile, OWN, OWN_APPOINTMENT, THEIR_APPOINTMENT};
use crate::harness::*;

const SCHEDULE: &str = "/api/v2/appointment/schedule";
const RESCHEDULE: &str = "/api/v2/appointment/reschedule";
const CANCEL: &str = "/api/v2/appointment/cancel";
const SLIP: &str = "/api/v2/appointment/appointmentslip/download";

fn data() -> Dataset {
    Dataset::new(1, 10_000)
}

fn booking(session_id: &str, dose: u8, refs: &[String]) -> String {
    serde_json::json!({"dose": dose, "session_id": session_id, "slot": "09:00AM-11:00AM", "beneficiaries": refs})
        .to_string()
}

/// A session of `district` on `date` with at least `dose1` and `dose2` seats.
fn roomy(district: u32, date: &str, dose1: u32, dose2: u32) -> Session {
    let date = Date::parse_dmy(date).unwrap();
    data()
        .centres(district, date)
        .into_iter()
        .flat_map(|c| c.sessions)
        .find(|s| s.available_capacity_dose1 >= dose1 && s.available_capacity_dose2 >= dose2)
        .expect("a roomy session")
}

/// The session `session_id` as the public `findByDistrict` shows it.
async fn shown(gw: &Gateway, district: u32, date: &str, session_id: &str) -> Value {
    let path = format!("/api/v2/appointment/sessions/public/findByDistrict?district_id={district}&date={date}");
    let r = get_h1(gw.addr("http"), &path).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["sessions"].as_array().unwrap().iter().find(|s| s["session_id"] == session_id).unwrap().clone()
}

/// Registered mobiles with at least `n` beneficiaries, from `from` on, and their references.
fn families(from: u64, n: usize, count: usize) -> Vec<(String, Vec<String>)> {
    let ds = data();
    (from..)
        .map(|m| (m.to_string(), ds.beneficiaries_of_mobile(m)))
        .filter(|(_, list)| list.len() >= n && list.iter().all(|b| b.appointment.is_none()))
        .map(|(m, list)| (m, list.iter().map(|b| b.reference_id_string()).collect()))
        .take(count)
        .collect()
}

/// The appointments the caller's record `reference` lists.
async fn appointments_of(gw: &Gateway, token: &str, reference: &str) -> Vec<Value> {
    let r = get_auth(gw.addr("http"), "/api/v2/appointment/beneficiaries", token).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let list = r.json()["beneficiaries"].as_array().unwrap().clone();
    let b = list.iter().find(|b| b["beneficiary_reference_id"] == reference).expect("own record");
    b["appointments"].as_array().unwrap().clone()
}

#[tokio::test]
async fn sessions_are_cowin_shaped_and_a_beneficiary_books_a_dose_once() {
    let gw = Gateway::demo(&["--listen-plain", "127.0.0.1:0"]);
    let http = gw.addr("http");
    let cal =
        get_h1(http, "/api/v2/appointment/sessions/public/calendarByDistrict?district_id=1&date=01-06-2021").await;
    assert_eq!(cal.status, 200);
    let centres = cal.json()["centers"].as_array().unwrap().clone();
    assert!(!centres.is_empty());
    for c in &centres {
        assert!(c["fee_type"].is_string() && c["center_id"].is_u64() && c["pincode"].is_u64(), "{c}");
        for s in c["sessions"].as_array().unwrap() {
            for key in [
                "session_id",
                "date",
                "available_capacity",
                "available_capacity_dose1",
                "available_capacity_dose2",
                "min_age_limit",
                "allow_all_age",
                "vaccine",
                "slots",
            ] {
                assert!(!s[key].is_null(), "{key} missing in {s}");
            }
            let n = |k: &str| s[k].as_u64().unwrap();
            assert_eq!(n("available_capacity"), n("available_capacity_dose1") + n("available_capacity_dose2"));
            assert!(s["slots"].as_array().unwrap().iter().all(Value::is_string));
        }
    }

    let s = roomy(1, "01-06-2021", 3, 1);
    let sid = s.session_id.to_string();
    let found = shown(&gw, 1, "01-06-2021", &sid).await;
    assert_eq!(found["fee_type"] == "Free", found["fee"] == "0", "{found}");
    assert_eq!(found["available_capacity_dose1"], s.available_capacity_dose1);

    let (mobile, refs) = families(9_000_000_101, 1, 1).remove(0);
    let token = sign_in_from("127.0.9.1", http, &gw.data_path("otp-outbox.jsonl"), &mobile).await;
    let r = post(http, SCHEDULE, &booking(&sid, 1, &refs[..1]), Some(&token)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["appointment_confirmation_no"].as_str().unwrap().to_owned();
    let after = shown(&gw, 1, "01-06-2021", &sid).await;
    assert_eq!(after["available_capacity_dose1"], s.available_capacity_dose1 - 1);
    assert_eq!(after["available_capacity"], s.available_capacity - 1);

    // The same beneficiary and dose again: CoWIN's 409 and code, through the gateway.
    let again = post(http, SCHEDULE, &booking(&sid, 1, &refs[..1]), Some(&token)).await;
    assert_eq!((again.status, again.error_code().as_str()), (409, "APPOIN0022"));
    assert_eq!(shown(&gw, 1, "01-06-2021", &sid).await["available_capacity"], s.available_capacity - 1);
    let listed = appointments_of(&gw, &token, &refs[0]).await;
    assert_eq!(listed.len(), 1);
    assert_eq!((&listed[0]["appointment_id"], &listed[0]["dose"]), (&Value::from(id), &Value::from(1)));
}

#[tokio::test]
async fn only_the_owner_reschedules_cancels_or_downloads_an_appointment() {
    let gw = Gateway::demo(&["--listen-plain", "127.0.0.1:0"]);
    let http = gw.addr("http");
    let outbox = gw.data_path("otp-outbox.jsonl");
    let mut people = families(9_000_000_201, 2, 2);
    let (bob_mobile, bob_refs) = people.remove(1);
    let (alice_mobile, alice_refs) = people.remove(0);
    let alice = sign_in_from("127.0.9.11", http, &outbox, &alice_mobile).await;
    let bob = sign_in_from("127.0.9.12", http, &outbox, &bob_mobile).await;
    let (date, to_date) = ("02-06-2021", "03-06-2021");
    let from = roomy(2, date, 5, 0);
    let to = roomy(3, to_date, 5, 0);
    let (from_id, to_id) = (from.session_id.to_string(), to.session_id.to_string());

    // Alice's caller list is cached by this booking's ownership check; her new appointment is
    // hers at once all the same.
    let r = post(http, SCHEDULE, &booking(&from_id, 1, &alice_refs[..2]), Some(&alice)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let alices = r.json()["appointment_confirmation_no"].as_str().unwrap().to_owned();
    let r = post(http, SCHEDULE, &booking(&from_id, 1, &bob_refs[..1]), Some(&bob)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let bobs = r.json()["appointment_confirmation_no"].as_str().unwrap().to_owned();
    let slip = |id: &str| format!("{SLIP}?appointment_id={id}");
    let r = get_auth(http, &slip(&alices), &alice).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["content-type"], "application/pdf");
    assert!(r.body.starts_with(b"%PDF-") && r.text().contains(&alices));
    let seats_before = shown(&gw, 2, date, &from_id).await["available_capacity"].clone();

    // Bob, signed in, acting on Alice's appointment: refused by the gateway.
    let move_to = |id: &str| serde_json::json!({"appointment_id": id, "session_id": to_id, "slot": "11:00AM-01:00PM"});
    let cancel = |id: &str, refs: &[String]| serde_json::json!({"appointment_id": id, "beneficiariesToCancel": refs});
    let upper = alices.to_ascii_uppercase();
    for (what, r) in [
        ("slip", get_auth(http, &slip(&alices), &bob).await),
        ("slip, other case", get_auth(http, &slip(&upper), &bob).await),
        ("reschedule", post(http, RESCHEDULE, &move_to(&alices).to_string(), Some(&bob)).await),
        ("cancel", post(http, CANCEL, &cancel(&alices, &alice_refs[..1]).to_string(), Some(&bob)).await),
        ("cancel, his id", post(http, CANCEL, &cancel(&bobs, &alice_refs[..1]).to_string(), Some(&bob)).await),
        ("cancel, her id", post(http, CANCEL, &cancel(&alices, &bob_refs[..1]).to_string(), Some(&bob)).await),
    ] {
        assert_eq!((r.status, r.error_code().as_str()), (403, "GWY4032"), "{what}: {}", r.text());
        assert!(!r.text().contains(&alices) && !r.text().contains(&alice_refs[0]), "{what} echoes Alice's ids");
    }
    let r = get_auth(http, &format!("{SLIP}?appointment_id=not-a-uuid"), &bob).await;
    assert_eq!(r.status, 400, "{}", r.text());
    // The registry never saw those requests: it is naive and would have done them. Alice's
    // appointment is where she put it, with both her beneficiaries, and no seat moved.
    for reference in &alice_refs[..2] {
        let listed = appointments_of(&gw, &alice, reference).await;
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(
            (&listed[0]["appointment_id"], &listed[0]["session_id"]),
            (&Value::from(alices.clone()), &Value::from(from_id.clone()))
        );
    }
    assert_eq!(shown(&gw, 2, date, &from_id).await["available_capacity"], seats_before);
    assert_eq!(shown(&gw, 3, to_date, &to_id).await["available_capacity"], to.available_capacity);

    // Bob's own appointment is his to download, move and cancel.
    assert_eq!(get_auth(http, &slip(&bobs), &bob).await.status, 200);
    let r = post(http, RESCHEDULE, &move_to(&bobs).to_string(), Some(&bob)).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(shown(&gw, 3, to_date, &to_id).await["available_capacity"], to.available_capacity - 1);
    let r = post(http, CANCEL, &cancel(&bobs, &bob_refs[..1]).to_string(), Some(&bob)).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(shown(&gw, 3, to_date, &to_id).await["available_capacity"], to.available_capacity);
    assert!(appointments_of(&gw, &bob, &bob_refs[0]).await.is_empty());

    // Alice moves hers, then cancels one beneficiary, then the other: the seats come back.
    let r = post(http, RESCHEDULE, &move_to(&alices).to_string(), Some(&alice)).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(appointments_of(&gw, &alice, &alice_refs[1]).await[0]["session_id"], to_id.as_str());
    for (i, reference) in alice_refs[..2].iter().enumerate() {
        let r = post(http, CANCEL, &cancel(&alices, std::slice::from_ref(reference)).to_string(), Some(&alice)).await;
        assert_eq!(r.status, 204, "{}", r.text());
        assert_eq!(shown(&gw, 3, to_date, &to_id).await["available_capacity"], to.available_capacity - 1 + i as u32);
    }
    assert!(appointments_of(&gw, &alice, &alice_refs[1]).await.is_empty());
    // The id was hers (the gateway may still know it so for its cache's minute); the registry has
    // no such appointment any more.
    let r = get_auth(http, &slip(&alices), &alice).await;
    assert!(r.status == 403 || (r.status, r.error_code().as_str()) == (400, "APPOIN0049"), "{}", r.text());
}

#[tokio::test]
async fn concurrent_bookings_give_each_capacity_one_seat_once_and_each_dose_once() {
    let gw = Gateway::demo(&["--listen-plain", "127.0.0.1:0"]);
    let http = gw.addr("http");
    let outbox = gw.data_path("otp-outbox.jsonl");
    let ds = data();
    let date = "01-07-2021";
    let day = Date::parse_dmy(date).unwrap();
    let districts = [11u32, 12, 13, 14];
    let seats: Vec<String> =
        districts.iter().map(|d| ds.session_id(ds.capacity_one_session(*d, day).unwrap()).to_string()).collect();

    // Twelve families; each one's first two beneficiaries ask for two seats each, at once: the
    // first beneficiary for seats 0 and 1, the second for seats 2 and 3 (within every limit).
    let mut tokens = Vec::new();
    for (i, (mobile, refs)) in families(9_000_000_301, 2, 12).into_iter().enumerate() {
        tokens.push((sign_in_from(&format!("127.0.9.{}", 100 + i), http, &outbox, &mobile).await, refs));
    }
    let mut tasks = Vec::new();
    for (token, refs) in &tokens {
        for (b, seat) in [(0, 0), (0, 1), (1, 2), (1, 3)] {
            let (token, reference, seat_id) = (token.clone(), refs[b].clone(), seats[seat].clone());
            tasks.push(tokio::spawn(async move {
                let r =
                    post(http, SCHEDULE, &booking(&seat_id, 1, std::slice::from_ref(&reference)), Some(&token)).await;
                (reference, seat, r)
            }));
        }
    }
    let mut won_per_seat: BTreeMap<usize, usize> = BTreeMap::new();
    let mut won_per_person: HashMap<String, usize> = HashMap::new();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    for t in tasks {
        let (reference, seat, r) = t.await.unwrap();
        match r.status {
            200 => {
                *won_per_seat.entry(seat).or_default() += 1;
                *won_per_person.entry(reference).or_default() += 1;
            }
            409 => *codes.entry(r.error_code()).or_default() += 1,
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    assert_eq!(won_per_seat, BTreeMap::from([(0, 1), (1, 1), (2, 1), (3, 1)]), "each seat exactly once");
    assert!(won_per_person.values().all(|n| *n == 1), "a dose once per beneficiary: {won_per_person:?}");
    assert!(codes.keys().all(|c| c == "APPOIN0040" || c == "APPOIN0022"), "{codes:?}");
    assert_eq!(codes.values().sum::<usize>(), 12 * 4 - 4);
    for (d, seat) in districts.iter().zip(&seats) {
        let s = shown(&gw, *d, date, seat).await;
        assert_eq!((&s["available_capacity"], &s["available_capacity_dose1"]), (&Value::from(0), &Value::from(0)));
    }
}

/// The gateway reads the caller's appointment ids from their own records only, and refuses (502)
/// a list that spells the appointments key two ways rather than guess which one the registry means.
#[tokio::test]
async fn appointment_ids_are_read_from_the_callers_records_only() {
    let hostile = Hostile::start().await;
    let policy = |list: &str| {
        let gateway = format!(
            "citizens:\n  otp:\n{OUTBOX_POLICY}\n  subjects: {{upstream: bad, path: {list}, records: beneficiaries, owner: mobile_number, reference: beneficiary_reference_id, photo_id: photo_id_number, appointments: appointments, appointment_id: appointment_id}}\nupstreams:\n  bad: {{url: '{}'}}\n",
            hostile.url()
        );
        let routes = "routes:
  - {name: gen, methods: [POST], path: /api/v2/auth/public/generateOTP, access: public, handler: otp_generate}
  - {name: conf, methods: [POST], path: /api/v2/auth/public/confirmOTP, access: public, handler: otp_confirm}
  - name: slip
    methods: [GET]
    path: /api/v2/appointment/appointmentslip/download
    access: citizen
    upstream: bad
    personal: true
    redact: {citizen: none}
    ownership: {request: [{param: appointment_id, kind: appointment}]}
";
        policy_dir(&gateway, routes)
    };
    let slips =
        |hostile: &Hostile| -> Vec<String> { hostile.received().into_iter().filter(|t| t.starts_with(SLIP)).collect() };

    let dir = policy("/with-appointments");
    let gw = Gateway::serve(dir.path(), &[]);
    let http = gw.addr("http");
    let token = sign_in(http, &gw.data_path("otp-outbox.jsonl"), OWN).await;
    let upper = OWN_APPOINTMENT.to_ascii_uppercase();
    for (id, want) in [(THEIR_APPOINTMENT, 403), ("not-an-id", 400), (OWN_APPOINTMENT, 404), (upper.as_str(), 404)] {
        // 404: the hostile registry has no slip endpoint; the request reached it.
        let r = get_auth(http, &format!("{SLIP}?appointment_id={id}"), &token).await;
        assert_eq!(r.status, want, "{id}: {}", r.text());
    }
    assert_eq!(
        slips(&hostile),
        [format!("{SLIP}?appointment_id={OWN_APPOINTMENT}"), format!("{SLIP}?appointment_id={upper}")],
        "only the caller's own appointment was forwarded"
    );
    drop(gw);

    let dir = policy("/appointments-twice");
    let gw = Gateway::serve(dir.path(), &[]);
    let http = gw.addr("http");
    let token = sign_in(http, &gw.data_path("otp-outbox.jsonl"), OWN).await;
    let r = get_auth(http, &format!("{SLIP}?appointment_id={OWN_APPOINTMENT}"), &token).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(slips(&hostile).len(), 2, "nothing more was forwarded");
}
