//! `otpgate demo`: the synthetic registry on an ephemeral loopback port and the gateway in front
//! of it, on the embedded policy, with dev certificates in the data dir and a curl walkthrough.
//! Also `otpgate registry-sim`, the registry alone.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::demo::{self, RegistryConfig};
use crate::devcerts;
use crate::runtime::tls::ServerIdentity;
use crate::runtime::{App, Options, PolicySource};
use crate::server::{ListenerSpec, Role, Tls};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// HTTPS listener (certificate from the data dir's dev CA).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// Also serve plain HTTP here (citizen and public routes).
    #[arg(long)]
    pub listen_plain: Option<SocketAddr>,
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub admin: SocketAddr,
    /// Where certificates, the OTP outbox and the audit log are written.
    #[arg(long, default_value = "otpgate-demo-data")]
    pub data_dir: PathBuf,
    /// Seed of the synthetic registry's data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of beneficiary records in the synthetic registry.
    #[arg(long, default_value_t = 10_000)]
    pub beneficiaries: u64,
    /// Use this policy directory instead of the embedded one.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub state: super::StoreArgs,
    #[command(flatten)]
    pub audit: super::AuditArgs,
}

#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 10_000)]
    pub beneficiaries: u64,
    /// File holding the hex HMAC key that signs identity assertions (shared with the gateway).
    /// Without it, personal-data endpoints refuse every call.
    #[arg(long)]
    pub identity_key_file: Option<PathBuf>,
}

