//! `otpgate check --config DIR`: validate everything `serve` would, with the same compile step
//! (`runtime::compile`), and print every error with file and path. With `--keys-dir` the keys
//! are loaded and checked as `serve` loads them; with `--tls-cert`/`--tls-key` the server
//! certificate is checked against the policy's partner CAs as `serve` does. Without them, the
//! policy is compiled with throwaway in-memory keys, and the output says what was not checked.

use std::io::Write;
use std::path::PathBuf;

use crate::config::ConfigError;
use crate::ratelimit::Limiters;
use crate::runtime::tls::ServerIdentity;
use crate::runtime::{Keys, Outbox, PolicySource, Settings, compile};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Policy directory (every *.yaml in it).
    #[arg(long)]
    pub config: PathBuf,
    /// Also load and check the keys `serve --keys-dir` would use.
    #[arg(long)]
    pub keys_dir: Option<PathBuf>,
    /// Also check the server certificate and key `serve` would use.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// As `serve --insecure-otp-outbox`: accept a plain-text OTP outbox.
    #[arg(long)]
    pub insecure_otp_outbox: bool,
    /// Upstream URL overrides, as `serve` takes them: NAME=URL (repeatable).
    #[arg(long = "upstream", value_parser = super::serve::parse_override)]
    pub upstreams: Vec<(String, String)>,
}

/// Returns the process exit code: 0 valid, 1 invalid.
pub fn run(args: CheckArgs) -> i32 {
    let mut notes = Vec::new();
    let result = settings(&args, &mut notes).and_then(|settings| {
        let sources = PolicySource::Dir(args.config.clone()).read()?;
        compile(&sources, &settings, &Limiters::default(), 1)
    });
    match result {
        Ok(rt) => {
            let p = &rt.policy;
            // A closed stdout (`check | head`) is not an error of the policy.
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "ok: {} routes, {} upstreams, policy version {}",
                p.routes.len(),
                p.upstreams.len(),
                p.version
            );
            for note in notes {
                let _ = writeln!(out, "note: {note}");
            }
            0
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!("{} error(s); the policy was not accepted", errors.len());
            1
        }
    }
}

fn settings(args: &CheckArgs, notes: &mut Vec<&'static str>) -> Result<Settings, Vec<ConfigError>> {
    let keys = match &args.keys_dir {
        Some(dir) => crate::auth::keys::load(dir)
            .map_err(|e| vec![ConfigError::new(&dir.display().to_string(), "", e.to_string())])?,
        None => {
            notes.push("keys not checked (give --keys-dir); compiled with throwaway keys");
            crate::auth::keys::ephemeral()
                .map_err(|e| vec![ConfigError::new("<keys>", "", format!("cannot make throwaway keys: {e}"))])?
        }
    };
    let server_identity = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            ServerIdentity::load(cert, key, None)
                .map_err(|e| vec![ConfigError::new(&e.file, "", e.message.clone())])?,
        ),
        _ => {
            notes.push("server certificate not checked (give --tls-cert and --tls-key)");
            None
        }
    };
    Ok(Settings {
        keys: Some(Keys::from(keys)),
        overrides: args.upstreams.clone(),
        data_dir: PathBuf::from("."),
        otp_console: false,
        outbox: if args.insecure_otp_outbox { Outbox::Allow } else { Outbox::Refuse },
        server_identity,
    })
}
