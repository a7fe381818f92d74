//! Upstream connections, kept alive and reused: one pool per upstream of the compiled policy.
//!
//! HTTP/1.1 connections are lent to one request at a time. A connection goes back to its pool
//! when the answer's body has been read to its end ([`PooledBody`]); an answer dropped before
//! its end takes its connection with it (hyper closes it: the rest of that body cannot be told
//! apart from the next answer). The most recently returned connection is lent first, so a quiet
//! period lets the others age out; those idle longer than the idle timeout are closed, by the
//! next request or by the reaper. An HTTPS upstream that negotiates HTTP/2 (ALPN) is reached over
//! one shared connection, multiplexed.
//!
//! A request sent on a reused connection that the upstream had closed meanwhile (an idle
//! timeout racing the request) is sent again on another connection — only when hyper hands it
//! back unsent, so nothing is ever sent twice.
//!
//! Why not hyper-util's pooled client: it spawned a task per HTTP/1 request to return the
//! connection, keyed every checkout by scheme and authority, and rebuilt absolute URIs it then
//! turned back into origin form — a quarter of a pass-through request's instructions
//! (BENCHMARKS.md).

use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, Uri, header};
use http_body_util::Full;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::client::conn::{http1, http2};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::{Connection as _, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use parking_lot::Mutex;
use tokio::time::Instant;
use tower_service::Service as _;

use super::UpstreamFailure;

type Connector = HttpsConnector<HttpConnector>;

/// Where one upstream is, and its idle connections.
pub struct Host {
    /// `scheme://authority/`, what the connector dials.
    base: Uri,
    host: HeaderValue,
    idle_timeout: Duration,
    /// Idle HTTP/1.1 connections, the most recently returned last.
    idle: Mutex<Vec<Idle>>,
    /// The shared HTTP/2 connection, once one was negotiated.
    h2: Mutex<Option<http2::SendRequest<Full<Bytes>>>>,
}

struct Idle {
    sender: http1::SendRequest<Full<Bytes>>,
    since: Instant,
}

impl Host {
    pub fn new(scheme: &http::uri::Scheme, authority: &http::uri::Authority, idle_timeout: Duration) -> Option<Self> {
        let base =
            Uri::builder().scheme(scheme.clone()).authority(authority.clone()).path_and_query("/").build().ok()?;
        let host = HeaderValue::from_str(authority.as_str()).ok()?;
        Some(Host { base, host, idle_timeout, idle: Mutex::new(Vec::new()), h2: Mutex::new(None) })
    }

    /// The most recently returned live connection; the expired and closed ones are dropped.
    fn checkout(&self) -> Option<Lent> {
        if let Some(h2) = self.h2.lock().as_ref().filter(|s| !s.is_closed()) {
            return Some(Lent::H2(h2.clone()));
        }
        let now = Instant::now();
        let mut idle = self.idle.lock();
        self.expire(&mut idle, now);
        while let Some(conn) = idle.pop() {
            if !conn.sender.is_closed() {
                return Some(Lent::H1(conn.sender));
            }
        }
        None
    }

    fn give_back(&self, sender: http1::SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.idle.lock();
        self.expire(&mut idle, now);
        idle.push(Idle { sender, since: now });
    }

    /// Close the connections idle for longer than the idle timeout (the oldest are first).
    fn expire(&self, idle: &mut Vec<Idle>, now: Instant) {
        let expired = idle.iter().take_while(|c| now.duration_since(c.since) >= self.idle_timeout).count();
        idle.drain(..expired);
    }

    /// Idle connections right now.
    pub fn idle_count(&self) -> usize {
        self.idle.lock().len()
    }
}

/// A connection lent to one request.
enum Lent {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// The connections of every upstream of one compiled policy, and the connector that opens them.
pub struct Pool {
    connector: Connector,
    hosts: Vec<Arc<Host>>,
}

impl Pool {
    /// A pool over `hosts` (indexed as the policy's upstreams). Within a runtime, a reaper closes
    /// idle connections past their timeout even when no request comes; it ends with the pool.
    pub fn new(connector: Connector, hosts: Vec<Arc<Host>>) -> Arc<Self> {
        let pool = Arc::new(Pool { connector, hosts });
        let shortest = pool.hosts.iter().map(|h| h.idle_timeout).min();
        if let (Ok(rt), Some(every)) = (tokio::runtime::Handle::try_current(), shortest) {
            rt.spawn(reap(Arc::downgrade(&pool), every.max(Duration::from_secs(1))));
        }
        pool
    }

    pub fn host(&self, upstream: usize) -> Option<&Arc<Host>> {
        self.hosts.get(upstream)
    }

    /// Send `req` (origin form, no `Host`: the pool adds what the connection needs) to upstream
    /// `upstream`: on a pooled connection when one is idle, else on a new one. A pooled
    /// connection found closed before the request was written is dropped and the request sent on
    /// the next.
    pub async fn send(
        &self,
        upstream: usize,
        mut req: Request<Full<Bytes>>,
    ) -> Result<Response<PooledBody>, UpstreamFailure> {
        let host = self.hosts.get(upstream).ok_or(UpstreamFailure::Protocol)?;
        loop {
            let (lent, reused) = match host.checkout() {
                Some(lent) => (lent, true),
                // Boxed: connecting (TLS, an HTTP/2 handshake) takes a large future, and every
                // request's future would carry its size (copied as the request moves).
                None => (Box::pin(self.connect(host)).await?, false),
            };
            match lent {
                Lent::H2(mut sender) => {
                    // hyper sends `:scheme` and `:authority` from an absolute URI.
                    let mut parts = host.base.clone().into_parts();
                    parts.path_and_query = req.uri().path_and_query().cloned();
                    *req.uri_mut() = Uri::from_parts(parts).map_err(|_| UpstreamFailure::Protocol)?;
                    if sender.ready().await.is_err() {
                        if reused {
                            // Gone since it was lent (GOAWAY, a reset): forget it, try anew.
                            host.h2.lock().take();
                            continue;
                        }
                        return Err(UpstreamFailure::Connect);
                    }
                    let resp = sender.send_request(req).await.map_err(|_| UpstreamFailure::Protocol)?;
                    return Ok(resp.map(|inner| PooledBody { inner, back: None, ended: false }));
                }
                Lent::H1(mut sender) => {
                    if sender.ready().await.is_err() {
                        if reused {
                            continue;
                        }
                        return Err(UpstreamFailure::Connect);
                    }
                    req.headers_mut().insert(header::HOST, host.host.clone());
                    match sender.try_send_request(req).await {
                        Ok(resp) => return Ok(PooledBody::lend(resp, sender, host)),
                        Err(mut e) => match e.take_message() {
                            // Never written: safe to send on another connection.
                            Some(unsent) if reused => req = unsent,
                            _ => return Err(UpstreamFailure::Protocol),
                        },
                    }
                }
            }
        }
    }

    /// Open a connection (TCP, TLS for `https`, within the connect timeout) and start it.
    async fn connect(&self, host: &Host) -> Result<Lent, UpstreamFailure> {
        let io = self.connector.clone().call(host.base.clone()).await.map_err(|e| {
            if caused_by_timeout(e.as_ref()) { UpstreamFailure::ConnectTimeout } else { UpstreamFailure::Connect }
        })?;
        if io.connected().is_negotiated_h2() {
            let (sender, conn) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(io)
                .await
                .map_err(|_| UpstreamFailure::Protocol)?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "upstream HTTP/2 connection ended with an error");
                }
            });
            *host.h2.lock() = Some(sender.clone());
            return Ok(Lent::H2(sender));
        }
        let (sender, conn) = http1::Builder::new().handshake(io).await.map_err(|_| UpstreamFailure::Protocol)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(Lent::H1(sender))
    }
}

