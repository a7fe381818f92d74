//! [`App`]: the state shared by every connection that outlives a policy — the state store,
//! rate-limit buckets, caches of derived data, the audit trail, metrics, the clock, the
//! shutdown signal and the tasks the process waits for — and the current [`Runtime`] snapshot,
//! replaced atomically by [`App::reload`]. No global mutable state: everything lives here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Keys, PolicySource, Runtime, Settings, compile};
use crate::audit::Trail;
use crate::auth::keys::Secrets;
use crate::clock::Clock;
use crate::config::ConfigError;
use crate::metrics::{Metrics, SpanCounters};
use crate::ownership::Subjects;
use crate::policy::Overrides;
use crate::ratelimit::Limiters;
use crate::ratelimit::shared::Shared;
use crate::runtime::tls::ServerIdentity;
use crate::store::Store;
use crate::upstream::identity::Assertions;

/// Process-level settings that are not policy.
pub struct Options {
    /// Where relative outbox paths live.
    pub data_dir: std::path::PathBuf,
    /// Keys from `--keys-dir`; required when the policy signs citizens in.
    pub secrets: Option<Secrets>,
    pub store: Store,
    /// Also print each OTP on the console (`demo` only; never from a shipped policy).
    pub otp_console: bool,
    /// Where plain-text OTPs may go.
    pub outbox: super::Outbox,
    /// The gateway's TLS certificate and key, when any listener speaks TLS.
    pub server_identity: Option<ServerIdentity>,
    /// Counters of the span exporter, exposed on /metrics.
    pub span_counters: SpanCounters,
    /// The durable audit trail (`serve` and `demo` always open one in the data dir).
    pub audit: Option<Trail>,
    pub clock: Clock,
}

pub struct App {
    runtime: watch::Sender<Arc<Runtime>>,
    source: PolicySource,
    settings: Settings,
    generations: AtomicU64,
    pub store: Store,
    /// Upstream identity assertions, per session (present with keys).
    pub assertions: Option<Assertions>,
    /// Each citizen session's own records (ID numbers, beneficiary references), briefly cached.
    pub subjects: moka::future::Cache<String, Arc<Subjects>>,
    /// Rate-limit state, kept across reloads.
    pub limiters: Limiters,
    /// A circuit breaker per upstream name (kept across reloads).
    pub breakers: crate::upstream::breaker::Breakers,
    pub audit: Option<Trail>,
    pub metrics: Metrics,
    pub clock: Clock,
    /// Cancelled when the process starts to drain (`/readyz` turns false, listeners close).
    pub shutdown: CancellationToken,
    /// The waiting rooms' hasher and wake-ups (contests live in the store).
    pub rooms: crate::waitroom::Rooms,
    /// Work that outlives its request (streamed answers' completion audit records), waited for
    /// before the process exits.
    pub tasks: TaskTracker,
}

impl App {
    /// Load and compile the policy; fails with every error found.
    pub fn new(source: PolicySource, overrides: Overrides, options: Options) -> Result<Arc<App>, Vec<ConfigError>> {
        let assertions = options.secrets.as_ref().map(|s| Assertions::new(&s.identity_key));
        let settings = Settings {
            keys: options.secrets.map(Keys::from),
            overrides,
            data_dir: options.data_dir,
            otp_console: options.otp_console,
            outbox: options.outbox,
            server_identity: options.server_identity,
        };
        let store_counters = options.store.counters();
        let mut limiters = Limiters::default();
        let mut audit = options.audit;
        if let Some(shared) = options.store.shared() {
            let fail = |why: String| vec![ConfigError::new("<command line>", "--store", why)];
            let key = settings.keys.as_ref().map(|k| k.otp.as_slice()).ok_or_else(|| {
                fail("a shared store needs the keys directory (--keys-dir): its keys name identities".into())
            })?;
            limiters = limiters.sharing(Shared::new(shared.clone(), key).map_err(fail)?, store_counters.clone());
            audit = audit.map(|a| a.sharing(shared.clone()));
        }
        let runtime = compile(&source.read()?, &settings, &limiters, 1)?;
        let (runtime, _) = watch::channel(Arc::new(runtime));
        let metrics = Metrics::with(&options.span_counters, &store_counters);
        let hasher = match (&audit, settings.keys.as_ref()) {
            (Some(trail), _) => trail.hasher.clone(),
            (None, Some(keys)) => crate::audit::Hasher::new(&keys.otp),
            (None, None) => crate::audit::Hasher::new(&rand::random::<[u8; 32]>()),
        };
        export_rooms(&metrics, &runtime.borrow());
        if let Some(identity) = &settings.server_identity {
            metrics.tls_certificate(identity.not_after_secs);
        }
        Ok(Arc::new(App {
            runtime,
            source,
            settings,
            generations: AtomicU64::new(1),
            store: options.store,
            assertions,
            subjects: moka::future::Cache::builder()
                .max_capacity(500_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
            limiters,
            breakers: Default::default(),
            audit,
            metrics,
            clock: options.clock,
            shutdown: CancellationToken::new(),
            rooms: crate::waitroom::Rooms::new(hasher),
            tasks: TaskTracker::new(),
        }))
    }

    /// The snapshot a new request works with.
    pub fn snapshot(&self) -> Arc<Runtime> {
        self.runtime.borrow().clone()
    }

    /// Key of the HMAC over stored OTPs and mobile-derived store keys.
    pub fn otp_key(&self) -> Option<&[u8]> {
        self.settings.keys.as_ref().map(|k| k.otp.as_slice())
    }

    /// The policy's source, for the reload loop.
    pub fn source(&self) -> &PolicySource {
        &self.source
    }

    /// Re-read the policy. A valid one replaces the current one atomically; an invalid one is
    /// logged and counted, and the current one keeps serving. Returns whether anything changed.
    /// `force` rebuilds even when the policy text is unchanged (SIGHUP: CA and CRL files the
    /// policy names may have changed).
    pub fn reload(&self, force: bool) -> Result<bool, Vec<ConfigError>> {
        let result = self.source.read().and_then(|sources| {
            if !force && sources.version() == self.snapshot().policy.version {
                return Ok(None);
            }
            let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
            compile(&sources, &self.settings, &self.limiters, generation).map(Some)
        });
        match result {
            Ok(None) => Ok(false),
            Ok(Some(runtime)) => {
                tracing::info!(version = %runtime.policy.version, routes = runtime.policy.routes.len(), "policy reloaded");
                export_rooms(&self.metrics, &runtime);
                self.runtime.send_replace(Arc::new(runtime));
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

    pub fn is_draining(&self) -> bool {
        self.shutdown.is_cancelled()
    }
}

/// The routes with a waiting room export their contest counter from the start.
fn export_rooms(metrics: &Metrics, runtime: &Runtime) {
    for route in runtime.policy.routes.iter().filter(|r| r.waiting_room.is_some()) {
        metrics.waiting_room.route(&route.name);
    }
}
