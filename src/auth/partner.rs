//! Partner identification: the client certificate (SPKI pin or subject) **and** the `x-api-key`
//! (stored only as a SHA-256, compared in constant time) **and** the source address (CIDR
//! allowlist) must all name the same, enabled partner. Every refusal has the same answer, so a
//! caller cannot tell which factor failed.
//!
//! The certificate chain was verified in the TLS handshake (by [`verifier`]). It is verified
//! again, on the request's clock, before the next request of its connection whenever something
//! may have changed since: the policy was reloaded (a CA removed, a certificate revoked, a CA or
//! CRL file rewritten — the reload loop watches them), a CRL passed its `nextUpdate`, or a
//! certificate of the chain expired. So all of these take effect on open connections too.
//!
//! A partner named by `subject` is recognised by comparing the certificate's subject with the
//! policy's attribute by attribute on the DER ([`Dn`]), never as text.

use std::net::IpAddr;
use std::sync::Arc;

use http::HeaderMap;
use parking_lot::Mutex;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::GatewayError;
use crate::policy::partners::{CertId, Dn, Partners};
use crate::redact::Profile;

/// The client certificate of a connection, with what identification needs precomputed.
pub struct ClientCert {
    pub end_entity: CertificateDer<'static>,
    pub intermediates: Vec<CertificateDer<'static>>,
    pub spki_sha256: [u8; 32],
    /// The subject, attribute by attribute (`None`: a subject no policy subject can equal).
    pub subject: Option<Dn>,
    /// The earliest `notAfter` of the chain the client sent (unix ms).
    not_after_ms: u64,
    checked: Mutex<Checked>,
}

/// The last verification of a connection's certificate.
#[derive(Debug, Clone, Copy)]
struct Checked {
    /// The runtime generation it was verified under.
    generation: u64,
    /// When (unix ms; 0 for the handshake, whose time is not known here).
    at_ms: u64,
    ok: bool,
}

impl std::fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let subject = self.subject.as_ref().map(|s| s.to_string());
        f.debug_struct("ClientCert").field("subject", &subject).finish_non_exhaustive()
    }
}

impl ClientCert {
    /// From the peer chain of a completed handshake (verified then under runtime `generation`).
    pub fn from_chain(chain: &[CertificateDer<'static>], generation: u64) -> Option<ClientCert> {
        let (end_entity, intermediates) = chain.split_first()?;
        let (_, parsed) = x509_parser::parse_x509_certificate(end_entity.as_ref()).ok()?;
        let spki_sha256: [u8; 32] = Sha256::digest(parsed.public_key().raw).into();
        let mut not_after = parsed.validity().not_after.timestamp();
        for der in intermediates {
            // An intermediate that does not parse here did not verify in the handshake either;
            // its expiry is then unknown, so the certificate is checked before every request.
            let expiry = x509_parser::parse_x509_certificate(der.as_ref())
                .map_or(0, |(_, c)| c.validity().not_after.timestamp());
            not_after = not_after.min(expiry);
        }
        Some(ClientCert {
            end_entity: end_entity.clone(),
            intermediates: intermediates.to_vec(),
            spki_sha256,
            subject: Dn::from_x509(parsed.subject()),
            not_after_ms: u64::try_from(not_after).unwrap_or(0).saturating_mul(1000),
            checked: Mutex::new(Checked { generation, at_ms: 0, ok: true }),
        })
    }

    /// Is the certificate still acceptable under the current policy's trust anchors and CRLs, at
    /// `now_ms`? Verified again when the runtime changed, or when a CRL's `nextUpdate` or the
    /// chain's expiry came between the last verification and now; a refusal holds until the
    /// next runtime.
    fn still_valid(
        &self,
        verifier: &dyn ClientCertVerifier,
        partners: &Partners,
        generation: u64,
        now_ms: u64,
    ) -> bool {
        let mut checked = self.checked.lock();
        if checked.generation == generation {
            if !checked.ok {
                return false;
            }
            let crl_lapsed = partners.next_crl_expiry_after(checked.at_ms).is_some_and(|t| t <= now_ms);
            let cert_lapsed = self.not_after_ms <= now_ms;
            if !crl_lapsed && !cert_lapsed {
                return true;
            }
        }
        let ok = verifier.verify_client_cert(&self.end_entity, &self.intermediates, at(now_ms)).is_ok();
        *checked = Checked { generation, at_ms: now_ms, ok };
        ok
    }
}

/// The verifier of partner client certificates, for the handshake and for open connections:
/// chains to a partner CA of the policy; within its validity period; not on a CRL of the policy;
/// and no CRL past its `nextUpdate` vouching for it — a certificate whose CA's CRL has expired is
/// refused (fail closed) until a current CRL is loaded. Certificates of a partner CA without a
/// CRL are checked for chain and validity. `optional` lets clients without a certificate connect
/// (citizens on a shared listener); their requests can never be identified as a partner.
pub fn verifier(partners: &Partners, optional: bool) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let mut builder = WebPkiClientVerifier::builder(partners.roots.clone());
    if !partners.crls.is_empty() {
        builder = builder
            .with_crls(partners.crls.iter().cloned())
            .allow_unknown_revocation_status()
            .enforce_revocation_expiration();
    }
    if optional {
        builder = builder.allow_unauthenticated();
    }
    builder.build().map_err(|e| e.to_string())
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
    if !cert.still_valid(verifier, partners, generation, now_ms) {
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
/// intermediates in the chain, any sub-CA could have issued that subject. Subjects are equal
/// attribute by attribute, in order, with exactly the same values ([`Dn`]).
fn cert_matches(id: &CertId, cert: &ClientCert) -> bool {
    match id {
        CertId::Pin(pin) => bool::from(pin.ct_eq(&cert.spki_sha256)),
        CertId::Subject(s) => cert.intermediates.is_empty() && cert.subject.as_ref() == Some(s),
    }
}

#[cfg(test)]
mod tests;
