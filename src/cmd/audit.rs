//! `otpgate audit verify` and `otpgate audit query`: the security team's view of the trail.

use std::path::{Path, PathBuf};

use crate::audit::{self, Anchor, ChainKey, Decision, Filter, Hasher, Mode};

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Verify the keyed chain of every log given (every MAC under audit.key, the links, files
    /// missing at the start, middle or end, restarted segments, the head file, anchors); report
    /// each log's first problem; exit 1 if any log is broken.
    Verify {
        /// `audit.log` (rotated files beside it are found), its directory, or a directory of
        /// replicas' logs (`DATA_DIR/audit/`); repeatable.
        #[arg(long, required = true)]
        log: Vec<PathBuf>,
        /// Keys directory holding `audit.key`: the chain is keyed with it. Required, unless
        /// --structure-only.
        #[arg(long, env = "OTPGATE_KEYS_DIR")]
        keys_dir: Option<PathBuf>,
        /// A line the chain must hold, kept elsewhere: SEQ:MAC, MAC being 12 to 64 hex digits
        /// (a shipped `audit checkpoint` log line's seq and mac, or a sample of
        /// otpgate_audit_head_seq and otpgate_audit_head_mac48 as printf '%d:%012x'); repeatable.
        #[arg(long, value_parser = parse_anchor)]
        anchor: Vec<Anchor>,
        /// Check layout, seqs and links only, without the key. NOT a verification: anyone with
        /// write access can forge a log that passes. Output says so on every line.
        #[arg(long, conflicts_with_all = ["keys_dir", "anchor"])]
        structure_only: bool,
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
        AuditCommand::Verify { log, keys_dir, anchor, structure_only } => {
            let key = match (&keys_dir, structure_only) {
                (Some(dir), _) => Some(ChainKey::derive(&read_audit_key(dir)?)),
                (None, true) => None,
                (None, false) => {
                    return Err("audit verify needs --keys-dir (the directory holding audit.key): the chain is \
                                keyed with it, and without the key nothing can be verified. \
                                (--structure-only checks the layout alone; it is not a verification.)"
                        .into());
                }
            };
            let mode = key.as_ref().map_or(Mode::StructureOnly, Mode::Keyed);
            let logs = audit::find_logs(&log).map_err(|e| e.to_string())?;
            let mut broken = 0;
            for log in &logs {
                match audit::verify_with(log, mode, &anchor) {
                    Ok(report) => print_report(log, &report),
                    Err(e) => {
                        broken += 1;
                        eprintln!("broken: {}: {e}", log.display());
                    }
                }
            }
            match (broken, structure_only) {
                (0, false) => Ok(()),
                (0, true) => {
                    eprintln!("structure only: no MAC was checked; this is NOT a verification (give --keys-dir)");
                    Ok(())
                }
                (n, _) => Err(format!("{n} of {} audit log(s) broken", logs.len())),
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

fn parse_anchor(s: &str) -> Result<Anchor, String> {
    s.parse()
}

fn print_report(log: &Path, r: &audit::VerifyReport) {
    let span = match (r.first_seq, r.last_seq) {
        (Some(a), Some(b)) => format!("seq {a}..={b}"),
        _ => "empty".to_string(),
    };
    let who = match (&r.log_id, &r.replica) {
        (Some(id), Some(replica)) => format!(", log {id}, replica {replica}"),
        (Some(id), None) => format!(", log {id}"),
        _ => String::new(),
    };
    let anchors =
        if r.anchors_matched > 0 { format!(", {} anchor(s) matched", r.anchors_matched) } else { String::new() };
    let (tag, what) = if r.keyed {
        ("ok", "keyed chain intact")
    } else {
        ("STRUCTURE ONLY (NOT VERIFIED)", "layout and links intact, MACs not checked")
    };
    println!(
        "{tag}: {}: {} records ({} lines) in {} file(s), {what} ({span}, head {}{who}{anchors})",
        log.display(),
        r.records,
        r.lines,
        r.files,
        r.last_mac
    );
    for note in &r.notes {
        match note.seq {
            Some(seq) => println!("  note: seq {seq}: {}", note.text),
            None => println!("  note: {}", note.text),
        }
    }
}

fn read_audit_key(dir: &Path) -> Result<Vec<u8>, String> {
    let path = dir.join(crate::auth::keys::AUDIT_KEY_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    hex::decode(text.trim()).map_err(|_| format!("{}: expected a hex key", path.display()))
}
