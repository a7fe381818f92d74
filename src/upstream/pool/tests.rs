use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{Host, Pool};
use crate::upstream::UpstreamFailure;

/// How the test upstream answers each request.
#[derive(Clone, Copy)]
enum Answer {
    /// `200` with a 5-byte body, connection kept.
    Keep,
    /// `204`, no body, connection kept.
    NoContent,
    /// `200` with a 5-byte body, then the socket closed (no `Connection: close`).
    Close,
}

/// A raw HTTP/1.1 upstream on loopback: counts connections, records request heads.
struct Upstream {
    port: u16,
    accepted: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

async fn upstream(answer: Answer) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let (count, seen) = (accepted.clone(), heads.clone());
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head: Vec<u8> = buf.drain(..end + 4).collect();
                        seen.lock().push(String::from_utf8_lossy(&head).into_owned());
                        let reply: &[u8] = match answer {
                            Answer::Keep | Answer::Close => b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
                            Answer::NoContent => b"HTTP/1.1 204 No Content\r\n\r\n",
                        };
                        if sock.write_all(reply).await.is_err() {
                            return;
                        }
                        if let Answer::Close = answer {
                            return;
                        }
                    }
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    Upstream { port, accepted, heads }
}

fn pool(port: u16, idle_timeout: Duration) -> Arc<Pool> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let authority = format!("127.0.0.1:{port}").parse().unwrap();
    let host = Host::new(&http::uri::Scheme::HTTP, &authority, idle_timeout).unwrap();
    Pool::new(connector, vec![Arc::new(host)])
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::builder().method(Method::GET).uri(path).body(Full::new(Bytes::new())).unwrap()
}

/// Send a GET and read the whole answer.
async fn fetch(pool: &Pool, path: &str) -> Result<Bytes, UpstreamFailure> {
    let resp = pool.send(0, get(path)).await?;
    Ok(resp.into_body().collect().await.unwrap().to_bytes())
}

#[tokio::test]
async fn a_connection_read_to_its_end_is_reused_and_carries_origin_form_and_host() {
    let up = upstream(Answer::Keep).await;
    let pool = pool(up.port, Duration::from_secs(90));
    for i in 0..5 {
        assert_eq!(fetch(&pool, &format!("/r/{i}?q=1")).await.unwrap(), "hello");
        assert_eq!(pool.host(0).unwrap().idle_count(), 1);
    }
    assert_eq!(up.accepted.load(Ordering::SeqCst), 1, "one connection for five requests");
    let heads = up.heads.lock();
    assert!(heads[3].starts_with("GET /r/3?q=1 HTTP/1.1\r\n"), "origin form: {}", heads[3]);
    assert!(heads[3].to_ascii_lowercase().contains(&format!("host: 127.0.0.1:{}\r\n", up.port)), "{}", heads[3]);
}

