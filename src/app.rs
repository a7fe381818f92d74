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
use crate::ratelimit::{Limiters, RouteLimits};
use crate::server::{self, tls::ServerIdentity};
use crate::store::Store;
use crate::upstream::UpstreamClient;
use crate::upstream::identity::Assertions;

/// Everything a request reads that a reload may replace. Requests hold an `Arc` to one snapshot
/// from start to end, so a reload never changes the rules under a request in flight.
pub struct Runtime {
    /// Increases with every (re)build, including forced reloads of an unchanged policy text.
    pub generation: u64,
    pub policy: Policy,
    pub client: UpstreamClient,
    /// Present when the policy has a `citizens` section.
    pub citizens: Option<CitizenRuntime>,
    /// TLS for shared listeners (client certificates optional when partners are configured).
    pub tls_shared: Option<Arc<rustls::ServerConfig>>,
    /// TLS for partner-only listeners (client certificates required).
    pub tls_partner: Option<Arc<rustls::ServerConfig>>,
    /// Verifies partner certificates again when the policy changes under an open connection.
    pub partner_verifier: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
    /// Rate-limit windows of each route, by route index (state lives in `App::limiters`).
    pub limits: Vec<RouteLimits>,
    /// Redaction profiles, compiled with their keys.
    pub profiles: std::collections::HashMap<String, crate::redact::Profile>,
}

pub struct CitizenRuntime {
    pub tokens: Tokens,
    pub delivery: Arc<dyn Delivery>,
}

/// Where the policy comes from.
#[derive(Debug, Clone)]
pub enum PolicySource {
    Dir(PathBuf),
    /// The policy compiled into the binary, plus extra files (the demo's generated partners).
    Embedded {
        extra: Vec<PathBuf>,
    },
}

