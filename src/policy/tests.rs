use super::*;
use crate::config::Sources;

const UPSTREAM: &str = "upstreams:\n  reg: {url: 'http://127.0.0.1:8000'}\n";

fn load_files(files: &[(&str, &str)]) -> Result<Policy, Vec<ConfigError>> {
    let s = Sources { files: files.iter().map(|(n, c)| (n.to_string(), c.to_string())).collect(), base: None };
    load(&s, &Vec::new(), &[0; 32])
}

fn route(name: &str, path: &str, extra: &str) -> String {
    format!("  - name: {name}\n    methods: [GET]\n    path: {path}\n    access: public\n    upstream: reg\n{extra}")
}

#[test]
fn shipped_policy_compiles() {
    let p = load(&Sources::embedded(), &Vec::new(), &[0; 32]).expect("shipped policy is valid");
    assert_eq!(p.limits.max_headers, 100);
    assert_eq!(p.limits.citizen_body, 64 << 10);
    assert_eq!(p.timeouts.route, Duration::from_secs(15));
    let export = p.routes.iter().find(|r| r.name == "partner-export").unwrap();
    assert_eq!(export.body_limit, 1 << 20, "partner routes get the partner body limit");
    assert_eq!(export.timeout, Duration::from_secs(60));
    assert!(p.routes.iter().filter(|r| r.personal).all(|r| !matches!(r.access, Access::Public)));
}

#[test]
fn every_semantic_error_is_reported_with_its_path() {
    let routes = format!(
        "routes:\n{}{}{}{}{}",
        route("a", "/x/{id}", ""),
        route("a", "/y", ""),
        route("c", "/x/{other}", ""),
        "  - name: d\n    methods: [FETCH, GET, GET]\n    path: /z/../w\n    access: public\n    upstream: nope\n    personal: true\n",
        route("e", "relative", ""),
    );
    let gateway = "gateway:\n  limits: {max_headers: 0}\n  trusted_proxies: ['10.0.0.1/8', 'fe80::/10']\n  timeouts: {route: 0s}\n";
    let errors = load_files(&[("g.yaml", gateway), ("r.yaml", &format!("{UPSTREAM}{routes}"))]).unwrap_err();
    let got: Vec<String> = errors.iter().map(|e| format!("{}:{}", e.file, e.path)).collect();
    for want in [
        "g.yaml:gateway.limits.max_headers",
        "g.yaml:gateway.trusted_proxies[0]",
        "g.yaml:gateway.timeouts.route",
        "r.yaml:routes[1].name",
        "r.yaml:routes[2].path",
        "r.yaml:routes[3].methods[0]",
        "r.yaml:routes[3].methods[2]",
        "r.yaml:routes[3].path",
        "r.yaml:routes[3].upstream",
        "r.yaml:routes[3].personal",
        "r.yaml:routes[4].path",
    ] {
        assert!(got.contains(&want.to_string()), "missing {want} in {got:#?}");
    }
    assert_eq!(errors.len(), 11, "{got:#?}");
}

#[test]
fn upstream_urls_are_checked_and_overridable() {
    for bad in ["ftp://x", "http://h/prefix", "http://u:p@h", "http://h/?q=1", "nope"] {
        let f = format!("upstreams:\n  reg: {{url: '{bad}'}}\nroutes:\n{}", route("a", "/a", ""));
        let errors = load_files(&[("p.yaml", &f)]).unwrap_err();
        assert_eq!(errors[0].path, "upstreams.reg.url", "{bad}");
    }
    let f = format!("{UPSTREAM}routes:\n{}", route("a", "/a", ""));
    let s = Sources { files: vec![("p.yaml".into(), f)], base: None };
    let p = load(&s, &vec![("reg".into(), "http://127.0.0.1:9".into())], &[0; 32]).unwrap();
    assert_eq!(p.upstreams[0].authority.as_str(), "127.0.0.1:9");
    let errors = load(&s, &vec![("other".into(), "http://127.0.0.1:9".into())], &[0; 32]).unwrap_err();
    assert!(errors[0].message.contains("other"));
}

