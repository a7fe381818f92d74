//! Registry fidelity: CoWIN's session fields, one appointment per beneficiary and dose, reschedule,
//! cancel and the appointment slip, and seats that are never given twice.

use super::*;
use crate::demo::data::{Dataset, SessionKey};

const SCHEDULE: &str = "/api/v2/appointment/schedule";
const RESCHEDULE: &str = "/api/v2/appointment/reschedule";
const CANCEL: &str = "/api/v2/appointment/cancel";

fn book(session_id: &str, dose: u8, refs: &[String]) -> String {
    serde_json::json!({"dose": dose, "session_id": session_id, "slot": "11:00AM-01:00PM", "beneficiaries": refs})
        .to_string()
}

/// A session of `district` on `date` with at least `dose1` first-dose and `dose2` second-dose seats.
fn roomy(ds: &Dataset, district: u32, date: &str, dose1: u32, dose2: u32) -> Session {
    let date = Date::parse_dmy(date).unwrap();
    ds.centres(district, date)
        .into_iter()
        .flat_map(|c| c.sessions)
        .find(|s| s.available_capacity_dose1 >= dose1 && s.available_capacity_dose2 >= dose2)
        .expect("a roomy session")
}

/// The session as the registry shows it now (net of bookings).
async fn shown(reg: &Arc<Registry>, district: u32, date: &str, session_id: &str) -> Value {
    let uri = format!("/api/v2/appointment/sessions/public/findByDistrict?district_id={district}&date={date}");
    let v = get(reg, &uri, None).await.json();
    v["sessions"].as_array().unwrap().iter().find(|s| s["session_id"] == session_id).unwrap().clone()
}

async fn post(reg: &Arc<Registry>, uri: &str, body: &str) -> Answer {
    call(reg, Method::POST, uri, Some(&citizen(FIRST_MOBILE)), Some(body)).await
}

async fn my_appointments(reg: &Arc<Registry>, mobile: u64, reference: &str) -> Vec<Value> {
    let v = get(reg, "/api/v2/appointment/beneficiaries", Some(&citizen(mobile))).await.json();
    let b = v["beneficiaries"].as_array().unwrap().iter().find(|b| b["beneficiary_reference_id"] == reference);
    b.unwrap()["appointments"].as_array().unwrap().clone()
}

#[tokio::test]
async fn sessions_carry_cowins_fields() {
    let reg = registry(100);
    let v = get(&reg, "/api/v2/appointment/sessions/public/calendarByDistrict?district_id=9&date=01-06-2021", None)
        .await
        .json();
    let centres = v["centers"].as_array().unwrap();
    let mut upper_limits = 0;
    for c in centres {
        for key in ["center_id", "name", "address", "state_name", "district_name", "block_name", "pincode", "fee_type"]
        {
            assert!(!c[key].is_null(), "centre {key}");
        }
        assert_eq!(c["fee_type"] == "Paid", c["vaccine_fees"].is_array(), "vaccine_fees exactly at paid centres");
        for s in c["sessions"].as_array().unwrap() {
            let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} in {s}"));
            assert_eq!(n("available_capacity"), n("available_capacity_dose1") + n("available_capacity_dose2"));
            assert!([18, 45].contains(&n("min_age_limit")));
            assert!(s["allow_all_age"].is_boolean() && s["vaccine"].is_string() && s["date"].is_string());
            assert!(uuid::Uuid::parse_str(s["session_id"].as_str().unwrap()).is_ok());
            assert!(s["slots"].as_array().unwrap().iter().all(Value::is_string));
            if let Some(max) = s.get("max_age_limit") {
                assert_eq!((max, &s["allow_all_age"]), (&serde_json::json!(44), &Value::Bool(false)));
                upper_limits += 1;
            }
        }
    }
    // Over 7 days x 4 centres some 18-44 session exists.
    assert!(upper_limits > 0);
    let covaxin =
        "/api/v2/appointment/sessions/public/calendarByDistrict?district_id=9&date=01-06-2021&vaccine=COVAXIN";
    let v = get(&reg, covaxin, None).await.json();
    let filtered = v["centers"].as_array().unwrap();
    assert!(!filtered.is_empty() && filtered.len() <= centres.len());
    for c in filtered {
        let sessions = c["sessions"].as_array().unwrap();
        assert!(!sessions.is_empty() && sessions.iter().all(|s| s["vaccine"] == "COVAXIN"), "{c}");
    }
    let v = get(&reg, "/api/v2/appointment/sessions/public/findByDistrict?district_id=9&date=01-06-2021", None)
        .await
        .json();
    for s in v["sessions"].as_array().unwrap() {
        let fee = s["fee"].as_str().unwrap();
        assert_eq!(fee == "0", s["fee_type"] == "Free", "{s}");
        assert!(s["available_capacity_dose1"].is_u64() && s["available_capacity_dose2"].is_u64());
    }
}

