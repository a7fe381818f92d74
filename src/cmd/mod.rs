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

/// Where state lives and which replica this is: the flags `serve` and `demo` share.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Shared state store: `memory` (one replica), `redis://host:port/db`, `rediss://…` (TLS), or
    /// a Redis Cluster as `redis+cluster://host:port,host:port` (`rediss+cluster://…`).
    #[arg(long, env = "OTPGATE_STORE", default_value = "memory")]
    pub store: String,
    /// Namespace of every key in the shared store (several gateways can share one Redis).
    #[arg(long, env = "OTPGATE_STORE_PREFIX", default_value = "otpgate:")]
    pub store_prefix: String,
    /// With `--store memory`: live counters (send caps, failure counts, quota windows) held at
    /// most. Beyond it new keys are refused (503), never an old count forgotten.
    #[arg(long, env = "OTPGATE_MEMORY_COUNTER_CAP", default_value_t = crate::store::memory::WINDOW_CAP)]
    pub memory_counter_cap: usize,
    /// This replica's name: its audit log is DATA_DIR/audit/<ID>/. Default with a shared store:
    /// the host name (a pod's name on Kubernetes); without one, the log is DATA_DIR/audit.log.
    #[arg(long, env = "OTPGATE_REPLICA_ID")]
    pub replica_id: Option<String>,
}

impl StoreArgs {
    /// The store the flags name (connected lazily).
    pub fn open(&self) -> Result<crate::store::Store, String> {
        if self.store == "memory" {
            let cap = self.memory_counter_cap.max(16);
            let store = crate::store::MemoryStore::with_caps(cap, (cap / 20).clamp(16, crate::store::memory::SET_CAP));
            return Ok(crate::store::Store::Memory(std::sync::Arc::new(store)));
        }
        crate::store::Store::open(&self.store, &self.store_prefix, Default::default())
            .map_err(|e| format!("--store: {}", e.0))
    }

    /// The directory of this replica's audit log.
    pub fn audit_dir(&self, data_dir: &std::path::Path) -> Result<std::path::PathBuf, String> {
        match self.replica()? {
            None => Ok(data_dir.to_path_buf()),
            Some(id) => Ok(data_dir.join("audit").join(id)),
        }
    }

    /// This replica's name: `--replica-id`, else the host name with a shared store, else none.
    pub fn replica(&self) -> Result<Option<String>, String> {
        let id = match &self.replica_id {
            Some(id) => id.clone(),
            None if self.store == "memory" => return Ok(None),
            None => host_name().ok_or("--replica-id: give one (the host name is unknown)")?,
        };
        let valid = (1..=64).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            && !id.starts_with('.');
        if !valid {
            return Err(format!("--replica-id: `{id}` is not 1-64 of A-Z a-z 0-9 . _ - (not starting with .)"));
        }
        Ok(Some(id))
    }
}

/// The audit trail's retention: the flags `serve` and `demo` share.
///
/// Rotated files (64 MiB each) older than `--audit-keep-days` are removed; `--audit-keep-files`
/// also caps their number (size the cap from the volume: files × 64 MiB well under its size).
/// Each removal is recorded in the chain first, logged and counted
/// (`otpgate_audit_files_removed_total`); the current file is never removed.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// Keep at most N rotated audit files, removing the oldest first (0: no count limit).
    #[arg(long, env = "OTPGATE_AUDIT_KEEP_FILES", default_value_t = 0)]
    pub audit_keep_files: usize,
    /// Remove rotated audit files last written more than D days ago (0: keep them forever). The
    /// default keeps a year and a month, as long as the shared access index keeps citizens' entries.
    #[arg(long, env = "OTPGATE_AUDIT_KEEP_DAYS", default_value_t = 400)]
    pub audit_keep_days: u64,
}

impl AuditArgs {
    /// The log options these flags (and the replica's name) give.
    pub fn options(&self, replica: Option<String>) -> crate::audit::LogOptions {
        let keep_for = (self.audit_keep_days > 0)
            .then(|| std::time::Duration::from_secs(self.audit_keep_days.saturating_mul(86_400)));
        crate::audit::LogOptions { keep_files: self.audit_keep_files, keep_for, replica, ..Default::default() }
    }
}

fn host_name() -> Option<String> {
    let name = std::env::var("HOSTNAME").ok().filter(|h| !h.trim().is_empty());
    let name = name.or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok());
    name.map(|h| h.trim().to_string()).filter(|h| !h.is_empty())
}

/// Open the durable audit trail of this replica in the data dir.
pub async fn open_audit(
    data_dir: &std::path::Path,
    state: &StoreArgs,
    audit: &AuditArgs,
    key: &[u8],
) -> Result<crate::audit::Trail, String> {
    let dir = state.audit_dir(data_dir)?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    crate::audit::Trail::open(&dir, key, audit.options(state.replica()?)).await.map_err(|e| e.to_string())
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
