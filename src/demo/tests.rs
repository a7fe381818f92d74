//! Tests of the registry's HTTP behaviour through `Registry::handle`, the assertion, the PDF, the
//! export stream and `serve` on a real socket.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use serde_json::Value;

use super::data::{Date, FIRST_MOBILE, Session};
use super::*;

mod appointments;

const KEY: &[u8] = b"registry-test-key";

fn now() -> u64 {
    crate::clock::system_now_ms() / 1000
}

fn registry(n: u64) -> Arc<Registry> {
    Registry::new(RegistryConfig { seed: 7, beneficiaries: n, identity_key: Some(KEY.to_vec()) })
}

fn citizen(mobile: u64) -> String {
    sign_assertion(KEY, &IdentityClaims::citizen(&mobile.to_string(), now(), 60)).unwrap()
}

fn partner() -> String {
    sign_assertion(KEY, &IdentityClaims::partner("icmr", vec!["beneficiaries:export".into()], now(), 60)).unwrap()
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn error_code(&self) -> String {
        self.json()["errorCode"].as_str().unwrap().to_owned()
    }
}

async fn call(reg: &Arc<Registry>, method: Method, uri: &str, token: Option<&str>, body: Option<&str>) -> Answer {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        b = b.header(IDENTITY_HEADER, t);
    }
    let resp = match body {
        Some(body) => reg.handle(b.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await,
        None => reg.handle(b.body(Empty::<Bytes>::new()).unwrap()).await,
    };
    let (parts, body) = resp.into_parts();
    Answer { status: parts.status, headers: parts.headers, body: body.collect().await.unwrap().to_bytes() }
}

async fn get(reg: &Arc<Registry>, uri: &str, token: Option<&str>) -> Answer {
    call(reg, Method::GET, uri, token, None).await
}

#[test]
fn assertion_sign_verify_and_rejections() {
    let t = now();
    let good = IdentityClaims::citizen("9000000001", t, 60);
    let token = sign_assertion(KEY, &good).unwrap();
    assert_eq!(verify_assertion(KEY, &token).unwrap(), good);
    assert!(verify_assertion(b"another-key", &token).is_err(), "wrong key");
    let expired = IdentityClaims { exp: t - 60, iat: t - 120, ..good.clone() };
    assert!(verify_assertion(KEY, &sign_assertion(KEY, &expired).unwrap()).is_err(), "expired");
    let in_leeway = IdentityClaims { exp: t - 2, ..good.clone() };
    assert!(verify_assertion(KEY, &sign_assertion(KEY, &in_leeway).unwrap()).is_ok(), "leeway");
    let aud = IdentityClaims { aud: "someone-else".into(), ..good.clone() };
    assert!(verify_assertion(KEY, &sign_assertion(KEY, &aud).unwrap()).is_err(), "wrong aud");
    let iss = IdentityClaims { iss: "evil".into(), ..good.clone() };
    assert!(verify_assertion(KEY, &sign_assertion(KEY, &iss).unwrap()).is_err(), "wrong iss");
    let hs384 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS384),
        &good,
        &jsonwebtoken::EncodingKey::from_secret(KEY),
    )
    .unwrap();
    assert!(verify_assertion(KEY, &hs384).is_err(), "only HS256");
    assert!(verify_assertion(KEY, "not.a.jwt").is_err());
}

#[tokio::test]
async fn locations() {
    let reg = registry(100);
    let a = get(&reg, "/api/v2/admin/location/states", None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers["content-type"], "application/json");
    let v = a.json();
    assert_eq!(v["states"].as_array().unwrap().len(), 36);
    assert_eq!(v["states"][0], serde_json::json!({"state_id": 1, "state_name": "Andaman and Nicobar Islands"}));
    assert_eq!(v["ttl"], 24);
    let d = get(&reg, "/api/v2/admin/location/districts/1", None).await.json();
    assert_eq!(d["districts"][0]["district_id"], 1);
    for bad in ["/api/v2/admin/location/districts/99", "/api/v2/admin/location/districts/x"] {
        let a = get(&reg, bad, None).await;
        assert_eq!((a.status, a.error_code().as_str()), (StatusCode::BAD_REQUEST, "APPOIN0047"));
    }
}

