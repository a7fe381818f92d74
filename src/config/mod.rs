//! Reading policy files: `policies/*.yaml` (or the copy embedded in the binary) → [`Merged`] raw
//! structs with provenance, and [`ConfigError`]s that name the file and the field path.
//!
//! Files are merged: `gateway` may appear in one file only, `upstreams` entries must be unique
//! across files, and `routes` lists are concatenated in file-name order.

pub mod raw;
pub mod units;

use std::fmt;
use std::path::Path;

use sha2::{Digest, Sha256};

use raw::{RawBudget, RawCitizens, RawFile, RawGateway, RawPartners, RawRoute, RawUpstream};

/// One problem in the policy, located by file and field path (`routes[2].methods[0]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(file: &str, path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { file: file.to_string(), path: path.into(), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.path, self.message)
        }
    }
}

/// The policy files' names and contents, from a directory or embedded in the binary.
#[derive(Debug, Clone)]
pub struct Sources {
    pub files: Vec<(String, String)>,
    /// Relative file references (CA and CRL files) are resolved against this directory.
    pub base: Option<std::path::PathBuf>,
}

/// The policy shipped in `policies/`, compiled into the binary for `otpgate demo`.
const EMBEDDED: &[(&str, &str)] = &[
    ("citizens.yaml", include_str!("../../policies/citizens.yaml")),
    ("gateway.yaml", include_str!("../../policies/gateway.yaml")),
    ("profiles.yaml", include_str!("../../policies/profiles.yaml")),
    ("routes.yaml", include_str!("../../policies/routes.yaml")),
];

impl Sources {
    pub fn embedded() -> Self {
        Sources { files: EMBEDDED.iter().map(|(n, c)| (n.to_string(), c.to_string())).collect(), base: None }
    }

    /// Every `*.yaml` / `*.yml` file directly in `dir`, in name order.
    ///
    /// A Kubernetes ConfigMap volume keeps its files in a timestamped directory that `..data`
    /// points to, and swaps that link atomically on an update; the files are read from the
    /// directory it names at that moment, so one read never mixes two versions of the policy.
    pub fn from_dir(dir: &Path) -> Result<Self, ConfigError> {
        let shown = dir.display().to_string();
        let snapshot = std::fs::canonicalize(dir.join("..data")).ok().filter(|d| d.is_dir());
        let entries = std::fs::read_dir(snapshot.as_deref().unwrap_or(dir))
            .map_err(|e| ConfigError::new(&shown, "", format!("cannot read directory: {e}")))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| ConfigError::new(&shown, "", e.to_string()))?;
            let path = entry.path();
            let is_yaml = matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
            if !is_yaml || !path.is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let content =
                std::fs::read_to_string(&path).map_err(|e| ConfigError::new(&name, "", format!("cannot read: {e}")))?;
            files.push((name, content));
        }
        files.sort();
        if files.is_empty() {
            return Err(ConfigError::new(&shown, "", "no *.yaml policy files"));
        }
        Ok(Sources { files, base: Some(dir.to_path_buf()) })
    }

    /// A short, stable fingerprint of the exact policy text: the policy version.
    pub fn version(&self) -> String {
        let mut h = Sha256::new();
        for (name, content) in &self.files {
            h.update((name.len() as u64).to_be_bytes());
            h.update(name.as_bytes());
            h.update((content.len() as u64).to_be_bytes());
            h.update(content.as_bytes());
        }
        hex::encode(&h.finalize()[..8])
    }
}

/// Where an item came from: file name and field path.
#[derive(Debug, Clone)]
pub struct At {
    pub file: String,
    pub path: String,
}

impl At {
    pub fn err(&self, field: &str, message: impl Into<String>) -> ConfigError {
        let path = if field.is_empty() { self.path.clone() } else { format!("{}.{field}", self.path) };
        ConfigError::new(&self.file, path, message)
    }
}

/// All files merged, each item remembering where it was written.
#[derive(Debug, Default)]
pub struct Merged {
    pub gateway: Option<(At, RawGateway)>,
    pub upstreams: Vec<(At, String, RawUpstream)>,
    pub routes: Vec<(At, RawRoute)>,
    pub citizens: Option<(At, RawCitizens)>,
    pub partners: Option<(At, RawPartners)>,
    pub profiles: Vec<(At, String, crate::redact::RawProfile)>,
    pub budgets: Vec<(At, String, RawBudget)>,
}

