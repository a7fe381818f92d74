//! A programmable upstream for tests: echoes what it received (method, exact request target,
//! headers, body size, which connection) as JSON; `sleep_ms=N` in the query delays the answer,
//! `pad=N` adds N bytes to it. [`Echo::received`] lists every request it was sent.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Serve `answer` on a new loopback port (HTTP/1.1 and HTTP/2) until the test ends.
async fn serve_fn<F, Fut, B>(answer: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let answer = answer.clone();
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service_fn(answer))
                    .await;
            });
        }
    });
    addr
}

pub struct Echo {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicU64>,
    /// Every request received, in arrival order, as the JSON document echoed for it (`method`,
    /// `target`, `headers`, `body`, …); recorded before any `sleep_ms` delay.
    received: Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl Echo {
    pub async fn start() -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicU64::new(0));
        let counter = connections.clone();
        let received = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = received.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let conn_id = counter.fetch_add(1, Ordering::SeqCst) + 1;
                let log = log.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| answer(conn_id, req, log.clone()));
                    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    // Room for the gateway's forwarding headers on top of a client's 100.
                    builder.http1().max_headers(200);
                    let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
                });
            }
        });
        Echo { addr, connections, received }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in order (see the field).
    pub fn received(&self) -> Vec<serde_json::Value> {
        self.received.lock().unwrap().clone()
    }
}

fn query_number(req: &Request<Incoming>, key: &str) -> Option<u64> {
    req.uri().query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')))?.parse().ok()
}

async fn answer(
    conn_id: u64,
    req: Request<Incoming>,
    log: Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let sleep_ms = query_number(&req, "sleep_ms");
    let pad = query_number(&req, "pad").unwrap_or(0);
    let mut headers = serde_json::Map::new();
    for (name, value) in req.headers() {
        let entry = headers.entry(name.as_str().to_string()).or_insert_with(|| serde_json::json!([]));
        if let Some(list) = entry.as_array_mut() {
            list.push(serde_json::Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()));
        }
    }
    let method = req.method().to_string();
    let body = req.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let doc = serde_json::json!({
        "method": method,
        "target": target,
        "headers": headers,
        "conn": conn_id,
        "body_len": body.len(),
        "body": String::from_utf8_lossy(&body),
    });
    log.lock().unwrap().push(doc.clone());
    if let Some(ms) = sleep_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut text = doc.to_string();
    if pad > 0 {
        // `"pad":"xxx…"` spliced in by hand: serialising a large string is slow in debug builds.
        text.pop();
        text.push_str(",\"pad\":\"");
        text.push_str(&"x".repeat(usize::try_from(pad).unwrap()));
        text.push_str("\"}");
    }
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    resp.headers_mut().insert("content-type", "application/json".parse().unwrap());
    resp.headers_mut().insert("x-otpgate-internal", "must-not-leak".parse().unwrap());
    resp.headers_mut().insert("connection", "x-upstream-hop".parse().unwrap());
    resp.headers_mut().insert("x-upstream-hop", "1".parse().unwrap());
    Ok(resp)
}

/// A listener whose accept queue is full: connects to it hang (SYNs are dropped), so a client's
/// connect timeout fires. Keep the returned value alive for the test's duration.
pub struct Blackhole {
    pub addr: SocketAddr,
    _listener: TcpListener,
    _fillers: Vec<TcpStream>,
}

impl Blackhole {
    pub async fn start() -> Blackhole {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(1).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut fillers = Vec::new();
        for _ in 0..4 {
            if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
                fillers.push(s);
            }
        }
        Blackhole { addr, _listener: listener, _fillers: fillers }
    }
}

/// A backend that answers citizen routes with records of the wrong people, to prove the gateway
/// filters responses whatever the backend says. Paths:
/// - `/api/v2/appointment/beneficiaries` and `/mixed`: the caller's records mixed with foreign ones,
///   one without an owner field and one with a masked owner;
/// - `/foreign`: only someone else's records; `/not-json`: HTML; `/gzip`: compressed body;
/// - `/error`: a 500 whose message carries a mobile number;
/// - `/spelling/{case}`: the caller's record and a foreign one under two spellings of the records
///   key or the owner field ([`SPELLINGS`]); `/kelvin`: `bookings` and `boo\u212Aings` (Kelvin sign);
/// - `/api/v2/x/{ref}`, `/api/v2/y/{ref}/certificate`: a document about reference `ref`, whoever asks;
/// - `/with-appointments`: the caller's record with appointment [`OWN_APPOINTMENT`] beside someone
///   else's with [`THEIR_APPOINTMENT`]; `/appointments-twice`: the caller's record listing its
///   appointments under `appointments` and `Appointments`.
///
/// Every request target it receives is kept ([`Hostile::received`]).
pub struct Hostile {
    pub addr: SocketAddr,
    received: Arc<std::sync::Mutex<Vec<String>>>,
}

