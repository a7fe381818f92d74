//! Listeners, the accept loop, per-connection HTTP/1.1 + HTTP/2 serving with the limits of the
//! current policy, draining, and the background tasks of a serving gateway (reload, eviction).
//!
//! Drain (SIGTERM/SIGINT): `App::shutdown` is cancelled — `/readyz` turns false, listeners close
//! (new connections are refused), every open connection is asked to finish (HTTP/1.1: close
//! after the response in flight; HTTP/2: GOAWAY) — and the process waits up to `timeouts.drain`
//! for them, then for the work that outlives requests (completion audit records).

pub mod admin;
mod conn;
pub mod reload;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::runtime::App;

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
            let listener = listen(spec.addr).map_err(|e| {
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
        let app = self.app;
        let connections = TaskTracker::new();
        // The admin listener answers /readyz (false) and /metrics until the very end.
        let admin_stop = CancellationToken::new();
        for b in self.bound {
            let (stop, tracked) = match b.role {
                Role::Admin => (admin_stop.clone(), None),
                Role::Gateway => (app.shutdown.clone(), Some(connections.clone())),
            };
            tokio::spawn(conn::accept_loop(app.clone(), b, stop, tracked));
        }
        shutdown.await;

        app.shutdown.cancel();
        let drain = app.snapshot().policy.timeouts.drain;
        tracing::info!(drain_seconds = drain.as_secs(), "draining: refusing new connections");
        if wait(&connections, drain).await {
            tracing::info!("drained: all connections closed");
        } else {
            tracing::warn!("drain period over; closing remaining connections");
        }
        // Streams cut by the drain end now; their completion records are written before exit,
        // and so are the refusals counted since the last summary.
        if !wait(&app.tasks, Duration::from_secs(5)).await {
            tracing::warn!("completion audit records still pending at exit");
        }
        reload::flush_refusals(&app).await;
        admin_stop.cancel();
    }
}

/// Connections the kernel may hold for `accept` (std's default is 128: a burst of a thousand
/// clients connecting at once overflowed it). Capped by `net.core.somaxconn`.
const BACKLOG: u32 = 4096;

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Wait (at most `limit`) for every task of `tracker`; whether they all ended.
async fn wait(tracker: &TaskTracker, limit: Duration) -> bool {
    tracker.close();
    tokio::time::timeout(limit, tracker.wait()).await.is_ok()
}