#[test]
fn routes_match_with_parameters_and_methods() {
    let f = format!(
        "{UPSTREAM}routes:\n{}{}",
        route("districts", "/api/v2/admin/location/districts/{state_id}", ""),
        "  - name: sched\n    methods: [POST]\n    path: /api/v2/appointment/schedule\n    access: citizen\n    upstream: reg\n",
    );
    let p = load_files(&[("c.yaml", "citizens: {}\n"), ("p.yaml", &f)]).unwrap();
    let segs = ["api", "v2", "admin", "location", "districts", "7"];
    assert_eq!(p.route_for(&segs, &Method::GET), Match::Found(0, vec!["7"]));
    let segs = ["api", "v2", "appointment", "schedule"];
    assert_eq!(p.route_for(&segs, &Method::GET), Match::MethodNotAllowed(vec![Method::POST]));
    assert_eq!(p.route_for(&["nope"], &Method::GET), Match::NotFound);
}

#[test]
fn citizen_rules_are_validated_with_paths() {
    let citizens = "citizens:\n  otp:\n    validity: 11m\n    max_attempts: 0\n    delivery: {outbox: {path: o}, webhook: {url: 'http://x'}}\n  session:\n    leeway: 31s\n";
    let routes = format!(
        "{UPSTREAM}routes:
  - {{name: a, methods: [GET], path: /a, access: citizen, upstream: reg, personal: true}}
  - {{name: b, methods: [GET], path: /b, access: public, upstream: reg, ownership: {{response: {{records: r, owner: o}}}}}}
  - {{name: c, methods: [GET], path: /c, access: citizen, upstream: reg, ownership: {{request: [{{param: 'mo bile', kind: mobile}}]}}}}
  - {{name: d, methods: [POST], path: /d, access: public, upstream: reg, handler: otp_generate}}
  - {{name: e, methods: [POST], path: /e, access: public, handler: logout}}
  - {{name: f, methods: [GET], path: /f, access: citizen, upstream: reg, ownership: {{request: [{{param: ref, kind: beneficiary}}]}}}}
"
    );
    let errors = load_files(&[("c.yaml", citizens), ("r.yaml", &routes)]).unwrap_err();
    let got: Vec<String> = errors.iter().map(|e| format!("{}:{}", e.file, e.path)).collect();
    for want in [
        "c.yaml:citizens.otp.validity",
        "c.yaml:citizens.otp.max_attempts",
        "c.yaml:citizens.otp.delivery",
        "c.yaml:citizens.session.leeway",
        "r.yaml:routes[0].ownership",
        "r.yaml:routes[1].ownership",
        "r.yaml:routes[2].ownership.request[0].param",
        "r.yaml:routes[3].upstream",
        "r.yaml:routes[4].access",
    ] {
        assert!(got.contains(&want.to_string()), "missing {want} in {got:#?}");
    }

    // Valid citizens, but ID/beneficiary rules without a subject source.
    let ok_citizens = "citizens: {}\n";
    let errors = load_files(&[("c.yaml", ok_citizens), ("r.yaml", &routes)]).unwrap_err();
    let got: Vec<String> = errors.iter().map(|e| format!("{}:{}", e.file, e.path)).collect();
    assert!(got.contains(&"r.yaml:routes[5].ownership".to_string()), "{got:#?}");
}

