//! The compiled `partners` section: trust anchors and CRLs for client certificates, and each
//! partner's certificate identity, API-key hash, source CIDRs, scopes, profile and quotas.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rustls::RootCertStore;
use rustls_pki_types::CertificateRevocationListDer;
use rustls_pki_types::pem::PemObject;

use super::Cidr;
use super::citizens::WindowLimit;
use crate::config::{At, ConfigError, Merged};
use crate::redact::Profile;

/// How a partner's certificate is recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertId {
    /// SHA-256 of the SubjectPublicKeyInfo.
    Pin([u8; 32]),
    /// Subject distinguished name, normalized (see `normalize_subject`).
    Subject(String),
}

#[derive(Debug, Clone)]
pub struct Quota {
    pub requests: Option<WindowLimit>,
    pub subjects_per_day: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Partner {
    pub id: String,
    pub enabled: bool,
    pub cert: CertId,
    pub key_hash: [u8; 32],
    pub source: Vec<Cidr>,
    pub scopes: Vec<String>,
    /// The partner's own redaction profile (else the route's).
    pub profile: Option<Arc<Profile>>,
    pub quota: Quota,
}

pub struct Partners {
    pub roots: Arc<RootCertStore>,
    pub crls: Vec<CertificateRevocationListDer<'static>>,
    pub clients: Vec<Partner>,
}

impl std::fmt::Debug for Partners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partners").field("roots", &self.roots.len()).field("clients", &self.clients).finish()
    }
}

