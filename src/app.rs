//! Application state shared by every connection.
//!
//! [`App`] holds what outlives a policy: the state store (OTP transactions, sessions, counters),
//! secrets, per-session caches, metrics and the draining flag. [`Runtime`] holds what a policy
//! determines and a reload replaces atomically. No global mutable state: everything lives here.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::auth::delivery::{self, Delivery};
use crate::auth::jwt::{TokenConfig, Tokens};
use crate::auth::keys::{Secrets, SessionKeys};
use crate::config::{ConfigError, Sources};
use crate::metrics::Metrics;
use crate::ownership::Subjects;
use crate::policy::{self, Overrides, Policy};
use crate::store::Store;
use crate::upstream::UpstreamClient;
use crate::upstream::identity::Assertions;

/// Everything a request reads that a reload may replace. Requests hold an `Arc` to one snapshot
/// from start to end, so a reload never changes the rules under a request in flight.
pub struct Runtime {
    pub policy: Policy,
    pub client: UpstreamClient,
    /// Present when the policy has a `citizens` section.
    pub citizens: Option<CitizenRuntime>,
}

pub struct CitizenRuntime {
    pub tokens: Tokens,
    pub delivery: Arc<dyn Delivery>,
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

/// Process-level settings that are not policy.
pub struct Options {
    /// Where relative outbox paths (and later the audit log) live.
    pub data_dir: PathBuf,
    /// Keys from `--keys-dir`; required when the policy signs citizens in.
    pub secrets: Option<Secrets>,
    pub store: Store,
    /// Also print each OTP on the console (`demo` only; never from a shipped policy).
    pub otp_console: bool,
}

/// What `build_runtime` needs besides the policy.
struct RuntimeOptions {
    data_dir: PathBuf,
    otp_console: bool,
}

/// Secrets split by use.
struct Keys {
    sessions: Arc<SessionKeys>,
    otp: Vec<u8>,
}

pub struct App {
    runtime: watch::Sender<Arc<Runtime>>,
    source: PolicySource,
    overrides: Overrides,
    runtime_options: RuntimeOptions,
    keys: Option<Keys>,
    pub store: Store,
    /// Upstream identity assertions, per session (present with keys).
    pub assertions: Option<Assertions>,
    /// Each citizen session's own records (ID numbers, beneficiary references), briefly cached.
    pub subjects: moka::future::Cache<String, Arc<Subjects>>,
    pub metrics: Metrics,
    draining: AtomicBool,
}

fn build_runtime(policy: Policy, keys: Option<&Keys>, opts: &RuntimeOptions) -> Result<Runtime, Vec<ConfigError>> {
    let client = UpstreamClient::new(&policy);
    let citizens = match (&policy.citizens, keys) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(vec![ConfigError::new(
                "<command line>",
                "--keys-dir",
                "the policy signs citizens in (`citizens`), which needs signing keys: \
                 pass --keys-dir (create them with `otpgate keys generate --dir DIR`)",
            )]);
        }
        (Some(c), Some(keys)) => {
            let config = TokenConfig {
                issuer: c.session.issuer.clone(),
                audience: c.session.audience.clone(),
                ttl: c.session.token_ttl,
                leeway: c.session.leeway,
            };
            Some(CitizenRuntime {
                tokens: Tokens::new(keys.sessions.clone(), config),
                delivery: delivery::from_rule(&c.otp.delivery, c.otp.console || opts.otp_console, &opts.data_dir),
            })
        }
    };
    Ok(Runtime { policy, client, citizens })
}

impl App {
    /// Load and compile the policy; fails with every error found.
    pub fn new(source: PolicySource, overrides: Overrides, options: Options) -> Result<Arc<App>, Vec<ConfigError>> {
        let assertions = options.secrets.as_ref().map(|s| Assertions::new(&s.identity_key));
        let keys = options.secrets.map(|s| Keys { sessions: Arc::new(s.sessions), otp: s.otp_key });
        let sources = source.read()?;
        let policy = policy::load(&sources, &overrides)?;
        let runtime_options = RuntimeOptions { data_dir: options.data_dir, otp_console: options.otp_console };
        let runtime = build_runtime(policy, keys.as_ref(), &runtime_options)?;
        let (runtime, _) = watch::channel(Arc::new(runtime));
        Ok(Arc::new(App {
            runtime,
            source,
            overrides,
            runtime_options,
            keys,
            store: options.store,
            assertions,
            subjects: moka::future::Cache::builder()
                .max_capacity(500_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
            metrics: Metrics::new(),
            draining: AtomicBool::new(false),
        }))
    }

    /// The snapshot a new request works with.
    pub fn snapshot(&self) -> Arc<Runtime> {
        self.runtime.borrow().clone()
    }

    /// Key of the HMAC over stored OTPs and mobile-derived store keys.
    pub fn otp_key(&self) -> Option<&[u8]> {
        self.keys.as_ref().map(|k| k.otp.as_slice())
    }

    /// Re-read the policy. A valid one replaces the current one atomically; an invalid one is
    /// logged and counted, and the current one keeps serving. Returns whether anything changed.
    pub fn reload(&self) -> Result<bool, Vec<ConfigError>> {
        let result = self.source.read().and_then(|sources| {
            if sources.version() == self.snapshot().policy.version {
                return Ok(None);
            }
            let policy = policy::load(&sources, &self.overrides)?;
            build_runtime(policy, self.keys.as_ref(), &self.runtime_options).map(Some)
        });
        match result {
            Ok(None) => Ok(false),
            Ok(Some(runtime)) => {
                tracing::info!(version = %runtime.policy.version, routes = runtime.policy.routes.len(), "policy reloaded");
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