#[tokio::test]
async fn an_answer_dropped_before_its_end_takes_its_connection_with_it() {
    let up = upstream(Answer::Keep).await;
    let pool = pool(up.port, Duration::from_secs(90));
    let resp = pool.send(0, get("/a")).await.unwrap();
    drop(resp);
    assert_eq!(pool.host(0).unwrap().idle_count(), 0, "half-read connection must not be lent again");
    assert_eq!(fetch(&pool, "/b").await.unwrap(), "hello");
    assert_eq!(up.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn concurrent_requests_get_their_own_connections_and_all_return() {
    let up = upstream(Answer::Keep).await;
    let pool = pool(up.port, Duration::from_secs(90));
    let held: Vec<_> = futures_util::future::join_all((0..4).map(|i| pool.send(0, get(&format!("/{i}"))))).await;
    assert_eq!(up.accepted.load(Ordering::SeqCst), 4, "a busy connection is never lent");
    for resp in held {
        resp.unwrap().into_body().collect().await.unwrap();
    }
    assert_eq!(pool.host(0).unwrap().idle_count(), 4);
}

#[tokio::test]
async fn an_answer_without_a_body_frees_its_connection_at_once() {
    let up = upstream(Answer::NoContent).await;
    let pool = pool(up.port, Duration::from_secs(90));
    let resp = pool.send(0, get("/nothing")).await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(pool.host(0).unwrap().idle_count(), 1, "nothing to read: back before the body is touched");
    drop(resp);
    pool.send(0, get("/again")).await.unwrap();
    assert_eq!(up.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_connection_the_upstream_closed_is_not_lent_again() {
    let up = upstream(Answer::Close).await;
    let pool = pool(up.port, Duration::from_secs(90));
    assert_eq!(fetch(&pool, "/1").await.unwrap(), "hello");
    // Give the connection's task time to see the upstream's end of the stream.
    for _ in 0..100 {
        if pool.host(0).unwrap().idle.lock().iter().all(|c| c.sender.is_closed()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(fetch(&pool, "/2").await.unwrap(), "hello", "the request goes out on a new connection");
    assert_eq!(up.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn connections_idle_past_the_timeout_are_closed_by_the_next_request_and_by_the_reaper() {
    let up = upstream(Answer::Keep).await;
    let pool = pool(up.port, Duration::from_millis(100));
    fetch(&pool, "/1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    fetch(&pool, "/2").await.unwrap();
    assert_eq!(up.accepted.load(Ordering::SeqCst), 2, "the expired connection was not reused");
    assert_eq!(pool.host(0).unwrap().idle_count(), 1);
    // No request comes: the reaper (every second at least) closes it.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(pool.host(0).unwrap().idle_count(), 0);
}

#[tokio::test]
async fn a_refused_connect_is_a_connect_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let pool = pool(port, Duration::from_secs(90));
    assert_eq!(pool.send(0, get("/")).await.err(), Some(UpstreamFailure::Connect));
}

#[tokio::test]
async fn sending_is_a_small_future() {
    // Every request's future holds this one; hyper moves request futures by value, so its size
    // is copied per request (connecting, the large part, is boxed).
    let pool = pool(1, Duration::from_secs(90));
    let size = std::mem::size_of_val(&pool.send(0, get("/")));
    assert!(size <= 1024, "Pool::send's future is {size} bytes");
}

/// An HTTPS upstream that speaks only HTTP/2 (ALPN `h2`), with a self-signed certificate for
/// `localhost`: its port, its certificate and its accept count.
async fn h2_upstream() -> (u16, rustls_pki_types::CertificateDer<'static>, Arc<AtomicUsize>) {
    use hyper::server::conn::http2;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap().self_signed(&key).unwrap();
    let cert_der = cert.der().clone();
    let key_der = rustls_pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert_der.clone()], key_der.into())
            .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let body = format!("h2 {}", req.uri().path());
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
                });
                let _ = http2::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(tls), service).await;
            });
        }
    });
    (port, cert_der, accepted)
}

#[tokio::test]
async fn an_https_upstream_that_negotiates_h2_is_reached_over_one_shared_connection() {
    let (port, cert, accepted) = h2_upstream().await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    let authority = format!("localhost:{port}").parse().unwrap();
    let host = Host::new(&http::uri::Scheme::HTTPS, &authority, Duration::from_secs(90)).unwrap();
    let pool = Pool::new(connector, vec![Arc::new(host)]);
    assert_eq!(fetch(&pool, "/first").await.unwrap(), "h2 /first");
    let both = futures_util::future::join_all((0..4).map(|i| {
        let pool = pool.clone();
        async move { fetch(&pool, &format!("/{i}")).await.unwrap() }
    }))
    .await;
    assert_eq!(both, ["h2 /0", "h2 /1", "h2 /2", "h2 /3"]);
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "one multiplexed connection");
    assert_eq!(pool.host(0).unwrap().idle_count(), 0, "an h2 connection is shared, never lent");
}