#[tokio::test]
async fn sessions_public_and_private() {
    let reg = registry(100);
    let v = get(&reg, "/api/v2/appointment/sessions/public/calendarByDistrict?district_id=1&date=01-06-2021", None)
        .await
        .json();
    let centres = v["centers"].as_array().unwrap();
    assert_eq!(centres.len(), 4);
    assert_eq!(centres[0]["sessions"][0]["available_capacity"], 1);
    assert_eq!(centres[0]["sessions"][0]["date"], "01-06-2021");
    let dates: std::collections::HashSet<_> =
        centres[0]["sessions"].as_array().unwrap().iter().map(|s| s["date"].as_str().unwrap().to_owned()).collect();
    assert_eq!(dates.len(), 7);

    let pin = centres[2]["pincode"].as_u64().unwrap();
    let found =
        get(&reg, &format!("/api/v2/appointment/sessions/public/findByPin?pincode={pin}&date=02-06-2021"), None)
            .await
            .json();
    let sessions = found["sessions"].as_array().unwrap();
    assert!(!sessions.is_empty());
    assert!(sessions.iter().all(|s| s["pincode"] == pin && s["date"] == "02-06-2021" && s["slots"].is_array()));

    let bad_date =
        get(&reg, "/api/v2/appointment/sessions/public/findByDistrict?district_id=1&date=2021-06-01", None).await;
    assert_eq!((bad_date.status, bad_date.error_code().as_str()), (StatusCode::BAD_REQUEST, "APPOIN0044"));
    let no_district = get(&reg, "/api/v2/appointment/sessions/public/findByDistrict?date=01-06-2021", None).await;
    assert_eq!(no_district.error_code(), "APPOIN0045");

    let private = "/api/v2/appointment/sessions/calendarByPin?pincode=110260&date=01-06-2021";
    let a = get(&reg, private, None).await;
    assert_eq!((a.status, a.error_code().as_str()), (StatusCode::UNAUTHORIZED, "REGAUT0001"));
    assert_eq!(get(&reg, private, Some(&citizen(FIRST_MOBILE))).await.status, StatusCode::OK);
    assert_eq!(get(&reg, private, Some(&partner())).await.status, StatusCode::OK);
}