#[test]
fn appointment_rules_need_the_records_appointments() {
    let subjects = |extra: &str| {
        format!(
            "citizens:\n  subjects: {{upstream: reg, path: /b, records: beneficiaries, owner: mobile_number, reference: beneficiary_reference_id, photo_id: photo_id_number{extra}}}\n"
        )
    };
    let routes = format!(
        "{UPSTREAM}routes:
  - {{name: slip, methods: [GET], path: /slip, access: citizen, upstream: reg, ownership: {{request: [{{param: appointment_id, kind: appointment}}]}}}}
"
    );
    let errors = load_files(&[("c.yaml", &subjects("")), ("r.yaml", &routes)]).unwrap_err();
    let got: Vec<String> = errors.iter().map(|e| format!("{}:{}", e.file, e.path)).collect();
    assert_eq!(got, ["r.yaml:routes[0].ownership"]);
    let half = load_files(&[("c.yaml", &subjects(", appointments: appointments")), ("r.yaml", &routes)]).unwrap_err();
    assert!(half.iter().any(|e| e.path == "citizens.subjects.appointments"), "{half:#?}");
    let whole = subjects(", appointments: appointments, appointment_id: appointment_id");
    let p = load_files(&[("c.yaml", &whole), ("r.yaml", &routes)]).expect("valid");
    let source = p.citizens.as_ref().and_then(|c| c.subjects.as_ref()).unwrap();
    assert_eq!(source.appointments, Some(("appointments".to_string(), "appointment_id".to_string())));
}

#[test]
fn streaming_is_for_partner_routes_with_a_json_profile() {
    let shipped = load(&Sources::embedded(), &Vec::new(), &[0; 32]).expect("shipped policy is valid");
    let streamed: Vec<&str> = shipped
        .routes
        .iter()
        .filter(|r| matches!(&r.access, Access::Partner(p) if p.stream))
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(streamed, ["partner-export"], "only the bulk export streams; searches are itemised");
    let profiles = "profiles:\n  p: {default: allow}\n";
    for (extra, ok) in [
        (
            "    access: partner\n    scopes: [s]\n    personal: true\n    redact: {partner: p}\n    stream: true\n",
            true,
        ),
        (
            "    access: partner\n    scopes: [s]\n    personal: true\n    redact: {partner: none}\n    stream: true\n",
            false,
        ),
        ("    access: citizen\n    personal: true\n    redact: {citizen: p}\n    stream: true\n", false),
    ] {
        let routes = format!("routes:\n  - name: x\n    methods: [GET]\n    path: /x\n    upstream: reg\n{extra}");
        let result = load_files(&[("p.yaml", profiles), ("r.yaml", &format!("{UPSTREAM}{routes}"))]);
        match (ok, result) {
            (true, r) => assert!(r.is_ok(), "{extra}: {:?}", r.err()),
            (false, Ok(_)) => panic!("{extra}: accepted"),
            (false, Err(errors)) => {
                assert!(errors.iter().any(|e| e.path.ends_with("stream")), "{extra}: {errors:?}");
            }
        }
    }
}

#[test]
fn subject_identities_need_a_single_partner_ca() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ca_a, ca_b) = (crate::devcerts::ensure(a.path()).unwrap().ca, crate::devcerts::ensure(b.path()).unwrap().ca);
    let partners = |cas: &[&std::path::Path]| {
        let list: Vec<String> = cas.iter().map(|p| format!("'{}'", p.display())).collect();
        format!(
            "partners:\n  ca: [{}]\n  clients:\n    x: {{certificate: {{subject: 'CN=x'}}, api_key_sha256: '{}', source: ['127.0.0.1/32'], scopes: [s]}}\n",
            list.join(", "),
            "ab".repeat(32)
        )
    };
    let routes = format!("{UPSTREAM}routes:\n{}", route("a", "/a", ""));
    let one = load_files(&[("p.yaml", &partners(&[&ca_a])), ("r.yaml", &routes)]);
    assert!(one.is_ok(), "{:?}", one.err());
    let errors = load_files(&[("p.yaml", &partners(&[&ca_a, &ca_b])), ("r.yaml", &routes)]).unwrap_err();
    assert!(errors.iter().any(|e| e.path.ends_with("clients.x.certificate.subject")), "{errors:?}");
}

