//! The commands of the `otpgate` binary. `main.rs` only parses arguments and dispatches here.

pub mod audit;
pub mod check;
pub mod demo;
pub mod serve;

use std::io::Write;

/// Print a `listening NAME URL` line on stdout (tests and scripts read these).
pub fn announce(name: &str, url: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening {name} {url}");
    let _ = out.flush();
}

/// Open the durable audit trail in `data_dir`.
pub async fn open_audit(data_dir: &std::path::Path, key: &[u8]) -> Result<crate::audit::Trail, String> {
    crate::audit::Trail::open(data_dir, key).await.map_err(|e| e.to_string())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => tracing::info!("SIGTERM received"),
                        _ = int.recv() => tracing::info!("SIGINT received"),
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