impl PolicySource {
    pub fn read(&self) -> Result<Sources, Vec<ConfigError>> {
        match self {
            PolicySource::Dir(d) => Sources::from_dir(d).map_err(|e| vec![e]),
            PolicySource::Embedded { extra } => {
                let mut sources = Sources::embedded();
                for path in extra {
                    let name = path.display().to_string();
                    let content = std::fs::read_to_string(path)
                        .map_err(|e| vec![ConfigError::new(&name, "", format!("cannot read: {e}"))])?;
                    sources.files.push((name, content));
                }
                Ok(sources)
            }
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
    /// The gateway's TLS certificate and key, when any listener speaks TLS.
    pub server_identity: Option<ServerIdentity>,
    /// Counters of the span exporter, exposed on /metrics.
    pub span_counters: crate::telemetry::SpanCounters,
    /// The durable audit trail (`serve` and `demo` always open one in the data dir).
    pub audit: Option<crate::pipeline::audit::Audit>,
}

/// What `build_runtime` needs besides the policy.
struct RuntimeOptions {
    data_dir: PathBuf,
    otp_console: bool,
    server_identity: Option<ServerIdentity>,
    generations: std::sync::atomic::AtomicU64,
}

impl RuntimeOptions {
    fn next_generation(&self) -> u64 {
        self.generations.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Secrets split by use.
struct Keys {
    sessions: Arc<SessionKeys>,
    otp: Vec<u8>,
    redact: Vec<u8>,
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
    /// Rate-limit state, kept across reloads.
    pub limiters: Limiters,
    pub audit: Option<crate::pipeline::audit::Audit>,
    pub metrics: Metrics,
    draining: AtomicBool,
    /// Work that outlives its request (streamed answers' completion audit records), waited for
    /// when the process stops.
    pub background: Background,
}

/// Tasks the process waits for before it exits: each holds a sender of a channel nobody sends
/// on, so the receiver sees the end once all of them (and the handle kept here) are gone.
pub struct Background {
    handle: parking_lot::Mutex<Option<tokio::sync::mpsc::Sender<()>>>,
    all_done: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<()>>,
}

impl Default for Background {
    fn default() -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        Background { handle: parking_lot::Mutex::new(Some(tx)), all_done: tokio::sync::Mutex::new(rx) }
    }
}

impl Background {
    /// Run `task`; [`Background::wait`] waits for it.
    pub fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        Tracker(self.handle.lock().clone()).spawn(task);
    }

    /// A handle that spawns tasks this set waits for, even when taken before [`Background::wait`]
    /// began and used after (an accept loop still finishing its last connection).
    pub fn tracker(&self) -> Tracker {
        Tracker(self.handle.lock().clone())
    }

    /// Wait (at most `limit`) for every task spawned so far; returns whether they all ended.
    pub async fn wait(&self, limit: std::time::Duration) -> bool {
        self.handle.lock().take();
        let mut rx = self.all_done.lock().await;
        tokio::time::timeout(limit, rx.recv()).await.is_ok()
    }
}

fn build_runtime(
    policy: Policy,
    keys: Option<&Keys>,
    opts: &RuntimeOptions,
    limiters: &Limiters,
) -> Result<Runtime, Vec<ConfigError>> {
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
    let tls_error = |e: String| vec![ConfigError::new("<tls>", "partners", e)];
    let (mut tls_shared, mut tls_partner, mut partner_verifier) = (None, None, None);
    if let Some(partners) = &policy.partners {
        partner_verifier = Some(server::tls::partner_verifier(partners, false).map_err(tls_error)?);
    }
    if let Some(identity) = &opts.server_identity {
        let optional = match &policy.partners {
            Some(p) => Some(server::tls::partner_verifier(p, true).map_err(tls_error)?),
            None => None,
        };
        tls_shared = Some(identity.config(optional).map_err(|e| tls_error(e.to_string()))?);
        if let Some(v) = &partner_verifier {
            tls_partner = Some(identity.config(Some(v.clone())).map_err(|e| tls_error(e.to_string()))?);
        }
    }
    let limits = policy.routes.iter().map(|r| limiters.for_route(&r.name, &r.limits)).collect();
    let mut profiles = std::collections::HashMap::new();
    for (name, raw) in &policy.profiles {
        let master = keys.map_or(&[0u8; 32][..], |k| k.redact.as_slice());
        let key = crate::redact::derive_key(master, name);
        let profile = crate::redact::compile(name, raw, &key).map_err(|problems| {
            problems
                .into_iter()
                .map(|(f, m)| ConfigError::new("<profiles>", format!("{name}.{f}"), m))
                .collect::<Vec<_>>()
        })?;
        profiles.insert(name.clone(), profile);
    }
    Ok(Runtime {
        profiles,
        generation: opts.next_generation(),
        policy,
        client,
        citizens,
        tls_shared,
        tls_partner,
        partner_verifier,
        limits,
    })
}

impl App {
    /// Load and compile the policy; fails with every error found.
    pub fn new(source: PolicySource, overrides: Overrides, options: Options) -> Result<Arc<App>, Vec<ConfigError>> {
        let assertions = options.secrets.as_ref().map(|s| Assertions::new(&s.identity_key));
        let keys =
            options.secrets.map(|s| Keys { sessions: Arc::new(s.sessions), otp: s.otp_key, redact: s.redact_key });
        let sources = source.read()?;
        let policy = policy::load(&sources, &overrides)?;
        let runtime_options = RuntimeOptions {
            data_dir: options.data_dir,
            otp_console: options.otp_console,
            server_identity: options.server_identity,
            generations: std::sync::atomic::AtomicU64::new(0),
        };
        let limiters = Limiters::default();
        let runtime = build_runtime(policy, keys.as_ref(), &runtime_options, &limiters)?;
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
            limiters,
            audit: options.audit,
            metrics: Metrics::with_spans(&options.span_counters),
            draining: AtomicBool::new(false),
            background: Background::default(),
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
    /// `force` rebuilds even when the policy text is unchanged (SIGHUP: CA and CRL files the
    /// policy names may have changed).
    pub fn reload(&self, force: bool) -> Result<bool, Vec<ConfigError>> {
        let result = self.source.read().and_then(|sources| {
            if !force && sources.version() == self.snapshot().policy.version {
                return Ok(None);
            }
            let policy = policy::load(&sources, &self.overrides)?;
            build_runtime(policy, self.keys.as_ref(), &self.runtime_options, &self.limiters).map(Some)
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
        if matches!(self.source, PolicySource::Embedded { .. }) {
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
            last_failed = self.reload(false).is_err().then_some(version);
        }
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// See [`Background::tracker`].
#[derive(Clone)]
pub struct Tracker(Option<tokio::sync::mpsc::Sender<()>>);

impl Tracker {
    /// Run `task`; the [`Background`] it came from waits for it.
    pub fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let held = self.0.clone();
        tokio::spawn(async move {
            task.await;
            drop(held);
        });
    }
}

#[cfg(test)]
mod background_tests {
    use std::time::Duration;

    use super::Background;

    #[tokio::test]
    async fn wait_sees_every_task_end_or_gives_up() {
        let done = Background::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        done.spawn(async move {
            let _ = rx.await;
        });
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = tx.send(());
        });
        assert!(done.wait(Duration::from_secs(5)).await, "the task ended");
        let stuck = Background::default();
        stuck.spawn(std::future::pending());
        assert!(!stuck.wait(Duration::from_millis(100)).await, "a task that never ends is given up on");
    }
}
