//! Issue 14: a published CoWIN client (PyPI `cowin` 0.0.5), unmodified, runs against `otpgate demo`.
//! It calls `https://cdn-api.co-vin.in/api/v2/…`; the environment alone leads it to the demo: a
//! CONNECT proxy (HTTPS_PROXY) that opens only that host to the demo's HTTPS listener, the demo CA
//! (REQUESTS_CA_BUNDLE; the demo certificate names CoWIN's host), and fake_useragent's cached browser
//! list (TMPDIR), which it would otherwise download. `scripts/test.sh` installs the client in a venv
//! and sets COWIN_PYTHON to its interpreter.

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::harness::*;

/// A CONNECT proxy that tunnels `cdn-api.co-vin.in:443` to `to` and refuses anything else; the
/// CONNECT targets it was asked for.
async fn proxy(to: std::net::SocketAddr) -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let Some(head) = read_head(&mut client).await else { return };
                let line = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_string();
                let target = line.strip_prefix("CONNECT ").and_then(|r| r.split(' ').next()).unwrap_or("").to_string();
                log.lock().unwrap().push(target.clone());
                if target != "cdn-api.co-vin.in:443" {
                    let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n").await;
                    return;
                }
                let Ok(mut demo) = TcpStream::connect(to).await else { return };
                if client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut demo).await;
                }
            });
        }
    });
    (addr, asked)
}

fn sessions(doc: &Value) -> Vec<&Value> {
    doc["centers"].as_array().unwrap().iter().flat_map(|c| c["sessions"].as_array().unwrap()).collect()
}

#[tokio::test]
async fn a_published_cowin_client_runs_unmodified_against_the_demo() {
    let Some(python) = std::env::var_os("COWIN_PYTHON") else {
        eprintln!("COWIN_PYTHON is not set (scripts/test.sh sets it): the published client is not installed");
        return;
    };
    let gw = Gateway::demo(&[]);
    let (proxy, asked) = proxy(gw.addr("https")).await;
    let tmp = tempfile::tempdir().unwrap();
    let browsers = r#"{"randomize": {"0": "chrome"}, "browsers": {"chrome": ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/90.0.4430.93 Safari/537.36"]}}"#;
    std::fs::write(tmp.path().join("fake_useragent_0.1.11.json"), browsers).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("integration-tests/clients/cowin_public.py");
    let out = tokio::process::Command::new(python)
        .arg(&script)
        .env("HTTPS_PROXY", format!("http://{proxy}"))
        .env("REQUESTS_CA_BUNDLE", gw.data_path("ca.pem"))
        .env("TMPDIR", tmp.path())
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the client failed: {stderr}");
    let got: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert!(got["states"].as_u64().unwrap() > 0 && got["districts"].as_u64().unwrap() > 0, "{got}");
    let by_district = sessions(&got["by_district"]);
    assert!(!by_district.is_empty(), "{got}");
    for s in &by_district {
        for field in
            ["session_id", "available_capacity", "available_capacity_dose1", "min_age_limit", "vaccine", "slots"]
        {
            assert!(s.get(field).is_some(), "a session without {field}: {s}");
        }
    }
    let pin = got["by_district"]["centers"][0]["pincode"].clone();
    let centers = got["by_pin"]["centers"].as_array().unwrap();
    assert!(!centers.is_empty() && centers.iter().all(|c| c["pincode"] == pin), "calendarByPin: {got}");
    assert!(sessions(&got["adults"]).iter().all(|s| s["min_age_limit"] == 18), "the client's age filter");
    let asked = asked.lock().unwrap().clone();
    assert!(asked.len() >= 5 && asked.iter().all(|t| t == "cdn-api.co-vin.in:443"), "{asked:?}");
}
