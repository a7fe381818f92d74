//! One listener's accept loop and each connection's life: TLS handshake (bounded by the header
//! read timeout), HTTP/1.1 or HTTP/2 with the current policy's limits, the idle timer, a client
//! that stops taking its answers, and a graceful close when the gateway drains.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Bound, Role, Tls, admin};
use crate::auth::partner::ClientCert;
use crate::body::Body;
use crate::pipeline::{self, ConnInfo};
use crate::runtime::App;

/// Accept until `stop`; gateway connections are spawned on `tracked` (the drain waits for them).
pub(super) async fn accept_loop(app: Arc<App>, b: Bound, stop: CancellationToken, tracked: Option<TaskTracker>) {
    // Open connections of this listener: each listener has its own cap, so a flood on the public
    // port does not lock partners out of theirs. At the cap, nothing is accepted: new clients
    // wait in the listen backlog (and the kernel refuses them once it is full) instead of
    // costing memory here.
    let cap = app.snapshot().policy.limits.max_connections;
    let open = Arc::new(Semaphore::new(cap));
    let mut granted = cap;
    loop {
        // A reload may change the cap; the semaphore follows (shrinking takes effect as
        // connections close).
        let wanted = app.snapshot().policy.limits.max_connections;
        if wanted > granted {
            open.add_permits(wanted - granted);
            granted = wanted;
        } else if wanted < granted {
            granted -= open.forget_permits(granted - wanted);
        }
        let permit = match b.role {
            Role::Admin => None,
            Role::Gateway => tokio::select! {
                p = open.clone().acquire_owned() => p.ok(),
                _ = stop.cancelled() => break,
            },
        };
        let accepted = tokio::select! {
            a = b.listener.accept() => a,
            _ = stop.cancelled() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors and similar: back off instead of spinning.
                tracing::warn!(listener = b.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let served = connection(app.clone(), tcp, peer, b.tls, b.role, stop.clone());
        // Boxed once here: the connection's future is large (hyper's state for both protocols,
        // TLS), and spawning it by value copied it several times per connection.
        let served = Box::pin(async move {
            served.await;
            drop(permit);
        });
        match &tracked {
            Some(t) => {
                t.spawn(served);
            }
            None => {
                tokio::spawn(served);
            }
        }
    }
    // Dropping the listener here refuses new connections.
}

async fn connection(app: Arc<App>, tcp: TcpStream, peer: SocketAddr, tls: Tls, role: Role, stop: CancellationToken) {
    app.metrics.connections.inc();
    let rt = app.snapshot();
    let header_read = rt.policy.timeouts.header_read;
    let config = match tls {
        Tls::None => None,
        Tls::Shared => rt.tls.shared.clone(),
        Tls::PartnerOnly => rt.tls.partner.clone(),
    };
    let generation = rt.generation;
    drop(rt);
    match (tls, config) {
        (Tls::None, _) => serve(app.clone(), tcp, ConnInfo { peer, tls: false, client_cert: None }, role, stop).await,
        (_, None) => tracing::error!("TLS listener without a TLS configuration; connection closed"),
        (_, Some(config)) => match tokio::time::timeout(header_read, TlsAcceptor::from(config).accept(tcp)).await {
            Ok(Ok(stream)) => {
                let resumed = stream.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
                app.metrics.tls_handshake(if resumed { "resumed" } else { "full" });
                let client_cert = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| ClientCert::from_chain(chain, generation))
                    .map(Arc::new);
                serve(app.clone(), stream, ConnInfo { peer, tls: true, client_cert }, role, stop).await
            }
            Ok(Err(e)) => {
                app.metrics.tls_handshake("failed");
                tracing::debug!(error = %e, "TLS handshake failed");
            }
            Err(_) => {
                app.metrics.tls_handshake("failed");
                tracing::debug!("TLS handshake timed out");
            }
        },
    }
    app.metrics.connections.dec();
}

/// Requests in flight on one connection and when the last one started (for the idle timeout),
/// and the answers being sent (for a client that stops taking them).
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    last_ms: AtomicU64,
    /// One mark per response body still alive: since when it has waited for the client to take
    /// its next frame (ms since `opened`), or `NOT_WAITING`.
    sending: parking_lot::Mutex<Vec<Weak<AtomicU64>>>,
}