#[tokio::test]
async fn one_appointment_per_beneficiary_and_dose_and_capacity_falls_per_dose() {
    let reg = registry(100);
    let ds = *reg.dataset();
    let s = roomy(&ds, 4, "05-06-2021", 5, 2);
    let sid = s.session_id.to_string();
    let (r0, r1) = (ds.beneficiary(0).reference_id_string(), ds.beneficiary(1).reference_id_string());
    let a = post(&reg, SCHEDULE, &book(&sid, 1, std::slice::from_ref(&r0))).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    let shown1 = shown(&reg, 4, "05-06-2021", &sid).await;
    assert_eq!(shown1["available_capacity_dose1"], s.available_capacity_dose1 - 1);
    assert_eq!(shown1["available_capacity_dose2"], s.available_capacity_dose2);
    assert_eq!(shown1["available_capacity"], s.available_capacity - 1);

    // The same beneficiary and dose again, alone or with someone else: 409 APPOIN0022, nothing taken.
    for refs in [vec![r0.clone()], vec![r1.clone(), r0.clone()]] {
        let again = post(&reg, SCHEDULE, &book(&sid, 1, &refs)).await;
        assert_eq!((again.status, again.error_code().as_str()), (StatusCode::CONFLICT, "APPOIN0022"));
    }
    assert_eq!(shown(&reg, 4, "05-06-2021", &sid).await["available_capacity"], s.available_capacity - 1);
    // The other dose, and the other beneficiary, may book; the dose may be a string, as some clients send it.
    let dose2 = book(&sid, 2, std::slice::from_ref(&r0)).replace("\"dose\":2", "\"dose\":\"2\"");
    assert_eq!(post(&reg, SCHEDULE, &dose2).await.status, StatusCode::OK);
    assert_eq!(post(&reg, SCHEDULE, &book(&sid, 1, &[r1])).await.status, StatusCode::OK);
    let now = shown(&reg, 4, "05-06-2021", &sid).await;
    assert_eq!(now["available_capacity_dose2"], s.available_capacity_dose2 - 1);
    assert_eq!(now["available_capacity"], s.available_capacity - 3);
    assert_eq!(my_appointments(&reg, ds.beneficiary(0).mobile, &r0).await.len(), 2);
    assert_eq!(reg.bookings().booked(s.key), 3);
}

#[tokio::test]
async fn a_generated_appointment_counts_and_can_be_cancelled() {
    let reg = registry(1_000);
    let ds = *reg.dataset();
    let b = (0..1_000).map(|i| ds.beneficiary(i)).find(|b| b.appointment.is_some()).unwrap();
    let appt = b.appointment.unwrap();
    assert_eq!(ds.index_of_generated_appointment(appt.appointment_id), Some(b.index));
    let next = b.index + 1;
    let expected = ds.beneficiary(next).appointment.map(|_| next);
    assert_eq!(ds.index_of_generated_appointment(ds.appointment_id_of(next)), expected);
    let forged = crate::demo::data::HexId(appt.appointment_id.0 ^ 1);
    assert_eq!(ds.index_of_generated_appointment(forged), None);
    let (reference, mobile) = (b.reference_id_string(), b.mobile);
    let shown = my_appointments(&reg, mobile, &reference).await;
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0]["appointment_id"], appt.appointment_id.to_string());
    let district = b.district_id;
    let s = roomy(&ds, district, "10-06-2021", 1, 3);
    let sid = s.session_id.to_string();
    let a = post(&reg, SCHEDULE, &book(&sid, 2, std::slice::from_ref(&reference))).await;
    assert_eq!((a.status, a.error_code().as_str()), (StatusCode::CONFLICT, "APPOIN0022"));

    let cancel =
        serde_json::json!({"appointment_id": appt.appointment_id.to_string(), "beneficiariesToCancel": [reference]});
    assert_eq!(post(&reg, CANCEL, &cancel.to_string()).await.status, StatusCode::NO_CONTENT);
    assert!(my_appointments(&reg, mobile, &reference).await.is_empty());
    let again = post(&reg, CANCEL, &cancel.to_string()).await;
    assert_eq!((again.status, again.error_code().as_str()), (StatusCode::BAD_REQUEST, "APPOIN0049"));
    assert_eq!(post(&reg, SCHEDULE, &book(&sid, 2, &[reference])).await.status, StatusCode::OK);
}

