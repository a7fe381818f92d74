//! The invariant the fuzz target `policy` (`fuzz/fuzz_targets/policy.rs`) and the corpus replay
//! test check on one set of policy files. Not part of the gateway's API.
//!
//! Input: up to four YAML files separated by NUL bytes (`a.yaml`, `b.yaml`, …), compiled by
//! [`load`], the step `otpgate check`, `serve` and reload share. Relative CA and CRL files resolve
//! against a directory that does not exist.
//!
//! Invariants: loading never panics and gives the same answer twice; every error names one of the
//! files (or `<policy>` / `<defaults>` for what no file wrote) and a field path that starts at a
//! top-level section (or is the unknown section itself); only a YAML error at the root of a document (bad syntax, an unknown
//! section, a document that is not a mapping) may lack a path, and then its message says the line
//! or that it is about the whole file.

use super::load;
use crate::config::{ConfigError, Sources};

const NAMES: [&str; 4] = ["a.yaml", "b.yaml", "c.yaml", "d.yaml"];
const SECTIONS: [&str; 7] = ["gateway", "upstreams", "routes", "citizens", "partners", "profiles", "budgets"];

/// The policy files the input stands for.
pub fn sources(data: &[u8]) -> Sources {
    let text = String::from_utf8_lossy(data);
    let files =
        text.splitn(NAMES.len(), '\0').zip(NAMES).map(|(content, name)| (name.to_string(), content.to_string()));
    Sources { files: files.collect(), base: Some("/nonexistent/otpgate-fuzz".into()) }
}

fn located(e: &ConfigError, names: &[&str]) -> Result<(), String> {
    if !names.contains(&e.file.as_str()) && e.file != "<policy>" && e.file != "<defaults>" {
        return Err(format!("error names no file: {e}"));
    }
    if e.path.is_empty() {
        return match e.message.contains("line ") || e.message.contains("(the whole file") {
            true => Ok(()),
            false => Err(format!("error without a field path or a line: {e}")),
        };
    }
    let section = e.path.split(['.', '[']).next().unwrap_or_default();
    // An unknown section is itself the field the error is about (its key may hold `.` or `[`).
    let unknown = |key: &str| e.message.starts_with(&format!("unknown field `{key}`"));
    if !SECTIONS.contains(&section) && !unknown(section) && !unknown(&e.path) {
        return Err(format!("field path does not start at a section: {e}"));
    }
    Ok(())
}

/// Check the invariant on one input; `Err` describes the violation.
pub fn check(data: &[u8]) -> Result<(), String> {
    let sources = sources(data);
    let names: Vec<&str> = sources.files.iter().map(|(n, _)| n.as_str()).collect();
    let first = load(&sources, &Vec::new(), &[0; 32]).err().unwrap_or_default();
    let second = load(&sources, &Vec::new(), &[0; 32]).err().unwrap_or_default();
    if first != second {
        return Err(format!("two loads disagree: {first:?} / {second:?}"));
    }
    for e in &first {
        located(e, &names)?;
    }
    Ok(())
}
