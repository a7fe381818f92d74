//! Issue 4: the partner whitelist over real TLS with per-run certificates — every refusal and the
//! accepted path. Issue 13: subjects compared on the DER, CRLs past their nextUpdate, CA and CRL
//! files reloaded when their content changes.

use std::path::Path;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};

use crate::citizen_flow::{OUTBOX_POLICY, sign_in};
use crate::harness::pki::{Ca, Leaf, connect};
use crate::harness::upstream::Echo;
use crate::harness::*;

const KEY_ICMR: &str = "icmr-key-0123456789abcdefghijklmnopqrstuv";
pub const KEY_NIC: &str = "nic-key-0123456789abcdefghijklmnopqrstuvw";
const KEY_FAR: &str = "far-key-0123456789abcdefghijklmnopqrstuvw";

fn h(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

pub struct Pki {
    pub server_ca: Ca,
    pub icmr: Leaf,
    pub nic: Leaf,
    pub far: Leaf,
    pub expired: Leaf,
    pub revoked: Leaf,
    pub rogue: Leaf,
    /// From the partner CA, with one O attribute `otpgate test, CN=nic`: as text, nic's subject.
    pub forged_nic: Leaf,
    pub partner_ca: Ca,
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        let server_ca = Ca::new("server CA");
        let partner_ca = Ca::new("partner CA");
        let rogue_ca = Ca::new("rogue CA");
        let dir = tempfile::tempdir().unwrap();
        server_ca.leaf("localhost", true, (2025, 2035), 1).write(dir.path(), "server");
        std::fs::write(dir.path().join("partner-ca.pem"), &partner_ca.pem).unwrap();
        std::fs::write(dir.path().join("crl.pem"), partner_ca.crl(&[66])).unwrap();
        Pki {
            icmr: partner_ca.leaf("icmr", false, (2025, 2035), 10),
            nic: partner_ca.leaf("nic", false, (2025, 2035), 11),
            far: partner_ca.leaf("far", false, (2025, 2035), 12),
            expired: partner_ca.leaf("icmr", false, (2020, 2021), 13),
            revoked: partner_ca.leaf("icmr", false, (2025, 2035), 66),
            rogue: rogue_ca.leaf("icmr", false, (2025, 2035), 10),
            forged_nic: partner_ca.leaf_with_subject(&[(rcgen::DnType::OrganizationName, "otpgate test, CN=nic")], 14),
            partner_ca,
            server_ca,
            dir,
        }
    }

    /// The gateway half of the policy, for other tests' routes against `upstream`.
    pub fn policy_for(&self, upstream: &str) -> (String, String) {
        self.policy(true, "", upstream)
    }

    fn policy(&self, icmr_enabled: bool, trusted_proxies: &str, echo: &str) -> (String, String) {
        let d = self.dir.path().display();
        let gateway = format!(
            "gateway:\n  trusted_proxies: [{trusted_proxies}]\nprofiles:\n  open: {{default: allow}}\ncitizens:\n  otp:\n{OUTBOX_POLICY}\npartners:
  ca: ['{d}/partner-ca.pem']
  crl: ['{d}/crl.pem']
  clients:
    icmr: {{enabled: {icmr_enabled}, certificate: {{spki_sha256: '{}'}}, api_key_sha256: '{}', source: ['127.0.0.1/32'], scopes: [beneficiaries:search], quota: {{subjects_per_day: 3}}}}
    nic: {{certificate: {{subject: 'O=otpgate test, CN=nic'}}, api_key_sha256: '{}', source: ['127.0.0.0/8'], scopes: [beneficiaries:search, beneficiaries:export], quota: {{requests: {{limit: 5, window: 1h}}}}}}
    far: {{certificate: {{spki_sha256: '{}'}}, api_key_sha256: '{}', source: ['203.0.113.0/24'], scopes: [beneficiaries:search]}}
upstreams:
  test: {{url: '{echo}'}}
",
            self.icmr.pin(),
            h(KEY_ICMR),
            h(KEY_NIC),
            self.far.pin(),
            h(KEY_FAR)
        );
        let routes = "routes:
  - {name: search, methods: [POST], path: /search, access: partner, upstream: test, personal: true, redact: {partner: open}, scopes: [beneficiaries:search], quota_subjects: [mobile]}
  - {name: export, methods: [GET], path: /export, access: partner, upstream: test, personal: true, redact: {partner: open}, scopes: [beneficiaries:export]}
  - {name: gen, methods: [POST], path: /api/v2/auth/public/generateOTP, access: public, handler: otp_generate}
  - {name: conf, methods: [POST], path: /api/v2/auth/public/confirmOTP, access: public, handler: otp_confirm}
  - {name: mine, methods: [GET], path: /mine, access: citizen, upstream: test}
"
        .to_string();
        (gateway, routes)
    }

    pub fn gateway(&self, policy_dir: &Path) -> Gateway {
        let d = self.dir.path();
        let (cert, key) = (d.join("server.pem").display().to_string(), d.join("server-key.pem").display().to_string());
        let gw = Gateway::serve(
            policy_dir,
            &["--listen", "127.0.0.1:0", "--listen-partner", "127.0.0.1:0", "--tls-cert", &cert, "--tls-key", &key],
        );
        assert!(gw.urls.contains_key("partner"), "{:?}", gw.urls);
        gw
    }
}