#[tokio::test]
async fn reschedule_moves_the_seats_and_cancel_gives_them_back() {
    let reg = registry(1_000);
    let ds = *reg.dataset();
    let mobile = (FIRST_MOBILE..).find(|m| ds.indices_of_mobile(*m).count() >= 2).unwrap();
    let refs: Vec<String> =
        ds.beneficiaries_of_mobile(mobile).iter().take(2).map(|b| b.reference_id_string()).collect();
    let from = roomy(&ds, 6, "07-06-2021", 5, 0);
    let to = roomy(&ds, 7, "08-06-2021", 5, 0);
    let a = post(&reg, SCHEDULE, &book(&from.session_id.to_string(), 1, &refs)).await;
    let id = a.json()["appointment_confirmation_no"].as_str().unwrap().to_owned();
    assert_eq!(reg.bookings().booked(from.key), 2);

    let move_to =
        |sid: &str, slot: &str| serde_json::json!({"appointment_id": id, "session_id": sid, "slot": slot}).to_string();
    let r = post(&reg, RESCHEDULE, &move_to(&to.session_id.to_string(), "03:00PM-05:00PM")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_eq!((reg.bookings().booked(from.key), reg.bookings().booked(to.key)), (0, 2));
    let shown = my_appointments(&reg, mobile, &refs[1]).await;
    assert_eq!(shown.len(), 1);
    assert_eq!(
        (&shown[0]["appointment_id"], &shown[0]["session_id"], &shown[0]["slot"]),
        (&Value::from(id.clone()), &Value::from(to.session_id.to_string()), &Value::from("03:00PM-05:00PM"))
    );
    // Into a session without two seats: 409 APPOIN0040, and nothing moves.
    let one = ds.capacity_one_session(6, Date::parse_dmy("07-06-2021").unwrap()).unwrap();
    let r = post(&reg, RESCHEDULE, &move_to(&ds.session_id(one).to_string(), "09:00AM-11:00AM")).await;
    assert_eq!((r.status, r.error_code().as_str()), (StatusCode::CONFLICT, "APPOIN0040"));
    assert_eq!((reg.bookings().booked(one), reg.bookings().booked(to.key)), (0, 2));
    for (body, code) in [
        (move_to("nope", "09:00AM-11:00AM"), "APPOIN0042"),
        (move_to(&to.session_id.to_string(), "noon"), "APPOIN0015"),
        (
            move_to(&to.session_id.to_string(), "09:00AM-11:00AM").replace(&id, &uuid::Uuid::new_v4().to_string()),
            "APPOIN0049",
        ),
    ] {
        let r = post(&reg, RESCHEDULE, &body).await;
        assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, code.to_owned()), "{body}");
    }

    let cancel = |refs: &[String]| serde_json::json!({"appointment_id": id, "beneficiariesToCancel": refs}).to_string();
    let stranger = ds.beneficiary(ds.indices_of_mobile(mobile).end).reference_id_string();
    let r = post(&reg, CANCEL, &cancel(&[stranger])).await;
    assert_eq!((r.status, r.error_code().as_str()), (StatusCode::BAD_REQUEST, "APPOIN0050"));
    assert_eq!(post(&reg, CANCEL, &cancel(&refs[..1])).await.status, StatusCode::NO_CONTENT);
    assert_eq!(reg.bookings().booked(to.key), 1);
    assert!(my_appointments(&reg, mobile, &refs[0]).await.is_empty());
    assert_eq!(my_appointments(&reg, mobile, &refs[1]).await.len(), 1);
    assert_eq!(post(&reg, CANCEL, &cancel(&refs[1..])).await.status, StatusCode::NO_CONTENT);
    assert_eq!(reg.bookings().booked(to.key), 0);
    let slip =
        get(&reg, &format!("/api/v2/appointment/appointmentslip/download?appointment_id={id}"), Some(&citizen(mobile)))
            .await;
    assert_eq!((slip.status, slip.error_code().as_str()), (StatusCode::BAD_REQUEST, "APPOIN0049"));
}

