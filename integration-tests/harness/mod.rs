//! Test harness: the real `otpgate` binary on `127.0.0.1:0` ports, real clients (hyper HTTP/1.1,
//! HTTP/2 prior knowledge, rustls TLS with ALPN, raw TCP) and a programmable upstream.

#![allow(dead_code)]

pub mod pki;
pub mod upstream;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub const BIN: &str = env!("CARGO_BIN_EXE_otpgate");

/// A running `otpgate` process. Killed on drop.
pub struct Gateway {
    child: Child,
    pub urls: HashMap<String, String>,
    stderr: Arc<Mutex<String>>,
    pub data_dir: Option<tempfile::TempDir>,
}

impl Gateway {
    /// `otpgate demo` on ephemeral ports with a fresh data dir.
    pub fn demo(extra: &[&str]) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut args = vec![
            "demo".to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--admin".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            dir.path().display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut names = vec!["registry", "https", "admin"];
        if extra.contains(&"--listen-plain") {
            names.push("http");
        }
        let mut gw = Gateway::spawn(&args, &names);
        gw.data_dir = Some(dir);
        gw
    }

    /// `otpgate serve` with a plain listener and admin, from a policy dir, with fresh keys
    /// (`otpgate keys generate`) and a fresh data dir. Test policies may deliver OTPs to an
    /// outbox file (`--insecure-otp-outbox`).
    pub fn serve(config: &Path, extra: &[&str]) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("keys");
        let out = Command::new(BIN).args(["keys", "generate", "--dir"]).arg(&keys).output().expect("keys generate");
        assert!(out.status.success(), "keys generate: {}", String::from_utf8_lossy(&out.stderr));
        let mut args = vec![
            "serve".to_string(),
            "--keys-dir".into(),
            keys.display().to_string(),
            "--data-dir".into(),
            dir.path().display().to_string(),
            "--config".into(),
            config.display().to_string(),
            "--listen-plain".into(),
            "127.0.0.1:0".into(),
            "--admin".into(),
            "127.0.0.1:0".into(),
            "--insecure-otp-outbox".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut names = vec!["http", "admin"];
        if extra.contains(&"--listen") {
            names.push("https");
        }
        let mut gw = Gateway::spawn(&args, &names);
        gw.data_dir = Some(dir);
        gw
    }

    /// `otpgate demo` as the README runs it: from its own working directory, with the default
    /// relative data dir `otpgate-demo-data`.
    pub fn demo_in_cwd() -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let args: Vec<String> =
            ["demo", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"].iter().map(|s| s.to_string()).collect();
        let mut gw = Gateway::spawn_in(Some(dir.path()), &args, &["registry", "https", "admin"]);
        gw.data_dir = Some(dir);
        gw
    }

    /// Spawn with `args` and wait for a `listening NAME URL` line for each of `names`.
    pub fn spawn(args: &[String], names: &[&str]) -> Gateway {
        Gateway::spawn_in(None, args, names)
    }

    /// Like `spawn`, with extra environment variables for the child.
    pub fn spawn_with_env(args: &[String], names: &[&str], env: &[(&str, String)]) -> Gateway {
        let args: Vec<String> = args.iter().filter(|a| !a.starts_with("--env=")).cloned().collect();
        Gateway::spawn_full(None, &args, names, env)
    }

    pub fn spawn_in(cwd: Option<&Path>, args: &[String], names: &[&str]) -> Gateway {
        Gateway::spawn_full(cwd, args, names, &[])
    }

    fn spawn_full(cwd: Option<&Path>, args: &[String], names: &[&str], env: &[(&str, String)]) -> Gateway {
        let mut cmd = Command::new(BIN);
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd
            .args(args)
            .env("OTPGATE_LOG", "info")
            .env_remove("OTPGATE_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn otpgate");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        // Keep draining stdout for the process's whole life, as a terminal would.
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut urls = HashMap::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !names.iter().all(|n| urls.contains_key(*n)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let parts: Vec<&str> = line.split_whitespace().collect();
                    if let ["listening", name, url] = parts.as_slice() {
                        urls.insert(name.to_string(), url.to_string());
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("otpgate did not announce {names:?}; stderr:\n{}", stderr.lock().unwrap());
                }
            }
        }
        Gateway { child, urls, stderr, data_dir: None }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory of the process (VmHWM), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    }

    pub fn url(&self, name: &str) -> &str {
        self.urls.get(name).unwrap_or_else(|| panic!("no listener {name}"))
    }

    pub fn addr(&self, name: &str) -> SocketAddr {
        let url = self.url(name);
        url.split("://").nth(1).unwrap().parse().unwrap()
    }

    pub fn data_path(&self, file: &str) -> PathBuf {
        self.data_dir.as_ref().expect("data dir").path().join(file)
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args(["-s", sig, &self.child.id().to_string()]).status().unwrap();
        assert!(ok.success(), "kill -s {sig}");
    }

    /// Wait for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response, fully read.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub version: http::Version,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Assert the documented error shape and return the code.
    pub fn error_code(&self) -> String {
        assert_eq!(self.headers["content-type"], "application/json", "status {}", self.status);
        let v = self.json();
        let obj = v.as_object().expect("error is an object");
        assert_eq!(obj.len(), 3, "errorCode, error, requestId: {v}");
        assert!(v["error"].is_string() && v["requestId"].is_string(), "{v}");
        v["errorCode"].as_str().expect("errorCode").to_string()
    }
}