/// Parse and merge every file, collecting every error rather than stopping at the first file.
pub fn parse(sources: &Sources) -> Result<Merged, Vec<ConfigError>> {
    match parse_all(sources) {
        (merged, errors) if errors.is_empty() => Ok(merged),
        (_, errors) => Err(errors),
    }
}

/// The top-level sections a policy file may hold.
pub const ROOT_SECTIONS: &str = "gateway, upstreams, routes, citizens, partners, profiles, budgets";

/// Parse what can be parsed: the merged files that are readable, and the errors of the others
/// (so `otpgate check` can still validate the readable files and report everything at once).
pub fn parse_all(sources: &Sources) -> (Merged, Vec<ConfigError>) {
    let mut merged = Merged::default();
    let mut errors = Vec::new();
    for (name, content) in &sources.files {
        let file: RawFile = if content.trim().is_empty() {
            RawFile::default()
        } else {
            let de = serde_yaml_ng::Deserializer::from_str(content);
            match serde_path_to_error::deserialize(de) {
                Ok(f) => f,
                Err(e) => {
                    let path = e.path().to_string();
                    // `.` is the root; `?` a place serde could not name (a syntax error, whose
                    // message gives the line): neither is a field path to print.
                    let path = if path == "." || path == "?" { String::new() } else { path };
                    let message = e.into_inner().to_string();
                    // serde_yaml prefixes the path itself; say it once.
                    let message = message.strip_prefix(&format!("{path}: ")).map_or(message.clone(), str::to_string);
                    // An error about the document itself (a scalar or a list where the sections
                    // belong) has neither a field path nor, from serde, a line: say what it is about.
                    let message = if path.is_empty() && !message.contains("line ") {
                        format!("{message} (the whole file: a policy file is a mapping of sections: {ROOT_SECTIONS})")
                    } else {
                        message
                    };
                    errors.push(ConfigError::new(name, path, message));
                    continue;
                }
            }
        };
        if let Some(g) = file.gateway {
            let at = At { file: name.clone(), path: "gateway".into() };
            match &merged.gateway {
                Some((first, _)) => errors.push(at.err("", format!("`gateway` is already defined in {}", first.file))),
                None => merged.gateway = Some((at, g)),
            }
        }
        if let Some(c) = file.citizens {
            let at = At { file: name.clone(), path: "citizens".into() };
            match &merged.citizens {
                Some((first, _)) => errors.push(at.err("", format!("`citizens` is already defined in {}", first.file))),
                None => merged.citizens = Some((at, c)),
            }
        }
        if let Some(p) = file.partners {
            let at = At { file: name.clone(), path: "partners".into() };
            match &merged.partners {
                Some((first, _)) => errors.push(at.err("", format!("`partners` is already defined in {}", first.file))),
                None => merged.partners = Some((at, p)),
            }
        }
        for (key, profile) in file.profiles.unwrap_or_default() {
            let at = At { file: name.clone(), path: format!("profiles.{key}") };
            if let Some((first, _, _)) = merged.profiles.iter().find(|(_, k, _)| *k == key) {
                errors.push(at.err("", format!("profile `{key}` is already defined in {}", first.file)));
                continue;
            }
            merged.profiles.push((at, key, profile));
        }
        for (key, budget) in file.budgets.unwrap_or_default() {
            let at = At { file: name.clone(), path: format!("budgets.{key}") };
            if let Some((first, _, _)) = merged.budgets.iter().find(|(_, k, _)| *k == key) {
                errors.push(at.err("", format!("budget `{key}` is already defined in {}", first.file)));
                continue;
            }
            merged.budgets.push((at, key, budget));
        }
        for (key, up) in file.upstreams.unwrap_or_default() {
            let at = At { file: name.clone(), path: format!("upstreams.{key}") };
            if let Some((first, _, _)) = merged.upstreams.iter().find(|(_, k, _)| *k == key) {
                errors.push(at.err("", format!("upstream `{key}` is already defined in {}", first.file)));
                continue;
            }
            merged.upstreams.push((at, key, up));
        }
        for (i, route) in file.routes.unwrap_or_default().into_iter().enumerate() {
            merged.routes.push((At { file: name.clone(), path: format!("routes[{i}]") }, route));
        }
    }
    (merged, errors)
}

#[cfg(test)]
mod tests;