/// Close idle connections past their timeout every `every`, until the pool is gone.
async fn reap(pool: Weak<Pool>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        let now = Instant::now();
        for host in &pool.hosts {
            host.expire(&mut host.idle.lock(), now);
        }
    }
}

/// Did connecting fail on a timeout (the connect timeout, or the system's)?
fn caused_by_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// An upstream answer's body. Read to its end, it returns its HTTP/1.1 connection to the pool.
pub struct PooledBody {
    inner: Incoming,
    back: Option<(http1::SendRequest<Full<Bytes>>, Arc<Host>)>,
    ended: bool,
}

impl PooledBody {
    fn lend(resp: Response<Incoming>, sender: http1::SendRequest<Full<Bytes>>, host: &Arc<Host>) -> Response<Self> {
        let ended = hyper::body::Body::is_end_stream(resp.body());
        let mut resp = resp.map(|inner| PooledBody { inner, back: Some((sender, host.clone())), ended });
        if ended {
            // Nothing to read (HEAD, 204, 304, an empty body): the connection is free now.
            resp.body_mut().give_back();
        }
        resp
    }

    fn give_back(&mut self) {
        if let Some((sender, host)) = self.back.take() {
            host.give_back(sender);
        }
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        if self.ended {
            self.give_back();
        }
    }
}

impl hyper::body::Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.ended = true,
            Poll::Ready(Some(Ok(_))) => this.ended = this.inner.is_end_stream(),
            Poll::Ready(Some(Err(_))) => this.back = None,
            Poll::Pending => {}
        }
        if this.ended {
            this.give_back();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests;
