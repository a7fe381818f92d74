//! OTP delivery behind a trait: `Outbox` (JSON lines file, optionally echoed on the console, for
//! `demo` and tests) and `Webhook` (POST to an SMS provider, bounded by a timeout).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, header};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncWriteExt;

use crate::policy::citizens::Delivery as DeliveryRule;

/// One OTP to deliver. `Debug` shows neither the number nor the OTP.
pub struct OtpMessage {
    pub mobile: String,
    pub txn_id: String,
    pub otp: String,
    pub time_ms: u64,
    pub validity: Duration,
}

impl std::fmt::Debug for OtpMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtpMessage").field("txn_id", &self.txn_id).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("outbox write failed: {0}")]
    Outbox(std::io::Error),
    #[error("SMS provider did not answer in time")]
    Timeout,
    #[error("SMS provider answered {0}")]
    Status(u16),
    #[error("SMS provider unreachable")]
    Unreachable,
}

pub type DeliveryFuture<'a> = Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>>;

/// Sends an OTP to a mobile. Implementations must not log the OTP or the number.
pub trait Delivery: Send + Sync {
    fn deliver<'a>(&'a self, msg: &'a OtpMessage) -> DeliveryFuture<'a>;
}

/// Build the delivery a policy asks for; relative outbox paths are under `data_dir`.
pub fn from_rule(rule: &DeliveryRule, console: bool, data_dir: &std::path::Path) -> Arc<dyn Delivery> {
    match rule {
        DeliveryRule::Outbox { path } => Arc::new(Outbox::new(data_dir.join(path), console)),
        DeliveryRule::Webhook { url, timeout } => Arc::new(Webhook::new(url.clone(), *timeout)),
    }
}

/// Appends `{"mobile","txnId","otp","time"}` lines to a file.
pub struct Outbox {
    path: PathBuf,
    console: bool,
    lock: tokio::sync::Mutex<()>,
}

impl Outbox {
    pub fn new(path: PathBuf, console: bool) -> Self {
        Outbox { path, console, lock: tokio::sync::Mutex::new(()) }
    }
}

impl Delivery for Outbox {
    fn deliver<'a>(&'a self, msg: &'a OtpMessage) -> DeliveryFuture<'a> {
        Box::pin(async move {
            let line = serde_json::json!({
                "mobile": msg.mobile,
                "txnId": msg.txn_id,
                "otp": msg.otp,
                "time": crate::clock::rfc3339(msg.time_ms),
            })
            .to_string()
                + "\n";
            let _guard = self.lock.lock().await;
            // Plain-text OTPs: readable by the gateway's user only.
            let mut f = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&self.path)
                .await
                .map_err(DeliveryError::Outbox)?;
            // A file that existed before keeps no wider mode than a new one gets.
            f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .await
                .map_err(DeliveryError::Outbox)?;
            f.write_all(line.as_bytes()).await.map_err(DeliveryError::Outbox)?;
            f.flush().await.map_err(DeliveryError::Outbox)?;
            if self.console {
                // The demo's stand-in for an SMS: stdout, not the log stream.
                // A closed or full stdout must never fail (or panic) a delivery the outbox made.
                use std::io::Write;
                let masked = format!("******{}", &msg.mobile[msg.mobile.len().saturating_sub(4)..]);
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "sms {masked}: your OTP is {} (txn {})", msg.otp, msg.txn_id);
                let _ = out.flush();
            }
            Ok(())
        })
    }
}

/// POSTs `{"to","message","txnId"}` to an SMS provider; any non-2xx answer is a failure.
pub struct Webhook {
    url: http::Uri,
    timeout: Duration,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Webhook {
    pub fn new(url: http::Uri, timeout: Duration) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        let tls = match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
            Ok(b) => b.https_or_http().enable_http1().wrap_connector(http),
            Err(_) => {
                let config = rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth();
                hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(config)
                    .https_or_http()
                    .enable_http1()
                    .wrap_connector(http)
            }
        };
        Webhook { url, timeout, client: Client::builder(TokioExecutor::new()).build(tls) }
    }
}

impl Delivery for Webhook {
    fn deliver<'a>(&'a self, msg: &'a OtpMessage) -> DeliveryFuture<'a> {
        Box::pin(async move {
            let minutes = msg.validity.as_secs().div_ceil(60);
            let body = serde_json::json!({
                "to": format!("+91{}", msg.mobile),
                "message": format!("{} is your OTP. It is valid for {minutes} minutes. Do not share it.", msg.otp),
                "txnId": msg.txn_id,
            });
            let req = Request::post(self.url.clone())
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body.to_string())))
                .map_err(|_| DeliveryError::Unreachable)?;
            match tokio::time::timeout(self.timeout, self.client.request(req)).await {
                Err(_) => Err(DeliveryError::Timeout),
                Ok(Err(_)) => Err(DeliveryError::Unreachable),
                Ok(Ok(resp)) if resp.status().is_success() => Ok(()),
                Ok(Ok(resp)) => Err(DeliveryError::Status(resp.status().as_u16())),
            }
        })
    }
}