pub const OWN: &str = "9000000001";
pub const OWN_APPOINTMENT: &str = "5b2f0c1e-3d4a-4e5f-9a6b-7c8d9e0f1a2b";
pub const THEIR_APPOINTMENT: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

impl Hostile {
    pub async fn start() -> Hostile {
        let received = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = received.clone();
        let answer = move |req: Request<Incoming>| {
            let target = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
            log.lock().unwrap().push(target);
            hostile_answer(req)
        };
        Hostile { addr: serve_fn(answer).await, received }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The request targets (path and query) received so far, in order.
    pub fn received(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }
}

/// `/spelling/{case}` of [`Hostile`]: the case, its raw JSON body (escapes as written), and whether
/// a gateway must refuse it (`false`: only the caller's record, `10000000000001`, may be released).
/// `OWN_RECORD` stands for the caller's record, `THEIR_RECORD` for `10000000000002` of `9000000002`.
pub const SPELLINGS: [(&str, &str, bool); 11] = [
    ("records-case", r#"{"beneficiaries":[OWN_RECORD],"Beneficiaries":[THEIR_RECORD]}"#, true),
    ("records-upper-first", r#"{"BENEFICIARIES":[THEIR_RECORD],"beneficiaries":[OWN_RECORD]}"#, true),
    ("records-escaped-case", r#"{"beneficiaries":[OWN_RECORD],"\u0042eneficiaries":[THEIR_RECORD]}"#, true),
    ("records-escaped-duplicate", r#"{"beneficiaries":[OWN_RECORD],"\u0062eneficiaries":[THEIR_RECORD]}"#, true),
    ("records-duplicate", r#"{"beneficiaries":[OWN_RECORD],"beneficiaries":[THEIR_RECORD]}"#, true),
    ("records-only-other-case", r#"{"Beneficiaries":[OWN_RECORD,THEIR_RECORD]}"#, true),
    (
        "owner-case",
        r#"{"beneficiaries":[{"beneficiary_reference_id":"10000000000002","name":"Person 10000000000002","mobile_number":"9000000001","MOBILE_NUMBER":"9000000002"}]}"#,
        true,
    ),
    (
        "owner-escaped-duplicate",
        r#"{"beneficiaries":[{"beneficiary_reference_id":"10000000000002","name":"Person 10000000000002","mobile_number":"9000000001","mobile_numbe\u0072":"9000000002"}]}"#,
        true,
    ),
    (
        "owner-escaped-case",
        r#"{"beneficiaries":[{"beneficiary_reference_id":"10000000000002","name":"Person 10000000000002","mobile_number":"9000000001","MOBILE_NUMBE\u0052":"9000000002"}]}"#,
        true,
    ),
    (
        "owner-only-other-case",
        r#"{"beneficiaries":[OWN_RECORD,{"beneficiary_reference_id":"10000000000002","name":"Person 10000000000002","Mobile_Number":"9000000001"}]}"#,
        true,
    ),
    (
        "escaped-exact",
        r#"{"\u0062eneficiaries":[{"beneficiary_reference_id":"10000000000001","name":"Person 10000000000001","\u006dobile_number":"9000000001"},{"beneficiary_reference_id":"10000000000002","name":"Person 10000000000002","mobile_numbe\u0072":"9000000002"}],"ttl":5}"#,
        false,
    ),
];

/// A body of [`SPELLINGS`] with its placeholders filled in.
fn spelling_body(case: &str) -> Option<String> {
    let (_, body, _) = SPELLINGS.iter().find(|(c, _, _)| *c == case)?;
    let own = record("10000000000001", Some(OWN)).to_string();
    let theirs = record("10000000000002", Some("9000000002")).to_string();
    Some(body.replace("OWN_RECORD", &own).replace("THEIR_RECORD", &theirs))
}

fn record(reference: &str, mobile: Option<&str>) -> serde_json::Value {
    let mut r = serde_json::json!({"beneficiary_reference_id": reference, "name": format!("Person {reference}"), "photo_id_number": format!("2{reference}")});
    if let Some(m) = mobile {
        r["mobile_number"] = serde_json::Value::String(m.to_string());
    }
    r
}

async fn hostile_answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.split('/').collect();
    let (status, ctype, encoding, body) = match path.as_str() {
        _ if path.starts_with("/spelling/") => match spelling_body(&path["/spelling/".len()..]) {
            Some(body) => (200, "application/json", None, body),
            None => (404, "application/json", None, r#"{"errorCode":"NF","error":"not found"}"#.to_string()),
        },
        "/kelvin" => {
            let own = record("10000000000001", Some(OWN));
            let theirs = record("10000000000002", Some("9000000002"));
            (200, "application/json", None, format!(r#"{{"bookings":[{own}],"boo\u212Aings":[{theirs}]}}"#))
        }
        _ if matches!(segments.as_slice(), ["", "api", "v2", "x", _] | ["", "api", "v2", "y", _, "certificate"]) => {
            let doc = serde_json::json!({"beneficiary_reference_id": segments[4], "certificate": "issued"});
            (200, "application/json", None, doc.to_string())
        }
        "/api/v2/appointment/beneficiaries" | "/mixed" => {
            let doc = serde_json::json!({"beneficiaries": [
                record("10000000000001", Some(OWN)),
                record("10000000000002", Some("9000000002")),
                record("10000000000003", None),
                record("10000000000004", Some("XXXXXX0001")),
                record("10000000000005", Some(&format!("+91{OWN}"))),
            ], "ttl": 5});
            (200, "application/json", None, doc.to_string())
        }
        "/with-appointments" | "/appointments-twice" => {
            let mut own = record("10000000000001", Some(OWN));
            own["appointments"] = serde_json::json!([{"appointment_id": OWN_APPOINTMENT, "dose": 1}]);
            if path == "/appointments-twice" {
                own["Appointments"] = serde_json::json!([{"appointment_id": THEIR_APPOINTMENT, "dose": 1}]);
            }
            let mut theirs = record("10000000000002", Some("9000000002"));
            theirs["appointments"] = serde_json::json!([{"appointment_id": THEIR_APPOINTMENT, "dose": 1}]);
            (200, "application/json", None, serde_json::json!({"beneficiaries": [own, theirs]}).to_string())
        }
        "/foreign" => {
            let doc = serde_json::json!({"beneficiaries": [record("10000000000002", Some("9000000002"))]});
            (200, "application/json", None, doc.to_string())
        }
        "/not-json" => (200, "text/html", None, "<html>9000000002 Person</html>".to_string()),
        "/gzip" => (200, "application/json", Some("gzip"), "\u{1f}\u{8b}not really gzip".to_string()),
        "/error" => (
            500,
            "application/json",
            None,
            r#"{"errorCode":"BENERR0001","error":"no beneficiary for 9000000002 (Person X)"}"#.to_string(),
        ),
        _ => (404, "application/json", None, r#"{"errorCode":"NF","error":"not found"}"#.to_string()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = http::StatusCode::from_u16(status).unwrap();
    resp.headers_mut().insert("content-type", ctype.parse().unwrap());
    if let Some(e) = encoding {
        resp.headers_mut().insert("content-encoding", e.parse().unwrap());
    }
    Ok(resp)
}

/// A fake SMS provider: records every POST body; answers with `status` after `delay`.
pub struct SmsProvider {
    pub addr: SocketAddr,
    pub received: Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl SmsProvider {
    pub async fn start(status: u16, delay: Duration) -> SmsProvider {
        let received = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = received.clone();
        let answer = move |req: Request<Incoming>| {
            let sink = sink.clone();
            async move {
                let body = req.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                if let Ok(v) = serde_json::from_slice(&body) {
                    sink.lock().unwrap().push(v);
                }
                tokio::time::sleep(delay).await;
                let mut resp = Response::new(Full::new(Bytes::from_static(b"{}")));
                *resp.status_mut() = http::StatusCode::from_u16(status).unwrap();
                Ok::<_, Infallible>(resp)
            }
        };
        SmsProvider { addr: serve_fn(answer).await, received }
    }
}

/// A backend for redaction tests. Paths:
/// `/records` (JSON with names, mobiles, ID numbers), `/records-gzip` (the same, gzip-encoded),
/// `/records-zstd` (an encoding nobody can decode here), `/html`, `/broken` (malformed JSON),
/// `/truncated-stream` (a chunked body that turns into garbage after 200 KB).
pub struct Documents {
    pub addr: SocketAddr,
}

pub fn records_doc(n: usize) -> String {
    let records: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "beneficiary_reference_id": format!("{:014}", 10_000_000_000_000u64 + i as u64),
                "name": format!("Secret Person {i}"),
                "mobile_number": format!("{}", 9_000_000_001u64 + (i as u64 % 5)),
                "photo_id_number": format!("{}", 234_512_341_234u64 + i as u64),
                "birth_year": "1980",
                "dose1_date": "01-06-2021",
                "aadhaarNo": "999988887777",
            })
        })
        .collect();
    serde_json::json!({ "beneficiaries": records }).to_string()
}

impl Documents {
    pub async fn start() -> Documents {
        Documents { addr: serve_fn(documents_answer).await }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

type DocBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

async fn documents_answer(req: Request<Incoming>) -> Result<Response<DocBody>, Infallible> {
    use http_body_util::BodyExt;
    let json = |b: Vec<u8>| Full::new(Bytes::from(b)).map_err(|never| match never {}).boxed();
    let (ctype, encoding, body): (&str, Option<&str>, DocBody) = match req.uri().path() {
        "/records" | "/dry" => ("application/json", None, json(records_doc(3).into_bytes())),
        "/records-gzip" => {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(records_doc(3).as_bytes()).unwrap();
            ("application/json", Some("gzip"), json(enc.finish().unwrap()))
        }
        "/records-zstd" => ("application/json", Some("zstd"), json(records_doc(3).into_bytes())),
        "/html" => ("text/html", None, json(b"<p>Secret Person</p>".to_vec())),
        "/broken" => {
            ("application/json", None, json(br#"{"beneficiaries":[{"name":"Secret Person" "x":1}]}"#.to_vec()))
        }
        "/records-chunked" => {
            // The same document in pieces, without a Content-Length.
            let doc = Bytes::from(records_doc(3));
            let chunks: Vec<Result<hyper::body::Frame<Bytes>, std::io::Error>> =
                [doc.slice(..40), doc.slice(40..)].into_iter().map(|b| Ok(hyper::body::Frame::data(b))).collect();
            ("application/json", None, http_body_util::StreamBody::new(futures_util::stream::iter(chunks)).boxed())
        }
        "/trickle" | "/trickle-stream" => {
            // A first piece of the document, then nothing, for ever.
            let first: [Result<hyper::body::Frame<Bytes>, std::io::Error>; 1] =
                [Ok(hyper::body::Frame::data(Bytes::from_static(b"{\"beneficiaries\":[")))];
            let stream =
                futures_util::StreamExt::chain(futures_util::stream::iter(first), futures_util::stream::pending());
            ("application/json", None, http_body_util::StreamBody::new(stream).boxed())
        }
        "/truncated-stream" => {
            let doc = records_doc(2000);
            let head = doc.as_bytes()[..doc.len() / 2].to_vec();
            let chunks: Vec<Result<hyper::body::Frame<Bytes>, std::io::Error>> = vec![
                Ok(hyper::body::Frame::data(Bytes::from(head))),
                Ok(hyper::body::Frame::data(Bytes::from_static(b"]]]} not json at all"))),
            ];
            let stream = futures_util::stream::iter(chunks);
            ("application/json", None, http_body_util::StreamBody::new(stream).boxed())
        }
        _ => ("application/json", None, json(b"{}".to_vec())),
    };
    let mut resp = Response::new(body);
    resp.headers_mut().insert("content-type", ctype.parse().unwrap());
    if let Some(e) = encoding {
        resp.headers_mut().insert("content-encoding", e.parse().unwrap());
    }
    Ok(resp)
}