/// One request on a new TLS connection; `Err` when the handshake or the exchange is refused.
async fn call(
    addr: std::net::SocketAddr,
    pki: &Pki,
    client: Option<&Leaf>,
    req: Request<Full<Bytes>>,
) -> Result<Resp, String> {
    let stream = connect(addr, &pki.server_ca.pem, client).await.map_err(|e| e.to_string())?;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    let (parts, body) = resp.into_parts();
    let body = http_body_util::BodyExt::collect(body).await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Resp { status: parts.status.as_u16(), headers: parts.headers, body, version: parts.version })
}

fn search(key: Option<&str>, mobile: &str) -> Request<Full<Bytes>> {
    let mut r = Request::post("/search").header("host", "localhost").header("content-type", "application/json");
    if let Some(k) = key {
        r = r.header("x-api-key", k);
    }
    r.body(Full::new(Bytes::from(format!(r#"{{"mobile":"{mobile}"}}"#)))).unwrap()
}

#[tokio::test]
async fn partners_are_admitted_only_with_certificate_key_and_source_of_one_partner() {
    let pki = Pki::new();
    let echo = Echo::start().await;
    let (g, r) = pki.policy(true, "", &echo.url());
    let dir = policy_dir(&g, &r);
    let gw = pki.gateway(dir.path());
    let (shared, only) = (gw.addr("https"), gw.addr("partner"));

    // Accepted, on both TLS listeners; the upstream sees the asserted partner, not the key.
    for addr in [shared, only] {
        let resp = call(addr, &pki, Some(&pki.icmr), search(Some(KEY_ICMR), "9000000001")).await.unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
        let seen = resp.json()["headers"].clone();
        assert!(seen["x-otpgate-identity"].is_array(), "identity asserted upstream");
        assert!(seen.get("x-api-key").is_none(), "the API key stays at the gateway");
    }
    // No certificate: 401 on the shared listener, handshake refused on the partner-only one.
    let resp = call(shared, &pki, None, search(Some(KEY_ICMR), "9000000001")).await.unwrap();
    assert_eq!((resp.status, resp.error_code().as_str()), (401, "USRAUT0001"));
    assert!(call(only, &pki, None, search(Some(KEY_ICMR), "9000000001")).await.is_err());
    // Wrong CA, expired, revoked: the handshake fails on both listeners.
    for (what, leaf) in [("rogue CA", &pki.rogue), ("expired", &pki.expired), ("revoked", &pki.revoked)] {
        for addr in [shared, only] {
            let r = call(addr, &pki, Some(leaf), search(Some(KEY_ICMR), "9000000001")).await;
            assert!(r.is_err(), "{what} on {addr}: {:?}", r.map(|r| r.status));
        }
    }
    // Key: missing 401; another partner's key or an unknown key 403.
    let r = call(shared, &pki, Some(&pki.icmr), search(None, "9000000001")).await.unwrap();
    assert_eq!(r.status, 401);
    for key in [KEY_NIC, "not-a-key"] {
        let r = call(shared, &pki, Some(&pki.icmr), search(Some(key), "9000000001")).await.unwrap();
        assert_eq!((r.status, r.error_code().as_str()), (403, "GWY4031"), "icmr's certificate with {key}");
    }
    let r = call(shared, &pki, Some(&pki.nic), search(Some(KEY_ICMR), "9000000001")).await.unwrap();
    assert_eq!(r.status, 403, "nic's certificate with icmr's key");
    // Subject-identified partner works.
    let r = call(shared, &pki, Some(&pki.nic), search(Some(KEY_NIC), "9000000001")).await.unwrap();
    assert_eq!(r.status, 200);
    // Source CIDR: `far` may only call from 203.0.113.0/24; a spoofed X-Forwarded-For is ignored.
    let mut req = search(Some(KEY_FAR), "9000000001");
    req.headers_mut().insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
    let r = call(shared, &pki, Some(&pki.far), req).await.unwrap();
    assert_eq!(r.status, 403, "not from a trusted proxy: the socket peer counts");
    // Scopes: icmr may search but not export; nic may export.
    let export = || Request::get("/export").header("host", "localhost");
    let r = call(
        shared,
        &pki,
        Some(&pki.icmr),
        export().header("x-api-key", KEY_ICMR).body(Full::new(Bytes::new())).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!((r.status, r.error_code().as_str()), (403, "GWY4031"));
    let r = call(
        shared,
        &pki,
        Some(&pki.nic),
        export().header("x-api-key", KEY_NIC).body(Full::new(Bytes::new())).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    // Forged client-certificate headers never reach the upstream.
    let mut req = search(Some(KEY_ICMR), "9000000001");
    for name in ["x-forwarded-client-cert", "client-cert", "x-ssl-client-verify", "x_ssl_client_s_dn"] {
        req.headers_mut().insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), "forged".parse().unwrap());
    }
    let r = call(shared, &pki, Some(&pki.icmr), req).await.unwrap();
    assert_eq!(r.status, 200);
    assert!(!r.text().contains("forged"), "{}", r.text());
}

#[tokio::test]
async fn quotas_cap_requests_and_distinct_subjects() {
    let pki = Pki::new();
    let echo = Echo::start().await;
    let (g, r) = pki.policy(true, "", &echo.url());
    let dir = policy_dir(&g, &r);
    let gw = pki.gateway(dir.path());
    let shared = gw.addr("https");
    // icmr: 3 distinct people per day; repeats do not count again.
    for m in ["9000000001", "9000000002", "+919000000002", "9000000003", "9000000001"] {
        let r = call(shared, &pki, Some(&pki.icmr), search(Some(KEY_ICMR), m)).await.unwrap();
        assert_eq!(r.status, 200, "{m}");
    }
    let r = call(shared, &pki, Some(&pki.icmr), search(Some(KEY_ICMR), "9000000004")).await.unwrap();
    assert_eq!((r.status, r.error_code().as_str()), (429, "GWY4291"), "a fourth person");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry), "until midnight IST: {retry}");
    // nic: 5 requests per hour.
    for i in 0..5 {
        let r = call(shared, &pki, Some(&pki.nic), search(Some(KEY_NIC), "9000000001")).await.unwrap();
        assert_eq!(r.status, 200, "request {i}");
    }
    let r = call(shared, &pki, Some(&pki.nic), search(Some(KEY_NIC), "9000000001")).await.unwrap();
    assert_eq!(r.status, 429);
    assert!(r.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn trusted_proxies_forward_the_real_source() {
    let pki = Pki::new();
    let echo = Echo::start().await;
    let (g, r) = pki.policy(true, "'127.0.0.1/32'", &echo.url());
    let dir = policy_dir(&g, &r);
    let gw = pki.gateway(dir.path());
    let shared = gw.addr("https");
    for (xff, want) in [("203.0.113.9", 200), ("203.0.113.9, 198.51.100.1", 403), ("198.51.100.1, 203.0.113.9", 200)] {
        let mut req = search(Some(KEY_FAR), "9000000001");
        req.headers_mut().insert("x-forwarded-for", xff.parse().unwrap());
        let r = call(shared, &pki, Some(&pki.far), req).await.unwrap();
        assert_eq!(r.status, want, "rightmost untrusted hop of {xff}");
    }
}

#[tokio::test]
async fn citizens_and_partners_cannot_use_each_others_routes() {
    let pki = Pki::new();
    let echo = Echo::start().await;
    let (g, r) = pki.policy(true, "", &echo.url());
    let dir = policy_dir(&g, &r);
    let gw = Gateway::serve(dir.path(), &[]);
    let token = sign_in(gw.addr("http"), &gw.data_path("otp-outbox.jsonl"), "9000000001").await;
    let req = Request::post("/search")
        .header("host", "x")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::from_static(br#"{"mobile":"9000000001"}"#)))
        .unwrap();
    let r = h1(tcp(gw.addr("http")).await, req).await;
    assert_eq!(r.status, 401, "a citizen token on a partner route");
    drop(gw);
    let gw = pki.gateway(dir.path());
    let req = Request::get("/mine")
        .header("host", "localhost")
        .header("x-api-key", KEY_ICMR)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = call(gw.addr("https"), &pki, Some(&pki.icmr), req).await.unwrap();
    assert_eq!(r.status, 401, "partner credentials on a citizen route");
}

#[tokio::test]
async fn disabling_a_partner_takes_effect_on_open_connections() {
    let pki = Pki::new();
    let echo = Echo::start().await;
    let (g, r) = pki.policy(true, "", &echo.url());
    let dir = policy_dir(&g, &r);
    let gw = pki.gateway(dir.path());
    let stream = connect(gw.addr("https"), &pki.server_ca.pem, Some(&pki.icmr)).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let resp = send.send_request(search(Some(KEY_ICMR), "9000000001")).await.unwrap();
    assert_eq!(resp.status(), 200);
    http_body_util::BodyExt::collect(resp.into_body()).await.unwrap();

    let (g, r) = pki.policy(false, "", &echo.url());
    std::fs::write(dir.path().join("gateway.yaml"), g).unwrap();
    std::fs::write(dir.path().join("routes.yaml"), r).unwrap();
    gw.signal("HUP");
    let admin = gw.addr("admin");
    assert!(
        eventually(std::time::Duration::from_secs(5), || async move {
            metric(&get_h1(admin, "/metrics").await.text(), "otpgate_policy_reloads_total", &[("result", "success")])
                >= 1.0
        })
        .await
    );
    send.ready().await.unwrap();
    let resp = send.send_request(search(Some(KEY_ICMR), "9000000001")).await.unwrap();
    assert_eq!(resp.status(), 403, "same keep-alive connection, partner now disabled");
}

#[tokio::test]
async fn the_demo_partner_icmr_can_search_with_the_files_the_demo_wrote() {
    let gw = Gateway::demo_in_cwd();
    let read = |f: &str| std::fs::read_to_string(gw.data_path("otpgate-demo-data").join(f)).unwrap();
    let icmr = Leaf { cert_pem: read("partner-icmr.pem"), key_pem: read("partner-icmr-key.pem") };
    let key = read("partner-icmr.apikey").trim().to_string();
    let mut roots = rustls::RootCertStore::empty();
    use rustls_pki_types::pem::PemObject;
    roots.add(rustls_pki_types::CertificateDer::from_pem_slice(read("ca.pem").as_bytes()).unwrap()).unwrap();
    let (chain, pk) = icmr.identity();
    let config =
        rustls::ClientConfig::builder().with_root_certificates(roots).with_client_auth_cert(chain, pk).unwrap();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(gw.addr("https")).await.unwrap();
    let stream = connector.connect(rustls_pki_types::ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    let req = Request::post("/api/v2/partner/beneficiaries/search")
        .header("host", "localhost")
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(br#"{"mobile":"9000000001"}"#)))
        .unwrap();
    let r = h1(stream, req).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.json()["beneficiaries"].as_array().unwrap().is_empty());
}

/// Replace a file as a deploy does: write a sibling, rename it over the old one.
fn replace(path: &Path, content: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// A keep-alive HTTP/1.1 connection presenting `client`.
async fn keep_alive(addr: std::net::SocketAddr, pki: &Pki, client: &Leaf) -> Sender {
    let stream = connect(addr, &pki.server_ca.pem, Some(client)).await.unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    send
}

/// The status of one request on an open connection.
async fn status(send: &mut Sender, req: Request<Full<Bytes>>) -> u16 {
    send.ready().await.unwrap();
    let resp = send.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    http_body_util::BodyExt::collect(resp.into_body()).await.unwrap();
    status
}

async fn metrics(gw: &Gateway) -> String {
    get_h1(gw.addr("admin"), "/metrics").await.text()
}

fn check(dir: &Path) -> (bool, String) {
    let (ok, stdout, stderr) = check_policy(dir, &[std::ffi::OsStr::new("--insecure-otp-outbox")]);
    (ok, format!("{stdout}{stderr}"))
}

#[tokio::test]
async fn a_subject_that_only_renders_like_a_partners_is_refused() {
    let pki = Pki::new();
    let echo = Echo::start().await;
    let (g, r) = pki.policy(true, "", &echo.url());
    let dir = policy_dir(&g, &r);
    let gw = pki.gateway(dir.path());
    // nic is identified by subject `O=otpgate test, CN=nic`. The forged certificate, from the same
    // CA, has one O attribute `otpgate test, CN=nic`: as text the same subject, as DER another.
    for addr in [gw.addr("https"), gw.addr("partner")] {
        let r = call(addr, &pki, Some(&pki.nic), search(Some(KEY_NIC), "9000000001")).await.unwrap();
        assert_eq!(r.status, 200, "the genuine nic: {}", r.text());
        let r = call(addr, &pki, Some(&pki.forged_nic), search(Some(KEY_NIC), "9000000001")).await.unwrap();
        // `error_code` also asserts the documented error shape.
        assert_eq!((r.status, r.error_code().as_str()), (403, "GWY4031"), "one O holding `, CN=nic` is not O + CN");
    }
    // A policy subject that could be read two ways is refused, naming the field.
    let ambiguous = g.replace("subject: 'O=otpgate test, CN=nic'", r"subject: 'O=otpgate test\, CN=nic'");
    assert_ne!(ambiguous, g);
    let bad = policy_dir(&ambiguous, &r);
    let (ok, out) = check(bad.path());
    assert!(!ok, "{out}");
    assert!(out.contains("partners.clients.nic.certificate.subject") && out.contains("spki_sha256"), "{out}");
}

#[tokio::test]
async fn a_crl_past_its_next_update_refuses_its_cas_partners_and_says_so() {
    let pki = Pki::new();
    let echo = Echo::start().await;
    let crl = pki.dir.path().join("crl.pem");
    let lapsed = rcgen::date_time_ymd(2025, 2, 1).unix_timestamp();
    std::fs::write(&crl, pki.partner_ca.crl_until(&[66], lapsed)).unwrap();
    let (g, r) = pki.policy(true, "", &echo.url());
    let dir = policy_dir(&g, &r);
    // Accepted — a partner CA's stale CRL does not take citizens' routes down — and reported.
    let (ok, out) = check(dir.path());
    assert!(ok, "{out}");
    assert!(out.contains("partner CRL is past its nextUpdate") && out.contains("crl.pem"), "{out}");
    let gw = pki.gateway(dir.path());
    assert!(gw.stderr().contains("partner CRL is past its nextUpdate"), "{}", gw.stderr());
    for addr in [gw.addr("https"), gw.addr("partner")] {
        for (who, leaf) in [("icmr", &pki.icmr), ("nic", &pki.nic)] {
            let r = call(addr, &pki, Some(leaf), search(Some(KEY_ICMR), "9000000001")).await;
            assert!(r.is_err(), "{who} on {addr}, CRL expired: {:?}", r.map(|r| r.status));
        }
    }
    let r = call(gw.addr("https"), &pki, None, search(Some(KEY_ICMR), "9000000001")).await.unwrap();
    assert_eq!(r.status, 401, "the shared listener still serves clients without certificates");
    assert!(
        eventually(std::time::Duration::from_secs(5), || async {
            let m = metrics(&gw).await;
            metric(&m, "otpgate_partner_crls_expired", &[]) == 1.0
                && metric(&m, "otpgate_partner_crl_next_update_seconds", &[]) == lapsed as f64
        })
        .await,
        "{}",
        metrics(&gw).await
    );

    // A current CRL — installed without a signal — that lapses while a connection is open.
    let lapses_s = otpgate::clock::system_now_ms() / 1000 + 8;
    replace(&crl, &pki.partner_ca.crl_until(&[66], i64::try_from(lapses_s).unwrap()));
    let https = gw.addr("https");
    assert!(
        eventually(std::time::Duration::from_secs(5), || async {
            call(https, &pki, Some(&pki.icmr), search(Some(KEY_ICMR), "9000000001"))
                .await
                .is_ok_and(|r| r.status == 200)
        })
        .await,
        "the new CRL is picked up"
    );
    let mut open = keep_alive(https, &pki, &pki.icmr).await;
    assert_eq!(status(&mut open, search(Some(KEY_ICMR), "9000000001")).await, 200);
    assert!(
        eventually(std::time::Duration::from_secs(3), || async {
            metric(&metrics(&gw).await, "otpgate_partner_crls_expired", &[]) == 0.0
        })
        .await
    );
    let wait = (lapses_s * 1000 + 200).saturating_sub(otpgate::clock::system_now_ms());
    assert!(wait > 1000, "the CRL lapsed before the test could use it ({wait} ms left)");
    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
    assert_eq!(status(&mut open, search(Some(KEY_ICMR), "9000000001")).await, 403, "same connection, CRL lapsed");
    let r = call(https, &pki, Some(&pki.icmr), search(Some(KEY_ICMR), "9000000001")).await;
    assert!(r.is_err(), "new connection, CRL lapsed: {:?}", r.map(|r| r.status));
    assert!(
        eventually(std::time::Duration::from_secs(3), || async {
            metric(&metrics(&gw).await, "otpgate_partner_crls_expired", &[]) == 1.0
                && gw.stderr().contains("partner CRL passed its nextUpdate")
        })
        .await,
        "{}",
        gw.stderr()
    );
}

#[tokio::test]
async fn a_rewritten_crl_revokes_on_open_and_new_connections_without_a_signal() {
    let pki = Pki::new();
    let echo = Echo::start().await;
    let (g, r) = pki.policy(true, "", &echo.url());
    let dir = policy_dir(&g, &r);
    let gw = pki.gateway(dir.path());
    let https = gw.addr("https");
    let crl = pki.dir.path().join("crl.pem");
    let reloads = |m: &str, result: &str| metric(m, "otpgate_policy_reloads_total", &[("result", result)]);
    let mut open = keep_alive(https, &pki, &pki.icmr).await;
    assert_eq!(status(&mut open, search(Some(KEY_ICMR), "9000000001")).await, 200);

    // A bad CRL written mid-way: logged, counted once, and the policy in force keeps serving.
    replace(&crl, "-----BEGIN X509 CRL-----\nbm90IGEgQ1JM\n-----END X509 CRL-----\n");
    assert!(
        eventually(std::time::Duration::from_secs(5), || async { reloads(&metrics(&gw).await, "failure") == 1.0 })
            .await
    );
    assert!(gw.stderr().contains("policy rejected; the previous policy keeps serving"), "{}", gw.stderr());
    assert!(gw.stderr().contains("crl[0]"), "the error names the field: {}", gw.stderr());
    assert_eq!(status(&mut open, search(Some(KEY_ICMR), "9000000001")).await, 200, "open connection");
    let r = call(https, &pki, Some(&pki.icmr), search(Some(KEY_ICMR), "9000000001")).await.unwrap();
    assert_eq!(r.status, 200, "new connection");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(reloads(&metrics(&gw).await, "failure"), 1.0, "a bad file is reported once, not every second");

    // The CA's next CRL revokes icmr (serial 10): no signal, only the file.
    let successes = reloads(&metrics(&gw).await, "success");
    let written = std::time::Instant::now();
    replace(&crl, &pki.partner_ca.crl(&[66, 10]));
    loop {
        if status(&mut open, search(Some(KEY_ICMR), "9000000001")).await == 403 {
            break;
        }
        assert!(written.elapsed() < std::time::Duration::from_secs(4), "still admitted on the open connection");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let took = written.elapsed();
    assert!(took < std::time::Duration::from_millis(3500), "revoked after {took:?}");
    for addr in [https, gw.addr("partner")] {
        let r = call(addr, &pki, Some(&pki.icmr), search(Some(KEY_ICMR), "9000000001")).await;
        assert!(r.is_err(), "new connection of a revoked certificate on {addr}: {:?}", r.map(|r| r.status));
        let r = call(addr, &pki, Some(&pki.nic), search(Some(KEY_NIC), "9000000001")).await.unwrap();
        assert_eq!(r.status, 200, "nic is not revoked");
    }
    let m = metrics(&gw).await;
    assert_eq!(reloads(&m, "success"), successes + 1.0, "{m}");
    assert_eq!(reloads(&m, "failure"), 1.0);
    assert!(gw.stderr().contains("a partner CA or CRL file changed"), "{}", gw.stderr());
}