pub async fn run(args: DemoArgs, telemetry: &crate::telemetry::Telemetry) -> Result<(), String> {
    std::fs::create_dir_all(&args.data_dir).map_err(|e| format!("{}: {e}", args.data_dir.display()))?;
    let certs = devcerts::ensure(&args.data_dir)?;
    crate::auth::keys::generate(&args.data_dir).map_err(|e| e.to_string())?;
    let secrets = crate::auth::keys::load(&args.data_dir).map_err(|e| e.to_string())?;
    let identity_key = secrets.identity_key.clone();
    let audit = super::open_audit(&args.data_dir, &args.state, &args.audit, &secrets.audit_key).await?;

    let registry = demo::Registry::new(RegistryConfig {
        seed: args.seed,
        beneficiaries: args.beneficiaries,
        identity_key: Some(identity_key),
    });
    let reg_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let reg_addr = reg_listener.local_addr().map_err(|e| e.to_string())?;
    let (reg_stop_tx, reg_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let registry_task = tokio::spawn(demo::serve(reg_listener, registry, async {
        let _ = reg_stop_rx.await;
    }));
    super::announce("registry", &format!("http://{reg_addr}"));

    let partners_file = write_demo_partners(&args.data_dir, &certs)?;
    let source = match &args.config {
        Some(dir) => PolicySource::Dir(dir.clone()),
        None => PolicySource::Embedded { extra: vec![partners_file] },
    };
    let overrides = vec![("registry".to_string(), format!("http://{reg_addr}"))];
    let clock = crate::clock::Clock::system();
    let tickets = crate::runtime::tls::tickets::Tickets::new(&secrets.tickets_key, clock.clone());
    let identity = ServerIdentity::load(&certs.server, &certs.server_key, Some(tickets)).map_err(|e| e.to_string())?;
    let options = Options {
        data_dir: args.data_dir.clone(),
        secrets: Some(secrets),
        store: args.state.open()?,
        otp_console: true,
        outbox: crate::runtime::Outbox::Demo,
        server_identity: Some(identity),
        span_counters: telemetry.counters.clone(),
        audit: Some(audit),
        clock,
    };
    let app = App::new(source, overrides, options).map_err(super::serve::render_errors)?;

    let mut specs = vec![ListenerSpec { name: "https", addr: args.listen, tls: Tls::Shared, role: Role::Gateway }];
    if let Some(addr) = args.listen_plain {
        specs.push(ListenerSpec { name: "http", addr, tls: Tls::None, role: Role::Gateway });
    }
    specs.push(ListenerSpec { name: "admin", addr: args.admin, tls: Tls::None, role: Role::Admin });

    let data_dir = args.data_dir.clone();
    super::serve::run_gateway(app, specs, |urls| print_walkthrough(urls, &data_dir)).await?;
    let _ = reg_stop_tx.send(());
    let _ = registry_task.await;
    Ok(())
}

fn print_walkthrough(urls: &[(&'static str, String)], data_dir: &Path) {
    let find = |n: &str| urls.iter().find(|(name, _)| *name == n).map(|(_, u)| u.clone());
    let https = find("https").unwrap_or_default();
    let admin = find("admin").unwrap_or_default();
    let ca = data_dir.join("ca.pem");
    let ca = ca.display();
    let outbox = data_dir.join("otp-outbox.jsonl");
    let outbox = outbox.display();
    let mut text = format!(
        "\notpgate demo is running. Try:\n\
         \n  # public data over HTTPS (trust the demo CA)\n\
         \x20 curl --cacert {ca} '{https}/api/v2/admin/location/states'\n\
         \x20 curl --cacert {ca} '{https}/api/v2/appointment/sessions/public/calendarByDistrict?district_id=1&date=01-06-2021'\n\
         \n  # personal data needs a session: refused without one\n\
         \x20 curl --cacert {ca} -i '{https}/api/v2/appointment/beneficiaries'\n\
         \n  # sign in: the OTP goes to {outbox} and to this console\n\
         \x20 curl --cacert {ca} -X POST '{https}/api/v2/auth/public/generateOTP' -d '{{\"mobile\":\"9000000001\"}}'\n\
         \x20 curl --cacert {ca} -X POST '{https}/api/v2/auth/public/confirmOTP' -d '{{\"otp\":\"<sha256 of the OTP>\",\"txnId\":\"<txnId>\"}}'\n\
         \x20 curl --cacert {ca} '{https}/api/v2/appointment/beneficiaries' -H 'Authorization: Bearer <token>'\n\
         \n  # health and metrics\n\
         \x20 curl {admin}/readyz\n\
         \x20 curl -s {admin}/metrics | grep otpgate_requests\n"
    );
    if let Some(plain) = find("http") {
        text.push_str(&format!(
            "\n  # plain HTTP listener\n\
             \x20 curl '{plain}/api/v2/appointment/sessions/public/calendarByDistrict?district_id=1&date=01-06-2021'\n"
        ));
    }
    text.push_str("\nStop with Ctrl-C (in-flight requests finish first).\n");
    // The console, not the log stream (stderr): logs never carry numbers, even examples.
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

pub async fn run_registry(args: RegistryArgs) -> Result<(), String> {
    let identity_key = match &args.identity_key_file {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Some(hex::decode(text.trim()).map_err(|_| format!("{}: expected a hex key", path.display()))?)
        }
    };
    let registry =
        demo::Registry::new(RegistryConfig { seed: args.seed, beneficiaries: args.beneficiaries, identity_key });
    let listener = tokio::net::TcpListener::bind(args.listen).await.map_err(|e| format!("{}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    super::announce("registry", &format!("http://{addr}"));
    demo::serve(listener, registry, super::shutdown_signal()).await.map_err(|e| e.to_string())
}

/// The demo partner `icmr`: its API key (kept across runs) and a policy file naming its
/// certificate pin, key hash and loopback source, with the `research` profile.
fn write_demo_partners(data_dir: &Path, certs: &devcerts::DevCerts) -> Result<PathBuf, String> {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let key_file = data_dir.join("partner-icmr.apikey");
    let api_key = match std::fs::read_to_string(&key_file) {
        Ok(k) if !k.trim().is_empty() => k.trim().to_string(),
        _ => {
            let key = crate::auth::keys::new_api_key();
            devcerts::write(&key_file, &format!("{key}\n"), true)
                .map_err(|e| format!("{}: {e}", key_file.display()))?;
            key
        }
    };
    let pem = crate::runtime::tls::load_certs(&certs.partner).map_err(|e| e.to_string())?;
    let cert = crate::auth::partner::ClientCert::from_chain(&pem, 0)
        .ok_or_else(|| format!("{}: not a usable certificate", certs.partner.display()))?;
    let pin = base64::engine::general_purpose::STANDARD.encode(cert.spki_sha256);
    let key_hash = hex::encode(Sha256::digest(api_key.as_bytes()));
    let yaml = format!(
        "# Generated by `otpgate demo` for its data dir: the demo partner `icmr`.\n\
         partners:\n  ca: ['{ca}']\n  clients:\n    icmr:\n      certificate: {{spki_sha256: '{pin}'}}\n\
         \x20     api_key_sha256: '{key_hash}'\n      source: ['127.0.0.1/32', '::1/128']\n\
         \x20     scopes: [beneficiaries:search, beneficiaries:export]\n      profile: research\n\
         \x20     quota: {{requests: {{limit: 600, window: 1m}}, subjects_per_day: 1000}}\n",
        ca = std::fs::canonicalize(&certs.ca).map_err(|e| format!("{}: {e}", certs.ca.display()))?.display()
    );
    let path = data_dir.join("partners.yaml");
    devcerts::write(&path, &yaml, false).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}
