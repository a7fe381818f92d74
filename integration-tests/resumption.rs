//! Issue 17: returning clients resume their TLS session, on any replica that shares the keys
//! directory (tickets keyed by `tickets.key`), and not on one that does not.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use rustls::HandshakeKind;

use crate::foundation::{GATEWAY, routes};
use crate::harness::pki::Ca;
use crate::harness::*;

/// `serve` with HTTPS, sharing `keys` (a keys directory) and the server certificate in `pki`.
fn replica(policy: &Path, keys: &Path, pki: &Path, extra: &[&str]) -> Gateway {
    let data = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = [
        "serve",
        "--keys-dir",
        &keys.display().to_string(),
        "--data-dir",
        &data.path().display().to_string(),
        "--config",
        &policy.display().to_string(),
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        &pki.join("server.pem").display().to_string(),
        "--tls-key",
        &pki.join("server-key.pem").display().to_string(),
        "--admin",
        "127.0.0.1:0",
        "--insecure-otp-outbox",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut gw = Gateway::spawn(&args, &["https", "admin"]);
    gw.data_dir = Some(data);
    gw
}

fn keys_dir(parent: &Path, name: &str) -> std::path::PathBuf {
    let dir = parent.join(name);
    let out = Command::new(BIN).args(["keys", "generate", "--dir"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    dir
}

/// A client that remembers sessions (rustls keeps tickets per server name), like a browser or
/// a mobile app's HTTP stack.
fn client(ca_pem: &str) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls_pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap()).unwrap();
    let mut config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// One request on a new connection; how its handshake went. The request is answered after the
/// server's tickets, so the client has them when this returns.
async fn visit(connector: &tokio_rustls::TlsConnector, gw: &Gateway) -> HandshakeKind {
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let stream = connector.connect(name, tcp(gw.addr("https")).await).await.expect("TLS handshake");
    let kind = stream.get_ref().1.handshake_kind().expect("handshake done");
    let resp = h1(stream, get("/nowhere")).await;
    assert_eq!(resp.status, 404, "a JSON 404 over the connection");
    kind
}

#[tokio::test]
async fn a_returning_client_resumes_on_any_replica_sharing_the_keys_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new("resumption test CA");
    ca.leaf("localhost", true, (2025, 2035), 1).write(tmp.path(), "server");
    let policy = policy_dir(GATEWAY, &routes(""));
    let shared = keys_dir(tmp.path(), "shared");
    let (a, b) = (replica(policy.path(), &shared, tmp.path(), &[]), replica(policy.path(), &shared, tmp.path(), &[]));
    let stranger = replica(policy.path(), &keys_dir(tmp.path(), "other"), tmp.path(), &[]);

    let phone = client(&ca.pem);
    assert_eq!(visit(&phone, &a).await, HandshakeKind::Full, "first visit: a full handshake");
    assert_eq!(visit(&phone, &a).await, HandshakeKind::Resumed, "the same replica resumes");
    assert_eq!(visit(&phone, &b).await, HandshakeKind::Resumed, "another replica opens the ticket");
    assert_ne!(visit(&phone, &stranger).await, HandshakeKind::Resumed, "other keys: a full handshake");

    let scrape = |gw: &Gateway| {
        let addr = gw.addr("admin");
        async move { get_h1(addr, "/metrics").await.text() }
    };
    let (ma, mb, ms) = (scrape(&a).await, scrape(&b).await, scrape(&stranger).await);
    let kind = |text: &str, k: &str| metric(text, "otpgate_tls_handshakes_total", &[("kind", k)]);
    assert_eq!((kind(&ma, "full"), kind(&ma, "resumed")), (1.0, 1.0), "{ma}");
    assert_eq!((kind(&mb, "full"), kind(&mb, "resumed")), (0.0, 1.0), "{mb}");
    assert_eq!((kind(&ms, "full"), kind(&ms, "resumed")), (1.0, 0.0), "{ms}");
    let not_after = metric(&ma, "otpgate_tls_certificate_not_after_seconds", &[]);
    assert_eq!(not_after, 2_051_222_400.0, "notAfter of the test certificate (2035-01-01T00:00:00Z)");
}

#[tokio::test]
async fn without_tickets_a_session_resumes_only_where_it_began() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new("resumption test CA");
    ca.leaf("localhost", true, (2025, 2035), 1).write(tmp.path(), "server");
    let policy = policy_dir(GATEWAY, &routes(""));
    let shared = keys_dir(tmp.path(), "shared");
    let off = ["--no-tls-tickets"];
    let (a, b) = (replica(policy.path(), &shared, tmp.path(), &off), replica(policy.path(), &shared, tmp.path(), &off));
    let phone = client(&ca.pem);
    assert_eq!(visit(&phone, &a).await, HandshakeKind::Full);
    assert_eq!(visit(&phone, &a).await, HandshakeKind::Resumed, "the replica's session cache");
    assert_ne!(visit(&phone, &b).await, HandshakeKind::Resumed, "no shared tickets: a full handshake");
}