/// Case-insensitive attribute names, `", "` separators, no surrounding spaces: `CN=icmr, O=ICMR`.
pub fn normalize_subject(s: &str) -> String {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|part| match part.split_once('=') {
            Some((k, v)) => format!("{}={}", k.trim().to_ascii_uppercase(), v.trim()),
            None => part.trim().to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn resolve(base: Option<&Path>, file: &str) -> Option<PathBuf> {
    let p = Path::new(file);
    if p.is_absolute() { Some(p.to_path_buf()) } else { base.map(|b| b.join(p)) }
}

fn valid_scope(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b":_-.".contains(&b))
}

pub fn compile(
    m: &Merged,
    base: Option<&Path>,
    profiles: &HashMap<String, Arc<Profile>>,
    errors: &mut Vec<ConfigError>,
) -> Option<Partners> {
    let (at, raw): (&At, _) = m.partners.as_ref().map(|(a, p)| (a, p))?;
    let before = errors.len();
    let mut roots = RootCertStore::empty();
    if raw.ca.is_empty() {
        errors.push(at.err("ca", "at least one partner CA file is required"));
    }
    for (i, file) in raw.ca.iter().enumerate() {
        let field = format!("ca[{i}]");
        let Some(path) = resolve(base, file) else {
            errors.push(at.err(&field, "relative paths need a policy directory; use an absolute path"));
            continue;
        };
        match rustls_pki_types::CertificateDer::pem_file_iter(&path).map(|it| it.collect::<Result<Vec<_>, _>>()) {
            Ok(Ok(certs)) if !certs.is_empty() => {
                for cert in certs {
                    if let Err(e) = roots.add(cert) {
                        errors.push(at.err(&field, format!("{}: not a usable CA certificate: {e}", path.display())));
                    }
                }
            }
            Ok(Ok(_)) => errors.push(at.err(&field, format!("{}: no certificate in file", path.display()))),
            Ok(Err(e)) | Err(e) => errors.push(at.err(&field, format!("{}: {e}", path.display()))),
        }
    }
    let mut crls = Vec::new();
    for (i, file) in raw.crl.iter().enumerate() {
        let field = format!("crl[{i}]");
        let Some(path) = resolve(base, file) else {
            errors.push(at.err(&field, "relative paths need a policy directory; use an absolute path"));
            continue;
        };
        match CertificateRevocationListDer::pem_file_iter(&path).map(|it| it.collect::<Result<Vec<_>, _>>()) {
            Ok(Ok(list)) if !list.is_empty() => crls.extend(list),
            Ok(Ok(_)) => errors.push(at.err(&field, format!("{}: no CRL in file", path.display()))),
            Ok(Err(e)) | Err(e) => errors.push(at.err(&field, format!("{}: {e}", path.display()))),
        }
    }

    let mut clients = Vec::new();
    for (id, p) in &raw.clients {
        let f = |field: &str| format!("clients.{id}.{field}");
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) {
            errors.push(at.err(&f(""), "partner ids use letters, digits, '-' and '_'"));
        }
        let cert = match (&p.certificate.spki_sha256, &p.certificate.subject) {
            (Some(pin), None) => match base64::engine::general_purpose::STANDARD.decode(pin.trim()) {
                Ok(bytes) if bytes.len() == 32 => {
                    let mut a = [0u8; 32];
                    a.copy_from_slice(&bytes);
                    Some(CertId::Pin(a))
                }
                _ => {
                    errors.push(at.err(&f("certificate.spki_sha256"), "expected base64 of 32 bytes"));
                    None
                }
            },
            // Any listed CA can issue a certificate with any subject: with several CAs (often one
            // per agency), a subject would let one agency's CA speak for another. Pins cannot be
            // reissued by anyone.
            (None, Some(_)) if roots.len() > 1 => {
                errors.push(at.err(
                    &f("certificate.subject"),
                    "with more than one partner CA certificate, identify partners by `spki_sha256`",
                ));
                None
            }
            (None, Some(subject)) if !subject.trim().is_empty() => Some(CertId::Subject(normalize_subject(subject))),
            _ => {
                errors.push(at.err(&f("certificate"), "give exactly one of `spki_sha256` and `subject`"));
                None
            }
        };
        let key_hash = match hex::decode(p.api_key_sha256.trim()) {
            Ok(b) if b.len() == 32 => {
                let mut a = [0u8; 32];
                a.copy_from_slice(&b);
                Some(a)
            }
            _ => {
                errors.push(at.err(&f("api_key_sha256"), "expected the hex SHA-256 of the API key (64 hex digits)"));
                None
            }
        };
        let mut source = Vec::new();
        if p.source.is_empty() {
            errors.push(at.err(&f("source"), "at least one CIDR is required"));
        }
        for (i, c) in p.source.iter().enumerate() {
            match c.parse::<Cidr>() {
                Ok(c) => source.push(c),
                Err(e) => errors.push(at.err(&f(&format!("source[{i}]")), e)),
            }
        }
        for (i, s) in p.scopes.iter().enumerate() {
            if !valid_scope(s) {
                errors.push(
                    at.err(&f(&format!("scopes[{i}]")), format!("`{s}` is not a scope like beneficiaries:search")),
                );
            }
        }
        let quota = p.quota.as_ref().map_or(Quota { requests: None, subjects_per_day: None }, |q| Quota {
            requests: q.requests.map(|w| {
                if w.limit == 0 || w.window.0.is_zero() {
                    errors.push(at.err(&f("quota.requests"), "limit and window must be greater than zero"));
                }
                WindowLimit { limit: w.limit, window: w.window.0 }
            }),
            subjects_per_day: q.subjects_per_day,
        });
        let profile = match &p.profile {
            None => None,
            Some(name) => match profiles.get(name) {
                Some(profile) => Some(profile.clone()),
                None => {
                    if !m.profiles.iter().any(|(_, known, _)| known == name) {
                        errors.push(at.err(&f("profile"), format!("no profile named `{name}`")));
                    }
                    None
                }
            },
        };
        if let (Some(cert), Some(key_hash)) = (cert, key_hash) {
            clients.push(Partner {
                id: id.clone(),
                enabled: p.enabled,
                cert,
                key_hash,
                source,
                scopes: p.scopes.clone(),
                profile,
                quota,
            });
        }
    }
    for (i, a) in clients.iter().enumerate() {
        for b in &clients[i + 1..] {
            if a.cert == b.cert {
                errors
                    .push(at.err(&format!("clients.{}.certificate", b.id), format!("same certificate as `{}`", a.id)));
            }
            if a.key_hash == b.key_hash {
                errors.push(at.err(&format!("clients.{}.api_key_sha256", b.id), format!("same API key as `{}`", a.id)));
            }
        }
    }
    if errors.len() != before {
        return None;
    }
    Some(Partners { roots: Arc::new(roots), crls, clients })
}

/// Seconds until the next midnight in India (UTC+05:30), where the subjects-per-day quota resets.
pub fn until_ist_midnight(now_ms: u64) -> Duration {
    const IST_OFFSET_MS: u64 = 5 * 3_600_000 + 30 * 60_000;
    const DAY_MS: u64 = 86_400_000;
    let local = now_ms + IST_OFFSET_MS;
    Duration::from_millis(DAY_MS - local % DAY_MS)
}

/// The IST day number of `now_ms`.
pub fn ist_day(now_ms: u64) -> u64 {
    (now_ms + 5 * 3_600_000 + 30 * 60_000) / 86_400_000
}

#[cfg(test)]
mod tests;
