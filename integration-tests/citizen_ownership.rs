//! Issue 3: a citizen sees only records registered to their number, whatever they ask and
//! whatever the backend answers; a call that bypasses the gateway gets nothing.

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use crate::citizen_flow::{OUTBOX_POLICY, get_auth, post, sign_in};
use crate::harness::upstream::{Hostile, OWN, SPELLINGS};
use crate::harness::*;

#[tokio::test]
async fn a_citizen_cannot_reach_another_numbers_records_through_any_route() {
    let gw = Gateway::demo(&["--listen-plain", "127.0.0.1:0"]);
    let http = gw.addr("http");
    let token = sign_in(http, &gw.data_path("otp-outbox.jsonl"), "9000000001").await;
    let data = otpgate::demo::Dataset::new(1, 10_000);
    let mine = data.beneficiaries_of_mobile(9_000_000_001);
    let theirs = data.beneficiaries_of_mobile(9_000_000_002);
    assert!(!mine.is_empty() && !theirs.is_empty());
    let (my_ref, my_id) = (mine[0].reference_id_string(), mine[0].photo_id_string());
    let (their_ref, their_id) = (theirs[0].reference_id_string(), theirs[0].photo_id_string());
    let their_name = theirs[0].name();

    let mut answers = Vec::new();
    let search = "/api/v2/appointment/beneficiaries/search";
    for (query, want) in [
        ("mobile=9000000002".to_string(), 403),
        (format!("photo_id_number={their_id}"), 403),
        ("mob%69le=9000000002".to_string(), 403),
        ("MOBILE=9000000002".to_string(), 403),
        ("mobile[]=9000000002".to_string(), 403),
        ("mobile=%39000000002".to_string(), 403),
        ("mobile=9000000001&mobile=9000000002".to_string(), 400),
        ("mobile=9000000001&Mobile=9000000002".to_string(), 400),
        ("mobile=9000000001&photo_id_number=".to_string() + &their_id, 403),
        ("mobile=%2539000000002".to_string(), 400),
    ] {
        let r = get_auth(http, &format!("{search}?{query}"), &token).await;
        assert_eq!(r.status, want, "{query}: {}", r.text());
        answers.push(r);
    }
    let cert = format!("/api/v2/registration/certificate/public/download?beneficiary_reference_id={their_ref}");
    let r = get_auth(http, &cert, &token).await;
    assert_eq!((r.status, r.error_code().as_str()), (403, "GWY4032"));
    answers.push(r);

    let schedule = "/api/v2/appointment/schedule";
    let date = otpgate::demo::data::Date::parse_dmy("01-06-2021").unwrap();
    let session = data.capacity_one_session(1, date).unwrap();
    let session_id = data.session_id(session).to_string();
    for (body, want) in [
        (
            format!(
                r#"{{"dose":1,"session_id":"{session_id}","slot":"09:00AM-11:00AM","beneficiaries":["{their_ref}"]}}"#
            ),
            403,
        ),
        (
            format!(
                r#"{{"dose":1,"session_id":"{session_id}","slot":"09:00AM-11:00AM","beneficiaries":["{my_ref}","{their_ref}"]}}"#
            ),
            403,
        ),
        (format!(r#"{{"dose":1,"beneficiaries":["{my_ref}"],"beneficiaries":["{their_ref}"]}}"#), 400),
    ] {
        let r = post(http, schedule, &body, Some(&token)).await;
        assert_eq!(r.status, want, "{body}: {}", r.text());
        answers.push(r);
    }
    let form = Request::post(schedule)
        .header("host", "x")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(format!("beneficiaries={their_ref}"))))
        .unwrap();
    let r = h1(tcp(http).await, form).await;
    assert_eq!(r.status, 400, "a form body cannot smuggle a subject past the JSON check");
    answers.push(r);

    for r in &answers {
        let text = r.text();
        for secret in [their_ref.as_str(), their_id.as_str(), their_name.as_str(), "9000000002"] {
            assert!(!text.contains(secret), "leaked {secret} in {text}");
        }
    }

    // The caller's own lookups work and return only their records.
    for query in ["mobile=9000000001".to_string(), format!("photo_id_number={my_id}")] {
        let r = get_auth(http, &format!("{search}?{query}"), &token).await;
        assert_eq!(r.status, 200, "{query}");
        let list = r.json()["beneficiaries"].as_array().unwrap().clone();
        assert!(!list.is_empty() && list.iter().all(|b| b["mobile_number"] == "XXXXXX0001"));
    }
    let r = get_auth(
        http,
        &format!("/api/v2/registration/certificate/public/download?beneficiary_reference_id={my_ref}"),
        &token,
    )
    .await;
    assert_eq!(r.status, 200);
    let body =
        format!(r#"{{"dose":1,"session_id":"{session_id}","slot":"09:00AM-11:00AM","beneficiaries":["{my_ref}"]}}"#);
    let r = post(http, schedule, &body, Some(&token)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["appointment_confirmation_no"].is_string());
}

#[tokio::test]
async fn records_of_other_people_from_the_backend_are_dropped() {
    let hostile = Hostile::start().await;
    let gateway = format!(
        "profiles:\n  open: {{default: allow}}\ncitizens:\n  otp:\n{OUTBOX_POLICY}\n  subjects: {{upstream: bad, path: /api/v2/appointment/beneficiaries, records: beneficiaries, owner: mobile_number, reference: beneficiary_reference_id, photo_id: photo_id_number}}\nupstreams:\n  bad: {{url: '{}'}}\n",
        hostile.url()
    );
    let mut routes = String::from(
        "routes:
  - {name: gen, methods: [POST], path: /api/v2/auth/public/generateOTP, access: public, handler: otp_generate}
  - {name: conf, methods: [POST], path: /api/v2/auth/public/confirmOTP, access: public, handler: otp_confirm}
  - {name: cert, methods: [GET], path: /cert, access: citizen, upstream: bad, personal: true, redact: {citizen: none}, ownership: {request: [{param: ref, kind: beneficiary}]}}
",
    );
    for path in ["mixed", "foreign", "not-json", "gzip", "error"] {
        routes.push_str(&format!(
            "  - {{name: {path}, methods: [GET], path: /{path}, access: citizen, upstream: bad, personal: true, redact: {{citizen: open}}, ownership: {{response: {{records: beneficiaries, owner: mobile_number}}}}}}\n"
        ));
    }
    let dir = policy_dir(&gateway, &routes);
    let gw = Gateway::serve(dir.path(), &[]);
    let http = gw.addr("http");
    let token = sign_in(http, &gw.data_path("otp-outbox.jsonl"), OWN).await;

    let r = get_auth(http, "/mixed", &token).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let kept: Vec<&str> = v["beneficiaries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["beneficiary_reference_id"].as_str().unwrap())
        .collect();
    assert_eq!(kept, ["10000000000001", "10000000000005"], "foreign, owner-less and masked-owner records are dropped");
    assert_eq!(v["ttl"], 5, "the rest of the document is kept");
    assert!(!r.text().contains("9000000002"));

    let r = get_auth(http, "/foreign", &token).await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "GWY4042"), "nothing of theirs, and nothing left");
    for path in ["/not-json", "/gzip"] {
        let r = get_auth(http, path, &token).await;
        assert_eq!((r.status, r.error_code().as_str()), (502, "GWY5022"), "{path}: fail closed");
        assert!(!r.text().contains("9000000002"));
    }
    let r = get_auth(http, "/error", &token).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["errorCode"], "BENERR0001", "the upstream's code survives");
    assert!(
        !r.text().contains("9000000002") && !r.text().contains("Person"),
        "its personal text does not: {}",
        r.text()
    );

    // Request side against the backend's own list: only references it lists for the caller.
    assert_ne!(get_auth(http, "/cert?ref=10000000000001", &token).await.status, 403);
    assert_eq!(get_auth(http, "/cert?ref=10000000000002", &token).await.status, 403, "listed, but someone else's");
    assert_eq!(get_auth(http, "/cert?ref=10000000000003", &token).await.status, 403, "listed without an owner");
}

