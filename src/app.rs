//! Application state shared by every connection: the current policy snapshot (hot-swapped),
//! metrics and the draining flag. No global mutable state: everything lives here.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{ConfigError, Sources};
use crate::metrics::Metrics;
use crate::policy::{self, Overrides, Policy};
use crate::upstream::UpstreamClient;

/// Everything a request reads that a reload may replace. Requests hold an `Arc` to one snapshot
/// from start to end, so a reload never changes the rules under a request in flight.
pub struct Runtime {
    pub policy: Policy,
    pub client: UpstreamClient,
}

/// Where the policy comes from.
#[derive(Debug, Clone)]
pub enum PolicySource {
    Dir(PathBuf),
    Embedded,
}

impl PolicySource {
    pub fn read(&self) -> Result<Sources, Vec<ConfigError>> {
        match self {
            PolicySource::Dir(d) => Sources::from_dir(d).map_err(|e| vec![e]),
            PolicySource::Embedded => Ok(Sources::embedded()),
        }
    }
}

pub struct App {
    runtime: watch::Sender<Arc<Runtime>>,
    source: PolicySource,
    overrides: Overrides,
    pub metrics: Metrics,
    draining: AtomicBool,
}

impl App {
    /// Load and compile the policy; fails with every error found.
    pub fn new(source: PolicySource, overrides: Overrides) -> Result<Arc<App>, Vec<ConfigError>> {
        let sources = source.read()?;
        let policy = policy::load(&sources, &overrides)?;
        let client = UpstreamClient::new(&policy);
        let (runtime, _) = watch::channel(Arc::new(Runtime { policy, client }));
        Ok(Arc::new(App { runtime, source, overrides, metrics: Metrics::new(), draining: AtomicBool::new(false) }))
    }

    /// The snapshot a new request works with.
    pub fn snapshot(&self) -> Arc<Runtime> {
        self.runtime.borrow().clone()
    }

    /// Re-read the policy. A valid one replaces the current one atomically; an invalid one is
    /// logged and counted, and the current one keeps serving. Returns whether anything changed.
    pub fn reload(&self) -> Result<bool, Vec<ConfigError>> {
        let result = self.source.read().and_then(|sources| {
            if sources.version() == self.snapshot().policy.version {
                return Ok(None);
            }
            policy::load(&sources, &self.overrides).map(Some)
        });
        match result {
            Ok(None) => Ok(false),
            Ok(Some(policy)) => {
                tracing::info!(version = %policy.version, routes = policy.routes.len(), "policy reloaded");
                let client = UpstreamClient::new(&policy);
                self.runtime.send_replace(Arc::new(Runtime { policy, client }));
                self.metrics.reload(true);
                Ok(true)
            }
            Err(errors) => {
                for e in &errors {
                    tracing::error!(error = %e, "policy rejected; the previous policy keeps serving");
                }
                self.metrics.reload(false);
                Err(errors)
            }
        }
    }

    /// Reload whenever the policy directory's content changes (polled), until the app drains.
    pub async fn watch_files(self: Arc<Self>, every: Duration) {
        if matches!(self.source, PolicySource::Embedded) {
            return;
        }
        let mut last_failed: Option<String> = None;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.is_draining() {
                return;
            }
            let Ok(sources) = self.source.read() else { continue };
            let version = sources.version();
            // A rejected edit is reported once, not every tick.
            if version == self.snapshot().policy.version || last_failed.as_deref() == Some(&version) {
                continue;
            }
            last_failed = self.reload().is_err().then_some(version);
        }
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}