#[tokio::test]
async fn the_slip_is_a_pdf_naming_the_appointment() {
    let reg = registry(100);
    let ds = *reg.dataset();
    let b = ds.beneficiary(3);
    let s = roomy(&ds, 2, "02-06-2021", 1, 0);
    let a = post(&reg, SCHEDULE, &book(&s.session_id.to_string(), 1, &[b.reference_id_string()])).await;
    let id = a.json()["appointment_confirmation_no"].as_str().unwrap().to_owned();
    let uri = format!("/api/v2/appointment/appointmentslip/download?appointment_id={id}");
    let slip = get(&reg, &uri, Some(&citizen(b.mobile))).await;
    assert_eq!(slip.status, StatusCode::OK);
    assert_eq!(slip.headers["content-type"], "application/pdf");
    assert!(slip.body.starts_with(b"%PDF-1.4\n") && slip.body.ends_with(b"%%EOF\n"));
    let text = String::from_utf8_lossy(&slip.body);
    assert!(text.contains(&id) && text.contains(&b.name()) && text.contains("11:00AM-01:00PM"));
    assert_eq!(get(&reg, &uri, None).await.status, StatusCode::UNAUTHORIZED);
    let bad =
        get(&reg, "/api/v2/appointment/appointmentslip/download?appointment_id=x", Some(&citizen(b.mobile))).await;
    assert_eq!(bad.error_code(), "APPOIN0049");
    assert_eq!(call(&reg, Method::GET, RESCHEDULE, None, None).await.headers["allow"], "POST");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_double_bookings_and_reschedules_never_overcommit() {
    let reg = registry(1_000);
    let ds = *reg.dataset();
    // One beneficiary, 50 concurrent bookings of the same dose on a roomy session: one wins.
    let s = roomy(&ds, 3, "12-06-2021", 60, 0);
    let body = book(&s.session_id.to_string(), 1, &[ds.beneficiary(9).reference_id_string()]);
    let statuses = race(&reg, (0..50).map(|_| (SCHEDULE, body.clone())).collect()).await;
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT));
    assert_eq!(reg.bookings().booked(s.key), 1);

    // 30 appointments race to reschedule into the one seat of a capacity-1 session.
    let date = Date::parse_dmy("12-06-2021").unwrap();
    let one: SessionKey = ds.capacity_one_session(3, date).unwrap();
    let mut moves = Vec::new();
    for i in 100..130 {
        let a =
            post(&reg, SCHEDULE, &book(&s.session_id.to_string(), 1, &[ds.beneficiary(i).reference_id_string()])).await;
        let id = a.json()["appointment_confirmation_no"].as_str().unwrap().to_owned();
        let body = serde_json::json!({"appointment_id": id, "session_id": ds.session_id(one).to_string(), "slot": "09:00AM-11:00AM"});
        moves.push((RESCHEDULE, body.to_string()));
    }
    let statuses = race(&reg, moves).await;
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::NO_CONTENT).count(), 1, "{statuses:?}");
    assert_eq!((reg.bookings().booked(one), reg.bookings().booked(s.key)), (1, 30));
    let v = get(&reg, "/api/v2/appointment/sessions/public/calendarByDistrict?district_id=3&date=12-06-2021", None)
        .await
        .json();
    assert_eq!(v["centers"][0]["sessions"][0]["available_capacity"], 0);
    assert_eq!(v["centers"][0]["sessions"][0]["available_capacity_dose1"], 0);
}

async fn race(reg: &Arc<Registry>, calls: Vec<(&'static str, String)>) -> Vec<StatusCode> {
    let tasks: Vec<_> = calls
        .into_iter()
        .map(|(uri, body)| {
            let reg = reg.clone();
            tokio::spawn(async move { post(&reg, uri, &body).await.status })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}
