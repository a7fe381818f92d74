//! The registry's listener: HTTP/1.1 and HTTP/2 with prior knowledge on one port
//! (`hyper_util::server::conn::auto`), graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use super::Registry;

/// How long shutdown waits for open connections (e.g. a long export) before returning.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve `registry` on `listener` until `shutdown` resolves, then stop accepting, let open
/// connections finish (at most [`DRAIN_TIMEOUT`]) and return. Accept errors (e.g. out of file
/// descriptors) are logged and retried after a short pause; they do not end the server.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    // A client may send the gateway 100 headers; the gateway adds its forwarding headers on top.
    builder.http1().max_headers(200);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "registry: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "registry: set_nodelay failed");
        }
        let registry = registry.clone();
        let service = service_fn(move |req: hyper::Request<Incoming>| {
            let registry = registry.clone();
            async move { Ok::<_, Infallible>(registry.handle(req).await) }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "registry: connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("registry: connections still open after the drain timeout");
    }
    Ok(())
}