#[tokio::test]
async fn calls_that_bypass_the_gateway_get_nothing() {
    let gw = Gateway::demo(&["--listen-plain", "127.0.0.1:0"]);
    let registry = gw.addr("registry");
    for path in [
        "/api/v2/appointment/beneficiaries",
        "/api/v2/appointment/beneficiaries/search?mobile=9000000001",
        "/api/v2/registration/certificate/public/download?beneficiary_reference_id=12345678901234",
    ] {
        let r = get_h1(registry, path).await;
        assert_eq!(r.status, 401, "{path}");
        let forged_claims = otpgate::upstream::assertion::IdentityClaims::citizen("9000000001", 0, 0);
        let mut claims = forged_claims;
        claims.iat = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        claims.exp = claims.iat + 300;
        let forged =
            otpgate::upstream::assertion::sign_assertion(b"not-the-gateway-key-not-the-key!", &claims).unwrap();
        let req = Request::get(path)
            .header("host", "x")
            .header("x-otpgate-identity", forged)
            .body(Full::new(Bytes::new()))
            .unwrap();
        assert_eq!(h1(tcp(registry).await, req).await.status, 401, "{path}: forged assertion");
    }
    let token = sign_in(gw.addr("http"), &gw.data_path("otp-outbox.jsonl"), "9000000001").await;
    assert_eq!(get_auth(gw.addr("http"), "/api/v2/appointment/beneficiaries", &token).await.status, 200);
}