pub fn get(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri).body(Full::new(Bytes::new())).unwrap()
}

async fn collect(resp: http::Response<hyper::body::Incoming>) -> Resp {
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    Resp { status: parts.status.as_u16(), headers: parts.headers, body, version: parts.version }
}

/// One request over a new HTTP/1.1 connection (origin-form target taken from `req`'s URI).
pub async fn h1<IO: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: IO, req: Request<Full<Bytes>>) -> Resp {
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.expect("h1 handshake");
    tokio::spawn(conn);
    collect(send.send_request(req).await.expect("h1 request")).await
}

/// One request over a new HTTP/2 connection.
pub async fn h2<IO: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: IO, req: Request<Full<Bytes>>) -> Resp {
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io)).await.expect("h2 handshake");
    tokio::spawn(conn);
    collect(send.send_request(req).await.expect("h2 request")).await
}

/// `otpgate check --config DIR` with `extra` flags: (exit ok, stdout, stderr).
pub fn check_policy(dir: &Path, extra: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let out = Command::new(BIN).args(["check", "--config"]).arg(dir).args(extra).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// A connection from a chosen loopback source address (127.0.0.2, 127.0.0.3, …: "another
/// address" for per-source limits).
pub async fn tcp_from(src: &str, addr: SocketAddr) -> TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(src.parse().unwrap(), 0)).unwrap();
    sock.connect(addr).await.unwrap()
}

pub async fn tcp(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connect")
}

/// `GET path` over HTTP/1.1 with a Host header.
pub async fn get_h1(addr: SocketAddr, path: &str) -> Resp {
    let req = Request::get(path).header("host", addr.to_string()).body(Full::new(Bytes::new())).unwrap();
    h1(tcp(addr).await, req).await
}

/// TLS to `addr`, trusting only the CA in `ca_pem`, offering `alpn`.
pub async fn tls(addr: SocketAddr, ca_pem: &Path, alpn: &[&[u8]]) -> tokio_rustls::client::TlsStream<TcpStream> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca_pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp(addr).await).await.expect("TLS handshake")
}

/// Read `sock` up to the end of an HTTP head (`\r\n\r\n`, at most 64 KiB), byte by byte so
/// nothing after it is consumed; `None` if the peer closes first or the head is longer.
pub async fn read_head(sock: &mut TcpStream) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= 64 << 10 || sock.read_exact(&mut byte).await.is_err() {
            return None;
        }
        head.push(byte[0]);
    }
    Some(head)
}

/// Send raw bytes, read until the peer closes or 5 s pass; return what was read.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = tcp(addr).await;
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Status code of a raw HTTP/1.1 response.
pub fn raw_status(resp: &str) -> u16 {
    resp.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {resp:?}"))
}

/// Poll `f` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Write a policy dir: `gateway.yaml` from `gateway` and `routes.yaml` from `routes`.
pub fn policy_dir(gateway: &str, routes: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gateway.yaml"), gateway).unwrap();
    std::fs::write(dir.path().join("routes.yaml"), routes).unwrap();
    dir
}

/// Value of one sample line of Prometheus text, e.g. `otpgate_requests_total{route="x",…}`.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A copy of the shipped policy directory (`policies/*.yaml`), each file's text with `edits`
/// (`(from, to)`) applied; every edit must apply somewhere.
pub fn shipped_policy(edits: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut applied = vec![false; edits.len()];
    for entry in std::fs::read_dir(&shipped).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let mut text = std::fs::read_to_string(&path).unwrap();
            for (i, (from, to)) in edits.iter().enumerate() {
                if text.contains(from) {
                    applied[i] = true;
                    text = text.replace(from, to);
                }
            }
            std::fs::write(dir.path().join(path.file_name().unwrap()), text).unwrap();
        }
    }
    assert!(applied.iter().all(|a| *a), "an edit of the shipped policy found nothing to replace: {edits:?}");
    dir
}
