//! Listeners, the accept loop, per-connection HTTP/1.1 + HTTP/2 serving with the limits of the
//! current policy, and draining.
//!
//! Drain (SIGTERM/SIGINT): `/readyz` turns false, listeners close (new connections are refused),
//! every open connection is asked to finish (HTTP/1.1: close after the response in flight;
//! HTTP/2: GOAWAY), and the process waits up to `timeouts.drain` for them.

pub mod admin;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::app::{App, Background, Tracker};
use crate::auth::partner::ClientCert;
use crate::body::Body;
use crate::pipeline::{self, ConnInfo};

/// What a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Gateway,
    Admin,
}

/// Whether and how a listener speaks TLS. The configs come from the current policy snapshot at
/// each accept, so partner CA and CRL changes apply to new connections as soon as they load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    None,
    /// Client certificates optional (citizens present none; partners do).
    Shared,
    /// Client certificates required: the handshake fails without a valid partner certificate.
    PartnerOnly,
}

/// A listener to open.
pub struct ListenerSpec {
    /// Shown in the `listening` line: `https`, `http`, `partner`, `admin`.
    pub name: &'static str,
    pub addr: SocketAddr,
    pub tls: Tls,
    pub role: Role,
}

struct Bound {
    name: &'static str,
    listener: TcpListener,
    tls: Tls,
    role: Role,
}

/// Bound listeners, ready to serve.
pub struct Server {
    app: Arc<App>,
    bound: Vec<Bound>,
}

impl Server {
    pub async fn bind(app: Arc<App>, specs: Vec<ListenerSpec>) -> std::io::Result<Server> {
        let mut bound = Vec::new();
        for spec in specs {
            let listener = TcpListener::bind(spec.addr).await.map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen on {} ({}): {e}", spec.addr, spec.name))
            })?;
            bound.push(Bound { name: spec.name, listener, tls: spec.tls, role: spec.role });
        }
        Ok(Server { app, bound })
    }

    /// `(name, url)` of each listener, with the real port.
    pub fn urls(&self) -> Vec<(&'static str, String)> {
        self.bound
            .iter()
            .filter_map(|b| {
                let addr = b.listener.local_addr().ok()?;
                let scheme = if b.tls == Tls::None { "http" } else { "https" };
                Some((b.name, format!("{scheme}://{addr}")))
            })
            .collect()
    }

    /// Serve until `shutdown` resolves, then drain.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let (drain_tx, drain_rx) = watch::channel(false);
        let connections = Background::default();
        let mut admin_stop = Vec::new();
        for b in self.bound {
            let (stop_tx, stop_rx) = watch::channel(false);
            let stop = if b.role == Role::Admin {
                admin_stop.push(stop_tx);
                stop_rx
            } else {
                drop(stop_tx);
                drain_rx.clone()
            };
            let tracked = (b.role == Role::Gateway).then(|| connections.tracker());
            tokio::spawn(accept_loop(self.app.clone(), b, stop, tracked));
        }
        shutdown.await;

        self.app.start_draining();
        let drain = self.app.snapshot().policy.timeouts.drain;
        tracing::info!(drain_seconds = drain.as_secs(), "draining: refusing new connections");
        let _ = drain_tx.send(true);
        if connections.wait(drain).await {
            tracing::info!("drained: all connections closed");
        } else {
            tracing::warn!("drain period over; closing remaining connections");
        }
        // Streams cut by the drain end now; their completion records are written before exit.
        if !self.app.background.wait(Duration::from_secs(5)).await {
            tracing::warn!("completion audit records still pending at exit");
        }
        for s in admin_stop {
            let _ = s.send(true);
        }
    }
}

/// Accept until `stop`; gateway connections are spawned through `tracked` (drain waits for them).
async fn accept_loop(app: Arc<App>, b: Bound, mut stop: watch::Receiver<bool>, tracked: Option<Tracker>) {
    // Open connections of this listener: each listener has its own cap, so a flood on the public
    // port does not lock partners out of theirs.
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        // At the connection cap, accept nothing: new clients wait in the listen backlog (and the
        // kernel refuses them once it is full) instead of costing memory here.
        if b.role == Role::Gateway {
            while open.load(Ordering::Relaxed) >= app.snapshot().policy.limits.max_connections {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        }
        let accepted = tokio::select! {
            a = b.listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
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
        let app = app.clone();
        let tls = b.tls;
        let stop = stop.clone();
        let role = b.role;
        let counted = (role == Role::Gateway).then(|| OpenConnection::new(&open));
        let served = async move {
            connection(app, tcp, peer, tls, role, stop).await;
            drop(counted);
        };
        match &tracked {
            Some(t) => t.spawn(served),
            None => {
                tokio::spawn(served);
            }
        }
    }
    // Dropping the listener here refuses new connections.
}

async fn connection(
    app: Arc<App>,
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Tls,
    role: Role,
    stop: watch::Receiver<bool>,
) {
    app.metrics.connections.inc();
    let rt = app.snapshot();
    let header_read = rt.policy.timeouts.header_read;
    let config = match tls {
        Tls::None => None,
        Tls::Shared => rt.tls_shared.clone(),
        Tls::PartnerOnly => rt.tls_partner.clone(),
    };
    let generation = rt.generation;
    drop(rt);
    match (tls, config) {
        (Tls::None, _) => serve(app.clone(), tcp, ConnInfo { peer, tls: false, client_cert: None }, role, stop).await,
        (_, None) => tracing::error!("TLS listener without a TLS configuration; connection closed"),
        (_, Some(config)) => match tokio::time::timeout(header_read, TlsAcceptor::from(config).accept(tcp)).await {
            Ok(Ok(stream)) => {
                let client_cert = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| ClientCert::from_chain(chain, generation))
                    .map(Arc::new);
                serve(app.clone(), stream, ConnInfo { peer, tls: true, client_cert }, role, stop).await
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!("TLS handshake timed out"),
        },
    }
    app.metrics.connections.dec();
}

/// Requests in flight on one connection and when the last one started (for the idle timeout).
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
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

/// One open client connection of a gateway listener, counted against its cap while it lives.
struct OpenConnection(Arc<AtomicUsize>);

impl OpenConnection {
    fn new(open: &Arc<AtomicUsize>) -> OpenConnection {
        open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(open.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
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

async fn serve<IO>(app: Arc<App>, io: IO, info: ConnInfo, role: Role, mut stop: watch::Receiver<bool>)
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
    drop(rt);

    let activity =
        Arc::new(Activity { opened: Instant::now(), in_flight: AtomicUsize::new(0), last_ms: AtomicU64::new(0) });
    let info = Arc::new(info);
    let svc = {
        let activity = activity.clone();
        service_fn(move |req: Request<Incoming>| {
            let app = app.clone();
            let info = info.clone();
            let in_flight = activity.start();
            async move {
                let resp: Response<Body> = match role {
                    Role::Gateway => pipeline::handle(app, info, req).await,
                    Role::Admin => admin::handle(app, req).await,
                };
                drop(in_flight);
                Ok::<_, Infallible>(resp)
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
            _ = stop.wait_for(|s| *s), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = idle_tick.tick(), if !closing => {
                if activity.idle_for().is_some_and(|idle| idle >= keep_alive) {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