#[tokio::test]
async fn beneficiaries_and_naive_lookups() {
    let reg = registry(1_000);
    let ds = *reg.dataset();
    let mobile = FIRST_MOBILE + 5;
    let mine = get(&reg, "/api/v2/appointment/beneficiaries", Some(&citizen(mobile))).await;
    assert_eq!(mine.status, StatusCode::OK);
    let list = mine.json()["beneficiaries"].as_array().unwrap().clone();
    assert_eq!(list.len(), ds.indices_of_mobile(mobile).count());
    let mobile_str = mobile.to_string();
    assert!(list.iter().all(|b| b["mobile_number"] == mobile_str.as_str()));
    let wrong_kind = get(&reg, "/api/v2/appointment/beneficiaries", Some(&partner())).await;
    assert_eq!((wrong_kind.status, wrong_kind.error_code().as_str()), (StatusCode::FORBIDDEN, "REGAUT0002"));
    let nobody = get(&reg, "/api/v2/appointment/beneficiaries", Some(&citizen(9_100_000_000))).await;
    assert_eq!(nobody.json()["beneficiaries"], serde_json::json!([]));

    // The leak: a citizen token for one mobile reads another mobile's records.
    let other = FIRST_MOBILE + 20;
    let a =
        get(&reg, &format!("/api/v2/appointment/beneficiaries/search?mobile={other}"), Some(&citizen(mobile))).await;
    assert_eq!(a.json()["beneficiaries"][0]["mobile_number"], other.to_string());
    let pid = ds.beneficiary(3).photo_id_string();
    let a =
        get(&reg, &format!("/api/v2/appointment/beneficiaries/search?photo_id_number={pid}"), Some(&citizen(mobile)))
            .await;
    assert_eq!(a.json()["beneficiaries"].as_array().unwrap().len(), 1);
    let a = get(&reg, "/api/v2/appointment/beneficiaries/search?mobile=9100000000", Some(&citizen(mobile))).await;
    assert_eq!((a.status, a.error_code().as_str()), (StatusCode::NOT_FOUND, "BENSRC0002"));
    let a = get(&reg, "/api/v2/appointment/beneficiaries/search?mobile=12", Some(&citizen(mobile))).await;
    assert_eq!((a.status, a.error_code().as_str()), (StatusCode::BAD_REQUEST, "BENSRC0001"));

    let uri = "/api/v2/partner/beneficiaries/search";
    let body = format!("{{\"photo_id_number\":\"{pid}\"}}");
    let a = call(&reg, Method::POST, uri, Some(&partner()), Some(&body)).await;
    assert_eq!(a.json()["beneficiaries"][0]["photo_id_number"], pid);
    let a = call(&reg, Method::POST, uri, Some(&partner()), Some("{\"mobile\":\"9000000001\"}")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(call(&reg, Method::POST, uri, Some(&partner()), Some("{oops")).await.error_code(), "GENERR0400");
    assert_eq!(call(&reg, Method::POST, uri, Some(&citizen(mobile)), Some(&body)).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn no_key_means_every_protected_endpoint_is_401() {
    let reg = Registry::new(RegistryConfig::default());
    let a = get(&reg, "/api/v2/appointment/beneficiaries", Some(&citizen(FIRST_MOBILE))).await;
    assert_eq!((a.status, a.error_code().as_str()), (StatusCode::UNAUTHORIZED, "REGAUT0001"));
    assert_eq!(get(&reg, "/api/v2/admin/location/states", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_path_and_wrong_method() {
    let reg = registry(10);
    let a = get(&reg, "/api/v2/nothing/here", None).await;
    assert_eq!((a.status, a.error_code().as_str()), (StatusCode::NOT_FOUND, "GENERR0404"));
    let a = call(&reg, Method::POST, "/api/v2/admin/location/states", None, Some("{}")).await;
    assert_eq!((a.status, a.error_code().as_str()), (StatusCode::METHOD_NOT_ALLOWED, "GENERR0405"));
    assert_eq!(a.headers["allow"], "GET");
    assert_eq!(get(&reg, "/api/v2/appointment/schedule", None).await.headers["allow"], "POST");
}

fn schedule_body(session_id: &str, refs: &[String]) -> String {
    serde_json::json!({"dose": 1, "session_id": session_id, "slot": "09:00AM-11:00AM", "beneficiaries": refs})
        .to_string()
}

#[tokio::test]
async fn schedule_books_and_reflects_capacity() {
    let reg = registry(100);
    let ds = *reg.dataset();
    let date = Date::parse_dmy("03-06-2021").unwrap();
    let session = ds.centres(2, date)[1].sessions[0].clone();
    let sid = session.session_id.to_string();
    let refs = vec![ds.beneficiary(0).reference_id_string(), ds.beneficiary(1).reference_id_string()];
    let token = citizen(FIRST_MOBILE);
    let uri = "/api/v2/appointment/schedule";
    let a = call(&reg, Method::POST, uri, Some(&token), Some(&schedule_body(&sid, &refs))).await;
    if session.available_capacity >= 2 {
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
        assert!(uuid::Uuid::parse_str(a.json()["appointment_confirmation_no"].as_str().unwrap()).is_ok());
        let v = get(&reg, "/api/v2/appointment/sessions/public/findByDistrict?district_id=2&date=03-06-2021", None)
            .await
            .json();
        let shown = v["sessions"].as_array().unwrap().iter().find(|s| s["session_id"] == sid.as_str()).unwrap().clone();
        assert_eq!(shown["available_capacity"], session.available_capacity - 2);
    } else {
        assert_eq!(a.error_code(), "APPOIN0040");
    }
    let cases = [
        (schedule_body("00000000-0000-0000-0000-000000000000", &refs), "APPOIN0042"),
        (schedule_body(&sid, &["12345678901234".to_owned()]), "APPOIN0048"),
        (schedule_body(&sid, &[]), "APPOIN0041"),
        (schedule_body(&sid, &[refs[0].clone(), refs[0].clone()]), "APPOIN0041"),
        (schedule_body(&sid, &refs).replace("09:00AM-11:00AM", "midnight"), "APPOIN0015"),
        ("[1,2]".to_owned(), "GENERR0400"),
    ];
    for (body, code) in cases {
        let a = call(&reg, Method::POST, uri, Some(&token), Some(&body)).await;
        assert_eq!((a.status, a.error_code()), (StatusCode::BAD_REQUEST, code.to_owned()), "{body}");
    }
    let a = call(&reg, Method::POST, uri, None, Some(&schedule_body(&sid, &refs))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schedule_race_gives_the_capacity_one_seat_once() {
    let reg = registry(1_000);
    let ds = *reg.dataset();
    let date = Date::parse_dmy("15-07-2021").unwrap();
    let key = ds.capacity_one_session(5, date).unwrap();
    let sid = ds.session_id(key).to_string();
    let mut tasks = Vec::new();
    for i in 0..100u64 {
        let (reg, sid) = (reg.clone(), sid.clone());
        let body = schedule_body(&sid, &[ds.beneficiary(i).reference_id_string()]);
        tasks.push(tokio::spawn(async move {
            let a = call(&reg, Method::POST, "/api/v2/appointment/schedule", Some(&citizen(FIRST_MOBILE)), Some(&body))
                .await;
            (a.status, a.body)
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::CONFLICT => assert!(String::from_utf8_lossy(&body).contains("APPOIN0040")),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(reg.bookings().booked(key), 1);
    let v = get(&reg, "/api/v2/appointment/sessions/public/calendarByDistrict?district_id=5&date=15-07-2021", None)
        .await
        .json();
    assert_eq!(v["centers"][0]["sessions"][0]["available_capacity"], 0);
}

#[tokio::test]
async fn certificate_is_a_well_formed_pdf() {
    let reg = registry(50);
    let b = reg.dataset().beneficiary(7);
    let uri = format!("/api/v2/registration/certificate/public/download?beneficiary_reference_id={}", b.reference_id);
    let a = get(&reg, &uri, Some(&citizen(b.mobile))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers["content-type"], "application/pdf");
    let pdf = &a.body[..];
    assert!(pdf.starts_with(b"%PDF-1.4\n"));
    assert!(pdf.ends_with(b"%%EOF\n"));
    let text = String::from_utf8_lossy(pdf);
    assert!(text.contains(&b.reference_id.to_string()) && text.contains(&b.name()));
    let startxref: usize = text.rsplit("startxref\n").next().unwrap().lines().next().unwrap().parse().unwrap();
    assert!(pdf[startxref..].starts_with(b"xref\n0 6\n"));
    let table = String::from_utf8_lossy(&pdf[startxref..]);
    let entries: Vec<&str> = table.lines().skip(3).take(5).collect();
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.len(), 19, "{e:?}"); // 20 bytes with the "\n"
        let off: usize = e[..10].parse().unwrap();
        assert!(pdf[off..].starts_with(format!("{} 0 obj", i + 1).as_bytes()), "object {}", i + 1);
    }
    let missing =
        get(&reg, "/api/v2/registration/certificate/public/download?beneficiary_reference_id=1", Some(&partner()))
            .await;
    assert_eq!((missing.status, missing.error_code().as_str()), (StatusCode::NOT_FOUND, "CRTDWN0001"));
}

#[tokio::test]
async fn export_streams_valid_json_in_chunks() {
    let n = 4_321;
    let reg = registry(n);
    let ds = *reg.dataset();
    let resp = reg
        .handle(
            Request::get("/api/v2/partner/beneficiaries/export?district_id=0")
                .header(IDENTITY_HEADER, partner())
                .body(Empty::<Bytes>::new())
                .unwrap(),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let (mut all, mut frames) = (Vec::new(), 0);
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        assert!(data.len() <= CHUNK_BYTES + 4096);
        all.extend_from_slice(&data);
        frames += 1;
    }
    assert!(frames > 10, "{frames}");
    let v: Value = serde_json::from_slice(&all).unwrap();
    let list = v["beneficiaries"].as_array().unwrap();
    assert_eq!(list.len() as u64, n);
    assert_eq!(list[17], serde_json::to_value(ds.beneficiary(17)).unwrap());

    let district = ds.beneficiary(0).district_id;
    let expected = (0..n).filter(|&i| ds.beneficiary(i).district_id == district).count();
    let a = get(&reg, &format!("/api/v2/partner/beneficiaries/export?district_id={district}"), Some(&partner())).await;
    let list = a.json()["beneficiaries"].as_array().unwrap().clone();
    assert_eq!(list.len(), expected);
    assert!(list.iter().all(|b| b["district_id"] == district));

    let empty = registry(0);
    let a = get(&empty, "/api/v2/partner/beneficiaries/export?district_id=0", Some(&partner())).await;
    assert_eq!(a.json(), serde_json::json!({"beneficiaries": []}));
    let a = get(&reg, "/api/v2/partner/beneficiaries/export?district_id=9999", Some(&partner())).await;
    assert_eq!(a.error_code(), "APPOIN0045");
    let a = get(&reg, "/api/v2/partner/beneficiaries/export?district_id=0", Some(&citizen(FIRST_MOBILE))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn serve_answers_http1_and_http2_then_shuts_down() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, registry(100), async {
        let _ = stopped.await;
    }));

    let io = hyper_util::rt::TokioIo::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    let (mut h1, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let req =
        Request::get("/api/v2/admin/location/states").header("host", "registry").body(Empty::<Bytes>::new()).unwrap();
    let resp = h1.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(v["states"].as_array().unwrap().len(), 36);
    let req = Request::get("/api/v2/partner/beneficiaries/export?district_id=0").body(Empty::<Bytes>::new()).unwrap();
    assert_eq!(h1.send_request(req).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    drop(h1);

    let io = hyper_util::rt::TokioIo::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    let (mut h2, conn) = hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await.unwrap();
    tokio::spawn(conn);
    let req = Request::get(format!("http://{addr}/api/v2/appointment/beneficiaries"))
        .header(IDENTITY_HEADER, citizen(FIRST_MOBILE))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = h2.send_request(req).await.unwrap();
    assert_eq!((resp.status(), resp.version()), (StatusCode::OK, http::Version::HTTP_2));
    drop(h2);

    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), server).await.unwrap().unwrap().unwrap();
}
