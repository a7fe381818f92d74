//! The compiled `partners` section: trust anchors and CRLs for client certificates, and each
//! partner's certificate identity, API-key hash, source CIDRs, scopes, profile and quotas.
//!
//! A certificate subject is an identity only as the certificate encodes it: [`Dn`] is the
//! RDNSequence as (attribute OID, value) pairs, parsed from the policy string with a syntax that
//! cannot express an ambiguous value, and compared with the certificate's DER attribute by
//! attribute — never as rendered text, where `CN=icmr, O=ICMR` and a CN of `icmr, O=ICMR` look
//! alike. CA and CRL files are read once, hashed, and parsed from those same bytes, so the reload
//! loop can tell when their content changes (`Partners::changed_trust_files`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rustls::RootCertStore;
use rustls_pki_types::CertificateRevocationListDer;
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

use super::Cidr;
use super::citizens::WindowLimit;
use crate::config::{At, ConfigError, Merged};
use crate::redact::Profile;
pub use subject::Dn;
#[cfg(test)]
use subject::{Attr, dotted_oid, encode_oid};

/// How a partner's certificate is recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertId {
    /// SHA-256 of the SubjectPublicKeyInfo.
    Pin([u8; 32]),
    /// The exact subject distinguished name.
    Subject(Dn),
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
    /// What each CRL in `crls` says about itself, in the same order.
    pub crl_info: Vec<CrlInfo>,
    /// The earliest notAfter (unix ms) of the CA certificates: partners' chains end there.
    pub ca_not_after_ms: Option<u64>,
    pub clients: Vec<Partner>,
    /// The CA and CRL files, with the SHA-256 of the bytes compiled.
    trust_files: Vec<TrustFile>,
}

/// A CRL of the policy: which file, which CA issued it, and until when it may be relied on.
#[derive(Debug, Clone)]
pub struct CrlInfo {
    pub file: String,
    /// The issuer's distinguished name (a CA's name, never a person's).
    pub issuer: String,
    /// `nextUpdate`, unix ms: from then on the CRL no longer vouches for the certificates of its
    /// CA, and those certificates are refused until a newer CRL is loaded.
    pub next_update_ms: u64,
}

impl CrlInfo {
    pub fn expired(&self, now_ms: u64) -> bool {
        now_ms >= self.next_update_ms
    }
}

/// A file the `partners` section names, as it was read when the policy was compiled.
#[derive(Debug, Clone)]
struct TrustFile {
    path: PathBuf,
    sha256: [u8; 32],
}

impl std::fmt::Debug for Partners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partners")
            .field("roots", &self.roots.len())
            .field("crls", &self.crl_info)
            .field("clients", &self.clients)
            .finish()
    }
}

impl Partners {
    /// Compare the CA and CRL files on disk with the bytes this policy was compiled from. `None`
    /// when every file is unchanged; else a fingerprint of what is on disk now (a file that
    /// cannot be read counts as changed), so a reload that fails on it is reported once.
    pub fn changed_trust_files(&self) -> Option<String> {
        let mut changed = false;
        let mut now = Sha256::new();
        for f in &self.trust_files {
            match read_bounded(&f.path) {
                Ok(bytes) => {
                    let hash: [u8; 32] = Sha256::digest(&bytes).into();
                    changed |= hash != f.sha256;
                    now.update([1]);
                    now.update(hash);
                }
                Err(_) => {
                    changed = true;
                    now.update([0]);
                }
            }
        }
        changed.then(|| hex::encode(&now.finalize()[..8]))
    }

    /// The earliest moment after `after_ms` at which a CRL stops vouching (its `nextUpdate`), if
    /// any: a certificate verified at `after_ms` must be verified again from then on.
    pub fn next_crl_expiry_after(&self, after_ms: u64) -> Option<u64> {
        self.crl_info.iter().map(|c| c.next_update_ms).filter(|&t| t > after_ms).min()
    }
}

/// Largest CA or CRL file read (a CRL of a large CA runs to a few MiB).
const MAX_TRUST_FILE_BYTES: u64 = 64 << 20;

/// The bytes of a regular file of at most [`MAX_TRUST_FILE_BYTES`]: a policy naming a device,
/// FIFO or directory (`/dev/zero`, `/dev/stdin`) must be an error, not a hang or an unbounded
/// read in `check`, at start or in the reload watcher.
fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind, Read};
    if !std::fs::metadata(path)?.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(MAX_TRUST_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_TRUST_FILE_BYTES {
        return Err(Error::new(ErrorKind::InvalidData, "larger than 64 MiB"));
    }
    Ok(bytes)
}

/// Read a file named by the policy, remembering the hash of exactly the bytes read.
fn read_trust_file(path: &Path, files: &mut Vec<TrustFile>) -> std::io::Result<Vec<u8>> {
    let bytes = read_bounded(path)?;
    files.push(TrustFile { path: path.to_path_buf(), sha256: Sha256::digest(&bytes).into() });
    Ok(bytes)
}

