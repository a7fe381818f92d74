//! `otpgate audit verify` and `otpgate audit query`: the security team's view of the trail.

use std::path::{Path, PathBuf};

use crate::audit::{self, Decision, Filter, Hasher};

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain of every file of the log; report the first broken record; exit 1.
    Verify {
        /// `audit.log` (rotated files beside it are found) or its directory.
        #[arg(long)]
        log: PathBuf,
    },
    /// Records matching every filter given, oldest first.
    Query {
        #[arg(long)]
        log: PathBuf,
        /// Keys directory holding `audit.key` (needed for --subject and --record).
        #[arg(long, env = "OTPGATE_KEYS_DIR")]
        keys_dir: Option<PathBuf>,
        /// A citizen's mobile: records that released their data or that they made (hashed here).
        #[arg(long)]
        subject: Option<String>,
        /// A partner id, or a client address.
        #[arg(long)]
        client: Option<String>,
        /// A beneficiary reference: records that released it (hashed here).
        #[arg(long)]
        record: Option<String>,
        /// Only the last DUR: 30s, 15m, 24h, 7d.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, value_parser = ["allow", "deny"])]
        decision: Option<String>,
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
}

pub fn run(cmd: AuditCommand) -> Result<(), String> {
    match cmd {
        AuditCommand::Verify { log } => match audit::verify(&log) {
            Ok(report) => {
                println!(
                    "ok: {} records in {} file(s), chain intact (last seq {})",
                    report.records,
                    report.files,
                    report.last_seq.map_or("-".to_string(), |s| s.to_string())
                );
                Ok(())
            }
            Err(e) => Err(format!("audit log broken: {e}")),
        },
        AuditCommand::Query { log, keys_dir, subject, client, record, since, decision, format } => {
            let hasher = || -> Result<Hasher, String> {
                let dir = keys_dir.as_deref().ok_or("--subject and --record need --keys-dir (for audit.key)")?;
                Ok(Hasher::new(&read_audit_key(dir)?))
            };
            let subject = match subject {
                Some(m) => {
                    let m = crate::ownership::canonical_mobile(&m).ok_or("--subject: not a 10-digit Indian mobile")?;
                    Some(hasher()?.mobile(&m))
                }
                None => None,
            };
            let record = match record {
                Some(r) => Some(hasher()?.record(r.trim())),
                None => None,
            };
            let since = match since {
                Some(s) => Some(crate::config::units::parse_duration(&s).map_err(|e| format!("--since: {e}"))?),
                None => None,
            };
            let decision = decision.map(|d| if d == "allow" { Decision::Allow } else { Decision::Deny });
            let filter = Filter { subject, client, record, since, decision };
            let records = audit::query(&log, &filter, crate::clock::system_now_ms()).map_err(|e| e.to_string())?;
            if format == "json" {
                for r in &records {
                    println!("{}", serde_json::to_string(r).map_err(|e| e.to_string())?);
                }
            } else {
                print!("{}", audit::render_table(&records));
            }
            Ok(())
        }
    }
}

fn read_audit_key(dir: &Path) -> Result<Vec<u8>, String> {
    let path = dir.join(crate::auth::keys::AUDIT_KEY_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    hex::decode(text.trim()).map_err(|_| format!("{}: expected a hex key", path.display()))
}
