//! Partner identification: the client certificate (SPKI pin or subject) **and** the `x-api-key`
//! (stored only as a SHA-256, compared in constant time) **and** the source address (CIDR
//! allowlist) must all name the same, enabled partner. Every refusal has the same answer, so a
//! caller cannot tell which factor failed.
//!
//! The certificate chain was verified in the TLS handshake; when the policy is reloaded, a
//! connection's certificate is verified again against the new trust anchors and CRLs before its
//! next request, so removing a CA or revoking a certificate takes effect on open connections too.

use std::net::IpAddr;
use std::sync::Arc;

use http::HeaderMap;
use parking_lot::Mutex;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::GatewayError;
use crate::policy::partners::{CertId, Partners, normalize_subject};
use crate::redact::Profile;

/// The client certificate of a connection, with what identification needs precomputed.
pub struct ClientCert {
    pub end_entity: CertificateDer<'static>,
    pub intermediates: Vec<CertificateDer<'static>>,
    pub spki_sha256: [u8; 32],
    pub subject: String,
    /// The runtime generation this certificate was last verified under.
    verified_under: Mutex<u64>,
}

impl std::fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCert").field("subject", &self.subject).finish_non_exhaustive()
    }
}

impl ClientCert {
    /// From the peer chain of a completed handshake (verified then under runtime `generation`).
    pub fn from_chain(chain: &[CertificateDer<'static>], generation: u64) -> Option<ClientCert> {
        let (end_entity, intermediates) = chain.split_first()?;
        let (_, parsed) = x509_parser::parse_x509_certificate(end_entity.as_ref()).ok()?;
        let spki_sha256: [u8; 32] = Sha256::digest(parsed.public_key().raw).into();
        let subject = normalize_subject(&parsed.subject().to_string());
        Some(ClientCert {
            end_entity: end_entity.clone(),
            intermediates: intermediates.to_vec(),
            spki_sha256,
            subject,
            verified_under: Mutex::new(generation),
        })
    }

    /// Is the certificate still acceptable under the current policy's trust anchors and CRLs?
    fn still_valid(&self, verifier: &dyn ClientCertVerifier, generation: u64, now_ms: u64) -> bool {
        let mut under = self.verified_under.lock();
        if *under == generation {
            return true;
        }
        let ok = verifier.verify_client_cert(&self.end_entity, &self.intermediates, at(now_ms)).is_ok();
        if ok {
            *under = generation;
        }
        ok
    }
}

fn at(now_ms: u64) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_millis(now_ms))
}

/// A verified partner. Only [`identify`] builds one.
#[derive(Debug, Clone)]
pub struct PartnerCaller {
    id: String,
    scopes: Vec<String>,
    profile: Option<Arc<Profile>>,
}

impl PartnerCaller {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The partner's own redaction profile, when it has one.
    pub fn profile(&self) -> Option<&Arc<Profile>> {
        self.profile.as_ref()
    }

    /// A partner for unit tests of the stages after identification.
    #[cfg(test)]
    pub fn for_tests(id: &str, scopes: &[&str], profile: Option<Arc<Profile>>) -> PartnerCaller {
        PartnerCaller { id: id.into(), scopes: scopes.iter().map(|s| s.to_string()).collect(), profile }
    }
}

/// Identify the partner behind a request, or refuse: 401 when credentials are missing, 403 when
/// they do not all name the same enabled partner calling from its allowed addresses.
pub fn identify(
    cert: Option<&Arc<ClientCert>>,
    headers: &HeaderMap,
    client_ip: IpAddr,
    partners: &Partners,
    verifier: &dyn ClientCertVerifier,
    generation: u64,
    now_ms: u64,
) -> Result<PartnerCaller, GatewayError> {
    let cert = cert.ok_or(GatewayError::Unauthenticated)?;
    let mut keys = headers.get_all("x-api-key").iter();
    let key = keys.next().ok_or(GatewayError::Unauthenticated)?;
    if keys.next().is_some() {
        return Err(GatewayError::Forbidden);
    }
    if !cert.still_valid(verifier, generation, now_ms) {
        return Err(GatewayError::Forbidden);
    }
    let key_hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    // Compare against every partner's key so the time taken does not depend on which matched.
    let mut by_key = None;
    for p in &partners.clients {
        if bool::from(p.key_hash.ct_eq(&key_hash)) {
            by_key = Some(p);
        }
    }
    let by_cert = partners.clients.iter().find(|p| cert_matches(&p.cert, cert));
    let partner = match (by_cert, by_key) {
        (Some(a), Some(b)) if a.id == b.id => a,
        _ => return Err(GatewayError::Forbidden),
    };
    let ip = crate::policy::cidr::canonical(client_ip);
    if !partner.enabled || !partner.source.iter().any(|c| c.contains(ip)) {
        return Err(GatewayError::Forbidden);
    }
    Ok(PartnerCaller { id: partner.id.clone(), scopes: partner.scopes.clone(), profile: partner.profile.clone() })
}

/// Does the certificate carry this partner's identity? A pin names the key itself. A subject is
/// only believed from a leaf the (single, see `policy::partners`) partner CA signed directly: with
/// intermediates in the chain, any sub-CA could have issued that subject.
fn cert_matches(id: &CertId, cert: &ClientCert) -> bool {
    match id {
        CertId::Pin(pin) => bool::from(pin.ct_eq(&cert.spki_sha256)),
        CertId::Subject(s) => cert.intermediates.is_empty() && *s == cert.subject,
    }
}

#[cfg(test)]
mod tests;
