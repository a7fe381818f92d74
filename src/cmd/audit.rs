//! `otpgate audit verify` and `otpgate audit query`: the security team's view of the trail.

use std::path::{Path, PathBuf};

use crate::audit::{self, Decision, Filter, Hasher};

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain of every log given; report each log's first broken record; exit 1
    /// if any is broken.
    Verify {
        /// `audit.log` (rotated files beside it are found), its directory, or a directory of
        /// replicas' logs (`DATA_DIR/audit/`); repeatable.
        #[arg(long, required = true)]
        log: Vec<PathBuf>,
    },
    /// Records matching every filter given, from every log given, merged by time, oldest first.
    Query {
        /// As for `verify`; repeatable.
        #[arg(long, required = true)]
        log: Vec<PathBuf>,
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
        AuditCommand::Verify { log } => {
            let logs = audit::find_logs(&log).map_err(|e| e.to_string())?;
            let mut broken = 0;
            for log in &logs {
                match audit::verify(log) {
                    Ok(report) => println!(
                        "ok: {}: {} records in {} file(s), chain intact (last seq {})",
                        log.display(),
                        report.records,
                        report.files,
                        report.last_seq.map_or("-".to_string(), |s| s.to_string())
                    ),
                    Err(e) => {
                        broken += 1;
                        eprintln!("broken: {}: {e}", log.display());
                    }
                }
            }
            match broken {
                0 => Ok(()),
                n => Err(format!("{n} of {} audit log(s) broken", logs.len())),
            }
        }
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
            let logs = audit::find_logs(&log).map_err(|e| e.to_string())?;
            let records =
                audit::query_many(&logs, &filter, crate::clock::system_now_ms()).map_err(|e| e.to_string())?;
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