/// `otpgate audit query --record REF` on the gateway's own trail: the rows naming that record.
fn audit_rows_naming(gw: &Gateway, reference: &str) -> Vec<serde_json::Value> {
    let log = gw.data_path("audit.log");
    let out = std::process::Command::new(BIN)
        .args(["audit", "query", "--log"])
        .arg(&log)
        .arg("--keys-dir")
        .arg(gw.data_path("keys"))
        .args(["--record", reference, "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Issue 13, property 4: the redactor reads keys case-insensitively on their decoded form, so
/// the ownership filter must not read them any other way. A second spelling of the records key
/// or of the owner field is refused (502), an escaped spelling of the exact key is filtered as
/// that key, and the audit names only what was released.
#[tokio::test]
async fn another_spelling_of_the_records_key_or_the_owner_never_passes_unfiltered() {
    let hostile = Hostile::start().await;
    // The shipped citizen profile's shape: an allowlist under `beneficiaries[*]`, which the
    // redactor matches case-insensitively.
    let gateway = format!(
        "profiles:
  own:
    default: deny
    rules:
      - {{path: \"beneficiaries[*].beneficiary_reference_id\", action: keep}}
      - {{path: \"beneficiaries[*].name\", action: keep}}
      - {{path: \"beneficiaries[*].mobile_number\", action: mask, keep_last: 4, format: \"XXXXXX####\"}}
      - {{path: \"bookings[*].beneficiary_reference_id\", action: keep}}
      - {{path: \"bookings[*].name\", action: keep}}
      - {{path: ttl, action: keep}}
citizens:\n  otp:\n{OUTBOX_POLICY}\nupstreams:\n  bad: {{url: '{}'}}\n",
        hostile.url()
    );
    let routes = "routes:
  - {name: gen, methods: [POST], path: /api/v2/auth/public/generateOTP, access: public, handler: otp_generate}
  - {name: conf, methods: [POST], path: /api/v2/auth/public/confirmOTP, access: public, handler: otp_confirm}
  - {name: spelling, methods: [GET], path: '/spelling/{case}', access: citizen, upstream: bad, personal: true, redact: {citizen: own}, ownership: {response: {records: beneficiaries, owner: mobile_number}}}
  - {name: kelvin, methods: [GET], path: /kelvin, access: citizen, upstream: bad, personal: true, redact: {citizen: own}, ownership: {response: {records: bookings, owner: mobile_number}}}
";
    let dir = policy_dir(&gateway, routes);
    let gw = Gateway::serve(dir.path(), &[]);
    let http = gw.addr("http");
    let token = sign_in(http, &gw.data_path("otp-outbox.jsonl"), OWN).await;

    let mut cases: Vec<(String, bool)> =
        SPELLINGS.iter().map(|(c, _, refused)| (format!("/spelling/{c}"), *refused)).collect();
    cases.push(("/kelvin".into(), true));
    let mut released = 0;
    for (path, refused) in cases {
        let r = get_auth(http, &path, &token).await;
        let text = r.text();
        for secret in ["10000000000002", "Person 10000000000002", "9000000002"] {
            assert!(!text.contains(secret), "{path}: {secret} released: {text}");
        }
        if refused {
            assert_eq!((r.status, r.error_code().as_str()), (502, "GWY5022"), "{path}: fail closed: {text}");
        } else {
            assert_eq!(r.status, 200, "{path}: {text}");
            let v = r.json();
            let refs: Vec<&str> = v["beneficiaries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["beneficiary_reference_id"].as_str().unwrap())
                .collect();
            assert_eq!(refs, ["10000000000001"], "{path}: filtered as `beneficiaries`");
            assert_eq!(v["beneficiaries"][0]["mobile_number"], "XXXXXX0001", "{path}: then redacted");
            released += 1;
        }
    }
    assert_eq!(released, 1);

    // The audit names the one record released, and never the other person's.
    let own = audit_rows_naming(&gw, "10000000000001");
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!((own[0]["route"].as_str(), own[0]["decision"].as_str()), (Some("spelling"), Some("allow")));
    assert!(audit_rows_naming(&gw, "10000000000002").is_empty(), "the other person's record was never released");
}

/// Issue 13, property 10: a route parameter (`{name}`) that an ownership rule names is checked
/// like a query or body parameter — someone else's reference in the path is refused before
/// anything is forwarded — and counted by the limits keyed on it and in the audit record.
#[tokio::test]
async fn ownership_is_checked_on_path_parameters() {
    let hostile = Hostile::start().await;
    let gateway = format!(
        "profiles:\n  open: {{default: allow}}\ncitizens:\n  otp:\n{OUTBOX_POLICY}\n  subjects: {{upstream: bad, path: /api/v2/appointment/beneficiaries, records: beneficiaries, owner: mobile_number, reference: beneficiary_reference_id, photo_id: photo_id_number}}\nupstreams:\n  bad: {{url: '{}'}}\n",
        hostile.url()
    );
    let routes = "routes:
  - {name: gen, methods: [POST], path: /api/v2/auth/public/generateOTP, access: public, handler: otp_generate}
  - {name: conf, methods: [POST], path: /api/v2/auth/public/confirmOTP, access: public, handler: otp_confirm}
  - name: by-ref
    methods: [GET]
    path: /api/v2/x/{beneficiary_reference_id}
    access: citizen
    upstream: bad
    personal: true
    redact: {citizen: open}
    ownership: {request: [{param: beneficiary_reference_id, kind: beneficiary}]}
    limits: [{key: beneficiary, rate: [{limit: 2, per: 1h}]}]
  - name: pinned
    methods: [GET]
    path: /api/v2/y/{beneficiary_reference_id}/certificate
    access: citizen
    upstream: bad
    personal: true
    redact: {citizen: open}
    ownership: {request: [{param: '{beneficiary_reference_id}', kind: beneficiary}]}
";
    let dir = policy_dir(&gateway, routes);
    let (ok, _, stderr) = check_outbox_policy(dir.path());
    assert!(ok, "a rule on a parameter the path carries is valid: {stderr}");
    let gw = Gateway::serve(dir.path(), &[]);
    let http = gw.addr("http");
    let token = sign_in(http, &gw.data_path("otp-outbox.jsonl"), OWN).await;

    // Hostile's list: 01 and 05 are the caller's, 02 someone else's, 03 has no owner.
    for (path, want) in [
        ("/api/v2/x/10000000000002", (403, "GWY4032")),
        ("/api/v2/x/10000000000003", (403, "GWY4032")),
        ("/api/v2/x/99999999999999", (403, "GWY4032")),
        ("/api/v2/y/10000000000002/certificate", (403, "GWY4032")),
        ("/api/v2/x/abcdefghijklmn", (400, "GWY4003")),
        ("/api/v2/x/10000000000001?beneficiary_reference_id=10000000000001", (400, "GWY4003")),
        ("/api/v2/x/10000000000002?beneficiary_reference_id=10000000000001", (400, "GWY4003")),
        ("/api/v2/y/10000000000001/certificate?Beneficiary.Reference-Id=10000000000002", (400, "GWY4003")),
    ] {
        let r = get_auth(http, path, &token).await;
        assert_eq!((r.status, r.error_code().as_str()), want, "{path}: {}", r.text());
        assert!(!r.text().contains("10000000000002"), "{path}: {}", r.text());
    }
    let forwarded = |hostile: &Hostile| -> Vec<String> {
        hostile.received().into_iter().filter(|t| t.starts_with("/api/v2/x/") || t.starts_with("/api/v2/y/")).collect()
    };
    assert!(forwarded(&hostile).is_empty(), "nothing refused reached the upstream: {:?}", forwarded(&hostile));

    // The caller's own references pass, and the beneficiary limit counts the path's reference
    // (two per hour), not the route: the other own reference still passes.
    for (path, want) in [
        ("/api/v2/x/10000000000001", 200),
        ("/api/v2/x/10000000000001", 200),
        ("/api/v2/x/10000000000001", 429),
        ("/api/v2/x/10000000000005", 200),
        ("/api/v2/y/10000000000005/certificate", 200),
    ] {
        let r = get_auth(http, path, &token).await;
        assert_eq!(r.status, want, "{path}: {}", r.text());
        if want == 200 {
            assert_eq!(r.json()["certificate"], "issued");
        }
    }
    assert_eq!(
        forwarded(&hostile),
        [
            "/api/v2/x/10000000000001",
            "/api/v2/x/10000000000001",
            "/api/v2/x/10000000000005",
            "/api/v2/y/10000000000005/certificate"
        ]
    );

    // The audit records name the reference the path carried.
    let rows = audit_rows_naming(&gw, "10000000000001");
    let allowed: Vec<_> = rows.iter().filter(|r| r["decision"] == "allow" && r["route"] == "by-ref").collect();
    assert_eq!(allowed.len(), 2, "{rows:?}");
    assert_eq!(audit_rows_naming(&gw, "10000000000005").len(), 2);
    assert!(audit_rows_naming(&gw, "10000000000002").is_empty());
}

fn check_outbox_policy(dir: &std::path::Path) -> (bool, String, String) {
    check_policy(dir, &[std::ffi::OsStr::new("--insecure-otp-outbox")])
}

/// `otpgate check` refuses an ownership rule the route cannot carry to the check: a path
/// parameter its template does not have, or any rule on a route the gateway answers itself.
#[test]
fn check_refuses_an_ownership_rule_on_a_parameter_the_route_cannot_carry() {
    let gateway = format!(
        "profiles:\n  open: {{default: allow}}\ncitizens:\n  otp:\n{OUTBOX_POLICY}\n  subjects: {{upstream: bad, path: /s, records: beneficiaries, owner: mobile_number, reference: beneficiary_reference_id, photo_id: photo_id_number}}\nupstreams:\n  bad: {{url: 'http://127.0.0.1:1'}}\n"
    );
    let routes = "routes:
  - {name: ok-bare, methods: [GET], path: '/a/{beneficiary_reference_id}', access: citizen, upstream: bad, personal: true, redact: {citizen: open}, ownership: {request: [{param: beneficiary_reference_id, kind: beneficiary}]}}
  - {name: typo, methods: [GET], path: '/b/{beneficiary_reference_id}', access: citizen, upstream: bad, personal: true, redact: {citizen: open}, ownership: {request: [{param: mobile, kind: mobile}, {param: '{beneficiary_id}', kind: beneficiary}]}}
  - {name: no-params, methods: [POST], path: /c, access: citizen, upstream: bad, personal: true, redact: {citizen: open}, ownership: {request: [{param: '{mobile}', kind: mobile}]}}
  - {name: half-brace, methods: [GET], path: '/d/{ref}', access: citizen, upstream: bad, personal: true, redact: {citizen: open}, ownership: {request: [{param: '{ref', kind: beneficiary}]}}
  - {name: handled, methods: [GET], path: /e, access: citizen, handler: my_access_log, ownership: {request: [{param: mobile, kind: mobile}]}}
";
    let dir = policy_dir(&gateway, routes);
    let (ok, _, stderr) = check_outbox_policy(dir.path());
    assert!(!ok, "{stderr}");
    for want in [
        "routes.yaml: routes[1].ownership.request[1].param: `{beneficiary_id}` names a path parameter",
        "routes.yaml: routes[2].ownership.request[0].param: `{mobile}` names a path parameter",
        "routes.yaml: routes[3].ownership.request[0].param:",
        "routes.yaml: routes[4].ownership: the gateway answers this route itself",
    ] {
        assert!(stderr.contains(want), "missing `{want}` in:\n{stderr}");
    }
    assert!(stderr.contains("4 error(s)"), "routes[0] is valid: {stderr}");
}