/// A CRL's issuer and `nextUpdate`, or why it cannot be used. RFC 5280 §5.1.2.5 requires
/// `nextUpdate`; a list without one could never be told apart from a stale one, so it is refused.
fn crl_info(der: &[u8], file: &str) -> Result<CrlInfo, String> {
    let (_, crl) = x509_parser::parse_x509_crl(der).map_err(|e| format!("not a CRL: {e}"))?;
    let next = crl.next_update().ok_or_else(|| {
        "the CRL has no nextUpdate (RFC 5280 requires one): nothing would tell when it is stale; \
         have the CA issue CRLs with nextUpdate"
            .to_string()
    })?;
    let next_update_ms = u64::try_from(next.timestamp()).unwrap_or(0).saturating_mul(1000);
    Ok(CrlInfo { file: file.to_string(), issuer: crl.issuer().to_string(), next_update_ms })
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
    let mut trust_files = Vec::new();
    let mut ca_not_after_ms = None;
    if raw.ca.is_empty() {
        errors.push(at.err("ca", "at least one partner CA file is required"));
    }
    for (i, file) in raw.ca.iter().enumerate() {
        let field = format!("ca[{i}]");
        let Some(path) = resolve(base, file) else {
            errors.push(at.err(&field, "relative paths need a policy directory; use an absolute path"));
            continue;
        };
        let parsed = read_trust_file(&path, &mut trust_files).and_then(|bytes| {
            rustls_pki_types::CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<Vec<_>, _>>()
                .map_err(std::io::Error::other)
        });
        match parsed {
            Ok(certs) if !certs.is_empty() => {
                for cert in certs {
                    if let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) {
                        let ms =
                            u64::try_from(parsed.validity().not_after.timestamp()).unwrap_or(0).saturating_mul(1000);
                        ca_not_after_ms = Some(ca_not_after_ms.map_or(ms, |t: u64| t.min(ms)));
                    }
                    if let Err(e) = roots.add(cert) {
                        errors.push(at.err(&field, format!("{}: not a usable CA certificate: {e}", path.display())));
                    }
                }
            }
            Ok(_) => errors.push(at.err(&field, format!("{}: no certificate in file", path.display()))),
            Err(e) => errors.push(at.err(&field, format!("{}: {e}", path.display()))),
        }
    }
    let cas_ok = errors.len() == before;
    let mut crls = Vec::new();
    let mut crl_infos = Vec::new();
    for (i, file) in raw.crl.iter().enumerate() {
        let field = format!("crl[{i}]");
        let Some(path) = resolve(base, file) else {
            errors.push(at.err(&field, "relative paths need a policy directory; use an absolute path"));
            continue;
        };
        let shown = path.display().to_string();
        let parsed = read_trust_file(&path, &mut trust_files).and_then(|bytes| {
            CertificateRevocationListDer::pem_slice_iter(&bytes)
                .collect::<Result<Vec<_>, _>>()
                .map_err(std::io::Error::other)
        });
        let list = match parsed {
            Ok(list) if !list.is_empty() => list,
            Ok(_) => {
                errors.push(at.err(&field, format!("{shown}: no CRL in file")));
                continue;
            }
            Err(e) => {
                errors.push(at.err(&field, format!("{shown}: {e}")));
                continue;
            }
        };
        for crl in list {
            // The verifier parses CRLs strictly (webpki); find out here, naming the file, rather
            // than when the TLS configuration is built.
            let checked = crl_info(crl.as_ref(), &shown).and_then(|info| {
                if cas_ok {
                    rustls::server::WebPkiClientVerifier::builder(Arc::new(roots.clone()))
                        .with_crls([crl.clone()])
                        .build()
                        .map_err(|e| format!("not a usable CRL: {e}"))?;
                }
                Ok(info)
            });
            match checked {
                Ok(info) => {
                    crls.push(crl);
                    crl_infos.push(info);
                }
                Err(e) => errors.push(at.err(&field, format!("{shown}: {e}"))),
            }
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
            (None, Some(subject)) => match Dn::parse_policy(subject) {
                Ok(dn) => Some(CertId::Subject(dn)),
                Err(e) => {
                    errors.push(at.err(&f("certificate.subject"), e));
                    None
                }
            },
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
    // Decisions about expired CRLs are taken per handshake and per request, on the request's
    // clock; this only tells whoever loads the policy (`serve`, a reload, `otpgate check`).
    let now_ms = crate::clock::system_now_ms();
    for c in crl_infos.iter().filter(|c| c.expired(now_ms)) {
        tracing::warn!(
            file = %c.file,
            issuer = %c.issuer,
            next_update = %crate::clock::rfc3339(c.next_update_ms),
            "partner CRL is past its nextUpdate: certificates of the CA it covers are refused until a current CRL is installed"
        );
    }
    Some(Partners { roots: Arc::new(roots), crls, crl_info: crl_infos, ca_not_after_ms, clients, trust_files })
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

mod subject;

#[cfg(test)]
pub(crate) mod test_pki;

#[cfg(test)]
mod tests;