/// A body's mark while hyper is waiting on the body itself (the upstream), or once it ended.
const NOT_WAITING: u64 = u64::MAX;

impl Activity {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn touch(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Watch a response body: from now until hyper asks for its first frame, and after each
    /// frame until hyper asks for the next, it waits for the client (HTTP/2 flow control, or a
    /// full socket buffer).
    fn watch(self: &Arc<Self>, body: Body) -> Body {
        let mark = Arc::new(AtomicU64::new(self.now_ms()));
        self.sending.lock().push(Arc::downgrade(&mark));
        Body::new(Watched { inner: body, mark, activity: self.clone() })
    }

    /// How long the answer that has waited longest for the client has waited.
    fn stalled_for(&self) -> Duration {
        let now = self.now_ms();
        let mut sending = self.sending.lock();
        sending.retain(|w| w.strong_count() > 0);
        let oldest = sending.iter().filter_map(Weak::upgrade).map(|m| m.load(Ordering::Relaxed)).min();
        match oldest {
            Some(since) if since != NOT_WAITING => Duration::from_millis(now.saturating_sub(since)),
            _ => Duration::ZERO,
        }
    }

    /// A request starts; it ends when the returned guard drops (also when hyper drops the
    /// request's future: a client's RST_STREAM or a closed connection).
    fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight(self.clone())
    }

    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Some(self.opened.elapsed().saturating_sub(last))
    }
}

/// One request in flight (see [`Activity::start`]).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body under watch (see [`Activity::watch`]).
struct Watched {
    inner: Body,
    mark: Arc<AtomicU64>,
    activity: Arc<Activity>,
}

impl hyper::body::Body for Watched {
    type Data = bytes::Bytes;
    type Error = crate::body::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        // A frame handed over waits for the client until hyper asks for the next one; a pending
        // or ended body waits for nobody.
        let mark = if matches!(polled, Poll::Ready(Some(Ok(_)))) { this.activity.now_ms() } else { NOT_WAITING };
        this.mark.store(mark, Ordering::Relaxed);
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

async fn serve<IO>(app: Arc<App>, io: IO, info: ConnInfo, role: Role, stop: CancellationToken)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let rt = app.snapshot();
    let p = &rt.policy;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper's own limits sit above the policy's so that the pipeline answers an excess with the
    // JSON error shape; only grossly oversized heads meet hyper's bare 431.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(p.timeouts.header_read)
        .max_headers(p.limits.max_headers.saturating_mul(2).max(100))
        .max_buf_size(p.limits.max_header_bytes.saturating_mul(2).max(16 << 10))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(p.h2_max_streams)
        .max_header_list_size(u32::try_from(p.limits.max_header_bytes.saturating_mul(2)).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20));
    let keep_alive = p.timeouts.keep_alive;
    // A client may take as long to accept a piece of an answer as to send its request.
    let stall = p.timeouts.request;
    drop(rt);

    let activity = Arc::new(Activity {
        opened: Instant::now(),
        in_flight: AtomicUsize::new(0),
        last_ms: AtomicU64::new(0),
        sending: parking_lot::Mutex::new(Vec::new()),
    });
    let info = Arc::new(info);
    let metrics_app = app.clone();
    let svc = {
        let activity = activity.clone();
        service_fn(move |req: Request<Incoming>| {
            let app = app.clone();
            let info = info.clone();
            let in_flight = activity.start();
            let activity = activity.clone();
            async move {
                let resp: Response<Body> = match role {
                    Role::Gateway => pipeline::handle(app, info, req).await,
                    Role::Admin => admin::handle(app, req).await,
                };
                drop(in_flight);
                Ok::<_, Infallible>(resp.map(|body| activity.watch(body)))
            }
        })
    };
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let mut closing = false;
    let mut idle_tick = tokio::time::interval(keep_alive.min(Duration::from_secs(1)));
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            _ = stop.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = idle_tick.tick() => {
                // A client that stops taking an answer (a window never opened, a socket never
                // read) would hold the answer's upstream connection for good: close it.
                if activity.stalled_for() >= stall {
                    metrics_app.metrics.stalled_closes.inc();
                    tracing::debug!("the client stopped taking its answer; connection closed");
                    break;
                }
                if !closing && activity.idle_for().is_some_and(|idle| idle >= keep_alive) {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
