//! `otpgate serve`: run the gateway from a policy directory. Also the shared runner of `demo`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::runtime::tls::ServerIdentity;
use crate::runtime::tls::tickets::Tickets;
use crate::runtime::{App, Options, PolicySource};
use crate::server::{ListenerSpec, Role, Server, Tls};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Policy directory (every *.yaml in it).
    #[arg(long, env = "OTPGATE_CONFIG")]
    pub config: PathBuf,
    /// HTTPS listener (needs --tls-cert and --tls-key).
    #[arg(long, env = "OTPGATE_LISTEN")]
    pub listen: Option<SocketAddr>,
    #[arg(long, env = "OTPGATE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, env = "OTPGATE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Issue no TLS session tickets (returning clients then resume only on the replica that served
    /// them, from its session cache). Tickets are keyed by the keys directory's tickets.key.
    #[arg(long, env = "OTPGATE_NO_TLS_TICKETS")]
    pub no_tls_tickets: bool,
    /// HTTPS listener for partners only: a valid partner client certificate is required.
    #[arg(long, env = "OTPGATE_LISTEN_PARTNER")]
    pub listen_partner: Option<SocketAddr>,
    /// Plain HTTP listener (for a TLS-terminating proxy in front, or local use).
    #[arg(long, env = "OTPGATE_LISTEN_PLAIN")]
    pub listen_plain: Option<SocketAddr>,
    /// Admin listener: /healthz, /readyz, /metrics.
    #[arg(long, env = "OTPGATE_ADMIN", default_value = "127.0.0.1:9090")]
    pub admin: SocketAddr,
    /// Secrets: session signing keys (`session-<kid>.pem`), `otp.key`, `identity.key`.
    /// Create them with `otpgate keys generate --dir DIR`.
    #[arg(long, env = "OTPGATE_KEYS_DIR")]
    pub keys_dir: PathBuf,
    /// Where the OTP outbox (when configured) and the audit log are written.
    #[arg(long, env = "OTPGATE_DATA_DIR", default_value = "otpgate-data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub state: super::StoreArgs,
    /// Accept a policy that delivers OTPs to an outbox file in plain text (tests and local trials
    /// only: anyone who can read the file can sign in as anyone).
    #[arg(long, env = "OTPGATE_INSECURE_OTP_OUTBOX")]
    pub insecure_otp_outbox: bool,
    #[command(flatten)]
    pub audit: super::AuditArgs,
    /// Override an upstream's URL: NAME=URL (repeatable).
    #[arg(long = "upstream", value_parser = parse_override)]
    pub upstreams: Vec<(String, String)>,
}

pub fn parse_override(s: &str) -> Result<(String, String), String> {
    let (name, url) = s.split_once('=').ok_or("expected NAME=URL")?;
    Ok((name.to_string(), url.to_string()))
}

pub async fn run(args: ServeArgs, telemetry: &crate::telemetry::Telemetry) -> Result<(), String> {
    let mut specs = Vec::new();
    let secrets = crate::auth::keys::load(&args.keys_dir).map_err(|e| e.to_string())?;
    let clock = crate::clock::Clock::system();
    let tickets = (!args.no_tls_tickets).then(|| Tickets::new(&secrets.tickets_key, clock.clone()));
    let identity = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(ServerIdentity::load(cert, key, tickets).map_err(|e| e.to_string())?),
        _ => None,
    };
    if (args.listen.is_some() || args.listen_partner.is_some()) && identity.is_none() {
        return Err("--listen and --listen-partner need --tls-cert and --tls-key".into());
    }
    if let Some(addr) = args.listen {
        specs.push(ListenerSpec { name: "https", addr, tls: Tls::Shared, role: Role::Gateway });
    }
    if let Some(addr) = args.listen_partner {
        specs.push(ListenerSpec { name: "partner", addr, tls: Tls::PartnerOnly, role: Role::Gateway });
    }
    if let Some(addr) = args.listen_plain {
        specs.push(ListenerSpec { name: "http", addr, tls: Tls::None, role: Role::Gateway });
    }
    if specs.is_empty() {
        return Err("nothing to serve: give --listen (HTTPS), --listen-partner and/or --listen-plain".into());
    }
    specs.push(ListenerSpec { name: "admin", addr: args.admin, tls: Tls::None, role: Role::Admin });
    std::fs::create_dir_all(&args.data_dir).map_err(|e| format!("{}: {e}", args.data_dir.display()))?;
    let audit = super::open_audit(&args.data_dir, &args.state, &args.audit, &secrets.audit_key).await?;
    let options = Options {
        data_dir: args.data_dir,
        secrets: Some(secrets),
        store: args.state.open()?,
        otp_console: false,
        outbox: if args.insecure_otp_outbox { crate::runtime::Outbox::Allow } else { crate::runtime::Outbox::Refuse },
        server_identity: identity,
        span_counters: telemetry.counters.clone(),
        audit: Some(audit),
        clock,
    };
    let app = App::new(PolicySource::Dir(args.config), args.upstreams, options).map_err(render_errors)?;
    if args.listen_partner.is_some() && app.snapshot().tls.partner.is_none() {
        return Err("--listen-partner needs a `partners` section in the policy".into());
    }
    run_gateway(app, specs, |_| {}).await
}

pub fn render_errors(errors: Vec<crate::config::ConfigError>) -> String {
    let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
    format!("the policy is invalid:\n{}", lines.join("\n"))
}

/// Bind, announce, start the background tasks (reloads, limiter eviction), serve until
/// SIGTERM/SIGINT, drain, and close the audit trail (its `close` checkpoint: a clean restart).
pub async fn run_gateway(
    app: Arc<App>,
    specs: Vec<ListenerSpec>,
    after_bind: impl FnOnce(&[(&'static str, String)]),
) -> Result<(), String> {
    if let Some(trail) = &app.audit {
        app.metrics.observe_audit(trail.log.clone());
    }
    let server = Server::bind(app.clone(), specs).await.map_err(|e| e.to_string())?;
    let urls = server.urls();
    for (name, url) in &urls {
        super::announce(name, url);
    }
    tracing::info!(policy = %app.snapshot().policy.version, "otpgate started");
    after_bind(&urls);
    crate::server::reload::start(&app);
    server.run(super::shutdown_signal()).await;
    if let Some(trail) = &app.audit {
        trail.close().await;
    }
    Ok(())
}