#[test]
fn a_waiting_room_is_checked_and_shipped_on_schedule() {
    let shipped = load(&Sources::embedded(), &Vec::new(), &[0; 32]).expect("shipped policy is valid");
    let with_room: Vec<&str> =
        shipped.routes.iter().filter(|r| r.waiting_room.is_some()).map(|r| r.name.as_str()).collect();
    assert_eq!(with_room, ["schedule"], "on for schedule only; off by default");
    let room = shipped.routes.iter().find_map(|r| r.waiting_room.as_ref()).unwrap();
    assert!(room.window >= Duration::from_secs(7), "a person reads the SMS and picks a slot (~7 s)");
    assert_eq!(room.key, ["session_id"]);

    let room = |w: &str| format!("waiting_room: {{{w}}}");
    let ok = "window: 2s, key: [session_id], admission: {limit: 5, per: 1s}";
    let routes = format!(
        "{UPSTREAM}routes:
  - {{name: a, methods: [POST], path: /a, access: public, upstream: reg, {}}}
  - {{name: b, methods: [GET], path: /b, access: citizen, upstream: reg, {}}}
  - {{name: c, methods: [POST], path: /c, access: citizen, upstream: reg, {}}}
  - {{name: d, methods: [POST], path: /d, access: citizen, upstream: reg, {}}}
  - {{name: e, methods: [POST], path: /e, access: citizen, upstream: reg, {}}}
  - {{name: f, methods: [POST], path: /f, access: citizen, upstream: reg, {}}}
  - {{name: g, methods: [POST], path: /g, access: citizen, upstream: reg, {}}}
",
        room(ok),
        room(ok),
        room("window: 61s, key: [session_id], admission: {limit: 5, per: 1s}"),
        room("window: 2s, key: [], admission: {limit: 5, per: 1s}"),
        room("window: 2s, key: ['a b', x, x], admission: {limit: 5, per: 1s}"),
        room("window: 2s, key: [x], admission: {limit: 0, per: 1s}"),
        room(ok),
    );
    let errors = load_files(&[("c.yaml", "citizens: {}\n"), ("r.yaml", &routes)]).unwrap_err();
    let got: Vec<String> = errors.iter().map(|e| format!("{}:{}", e.file, e.path)).collect();
    for want in [
        "r.yaml:routes[0].waiting_room",
        "r.yaml:routes[1].waiting_room",
        "r.yaml:routes[2].waiting_room.window",
        "r.yaml:routes[3].waiting_room.key",
        "r.yaml:routes[4].waiting_room.key[0]",
        "r.yaml:routes[4].waiting_room.key[2]",
        "r.yaml:routes[5].waiting_room.admission",
    ] {
        assert!(got.contains(&want.to_string()), "missing {want} in {got:#?}");
    }
    assert!(!got.iter().any(|g| g.starts_with("r.yaml:routes[6]")), "{got:#?}");
}

/// The committed corpus of the `policy` fuzz target, replayed (what CI runs; fuzzing is not).
#[test]
fn fuzz_corpus_replays_clean() {
    let files = crate::redact::fuzzing::replay("policy", super::fuzzing::check);
    assert!(files >= 20, "only {files} corpus files");
}

#[test]
fn the_fuzz_invariant_holds_on_the_shipped_policy_and_broken_ones() {
    let shipped: Vec<String> = Sources::embedded().files.into_iter().map(|(_, c)| c).collect();
    super::fuzzing::check(shipped.join("\0").as_bytes()).unwrap();
    for text in [
        "gateway: [",
        "nope: 1",
        ".ope: 6",
        "nop\u{9b}: 1",
        "nope",
        "- gateway",
        "routes: 5",
        "routes:\n  - {name: a}\n",
        "\0gateway: {}\0gateway: {}",
    ] {
        super::fuzzing::check(text.as_bytes()).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    }
}
