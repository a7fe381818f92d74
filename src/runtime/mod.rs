//! The runtime: everything a request reads that a policy determines, compiled in one step from
//! the policy files — [`compile`], used alike by `serve`, by every reload and by `otpgate check`,
//! so a policy `check` accepts is a policy `serve` starts with — and [`App`], the state that
//! outlives a policy (ARCHITECTURE.md, "Where state lives").

pub mod app;
pub mod source;
pub mod tls;

use std::path::PathBuf;
use std::sync::Arc;

pub use app::{App, Options};
pub use source::PolicySource;

use crate::auth::delivery::{self, Delivery};
use crate::auth::jwt::{TokenConfig, Tokens};
use crate::auth::keys::{Secrets, SessionKeys};
use crate::config::{ConfigError, Sources};
use crate::policy::citizens::Delivery as OtpDelivery;
use crate::policy::{self, Overrides, Policy};
use crate::ratelimit::{Limiters, RouteLimits};
use crate::upstream::UpstreamClient;
use tls::{ServerIdentity, TlsConfigs};

/// Everything a request reads that a reload may replace. Requests hold an `Arc` to one snapshot
/// from start to end, so a reload never changes the rules under a request in flight.
pub struct Runtime {
    /// Increases with every (re)build, including forced reloads of an unchanged policy text.
    pub generation: u64,
    pub policy: Policy,
    pub client: UpstreamClient,
    /// Present when the policy has a `citizens` section.
    pub citizens: Option<CitizenRuntime>,
    pub tls: TlsConfigs,
    /// Rate-limit windows of each route, by route index (state lives in `App::limiters`).
    pub limits: Vec<RouteLimits>,
    /// The refusal budget of callers not identified (`gateway.limits.unidentified_*`).
    pub unidentified: RouteLimits,
    /// The admission rate of each route's waiting room, by route index.
    pub admission: Vec<Option<RouteLimits>>,
}

/// What signing citizens in needs: their token keys and the OTP delivery.
pub struct CitizenRuntime {
    pub tokens: Tokens,
    pub delivery: Arc<dyn Delivery>,
}

/// The secrets a runtime is compiled with, split by use.
pub struct Keys {
    pub sessions: Arc<SessionKeys>,
    /// HMAC over stored OTPs and mobile-derived store keys.
    pub otp: Vec<u8>,
    /// Master key of the redaction profiles' HMAC tokens.
    pub redact: Vec<u8>,
}

impl From<Secrets> for Keys {
    fn from(s: Secrets) -> Keys {
        Keys { sessions: Arc::new(s.sessions), otp: s.otp_key, redact: s.redact_key }
    }
}

/// Everything compiling a policy reads besides the policy files.
pub struct Settings {
    /// `None`: no keys directory (a policy that signs citizens in is then refused).
    pub keys: Option<Keys>,
    /// Upstream URL overrides from the command line.
    pub overrides: Overrides,
    /// Where relative outbox paths live.
    pub data_dir: PathBuf,
    /// Also print each OTP on the console (`demo` only; never from a shipped policy).
    pub otp_console: bool,
    /// Where plain-text OTPs may go (see [`Outbox`]).
    pub outbox: Outbox,
    /// The gateway's TLS certificate and key, when any listener speaks TLS.
    pub server_identity: Option<ServerIdentity>,
}

/// Whether OTPs may be written in plain text to an outbox file instead of the policy's delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbox {
    /// Refused: a policy that names an outbox does not compile (`serve`, `check`).
    Refuse,
    /// Allowed where the policy names one (`serve --insecure-otp-outbox`).
    Allow,
    /// Always, whatever the policy names: `demo` delivers to `DATA_DIR/otp-outbox.jsonl`.
    Demo,
}

/// The demo's outbox, relative to the data dir.
pub const DEMO_OUTBOX: &str = "otp-outbox.jsonl";

/// Compile policy files into a runtime: parse and validate the policy (every error, with its
/// file and field path), compile its profiles with their keys, and build the upstream client,
/// token keys, OTP delivery, TLS configs and rate-limit windows. Window state is taken from
/// `limiters`, so a reload keeps the buckets of unchanged windows.
pub fn compile(
    sources: &Sources,
    settings: &Settings,
    limiters: &Limiters,
    generation: u64,
) -> Result<Runtime, Vec<ConfigError>> {
    let redact_key = settings.keys.as_ref().map_or(&[0u8; 32][..], |k| k.redact.as_slice());
    let policy = policy::load(sources, &settings.overrides, redact_key)?;
    let citizens = match (&policy.citizens, &settings.keys) {
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
            let console = c.otp.console || settings.otp_console;
            let rule = match (&c.otp.delivery, settings.outbox) {
                (_, Outbox::Demo) => &OtpDelivery::Outbox { path: DEMO_OUTBOX.into() },
                (OtpDelivery::Outbox { .. }, Outbox::Refuse) => {
                    return Err(vec![ConfigError::new(
                        "<policy>",
                        "citizens.otp.delivery.outbox",
                        "an outbox writes every OTP in plain text to a file: it is for `otpgate demo`; \
                         deliver with `webhook`, or pass --insecure-otp-outbox to accept the risk",
                    )]);
                }
                (rule, _) => rule,
            };
            Some(CitizenRuntime {
                tokens: Tokens::new(keys.sessions.clone(), config),
                delivery: delivery::from_rule(rule, console, &settings.data_dir),
            })
        }
    };
    let tls = TlsConfigs::build(&policy, settings.server_identity.as_ref())
        .map_err(|e| vec![ConfigError::new("<tls>", "partners", e)])?;
    let limits = policy.routes.iter().map(|r| limiters.for_route(&r.name, &r.limits)).collect();
    let unidentified = limiters.for_route("(unidentified)", &policy.limits.unidentified);
    let admission = policy
        .routes
        .iter()
        .map(|r| {
            r.waiting_room.as_ref().map(|w| {
                let limit = crate::policy::Limit::of(crate::policy::LimitKey::Ip, vec![w.admission]);
                limiters.for_route(&format!("{}(waiting-room)", r.name), &[limit])
            })
        })
        .collect();
    Ok(Runtime {
        generation,
        client: UpstreamClient::new(&policy).map_err(|e| vec![ConfigError::new("<upstreams>", "upstreams", e)])?,
        policy,
        citizens,
        tls,
        limits,
        unidentified,
        admission,
    })
}
