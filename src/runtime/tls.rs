//! rustls server configuration: the server certificate chain and key from PEM files, ALPN for h2
//! and http/1.1, and client-certificate verification against the partner CAs and CRLs of the
//! current policy (optional on a shared listener, required on a partner-only listener) by
//! `auth::partner::verifier`, the same verifier that checks open connections again; session
//! resumption by tickets every replica opens (`tickets`) and by session id (this process).

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ProducesTickets, ServerSessionMemoryCache, StoresServerSessions};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::policy::Policy;

pub mod tickets;

/// TLS 1.2 sessions remembered by id (per process; TLS 1.3 clients get tickets instead).
const SESSION_CACHE_ENTRIES: usize = 4096;

/// A TLS setup problem, with the file it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct TlsError {
    pub file: String,
    pub message: String,
}

fn err(file: &Path, message: impl ToString) -> TlsError {
    TlsError { file: file.display().to_string(), message: message.to_string() }
}

pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(path, e))?;
    if certs.is_empty() {
        return Err(err(path, "no certificate in file"));
    }
    Ok(certs)
}

pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| err(path, e))
}

/// The gateway's own certificate and key, loaded once, and how it resumes sessions: one ticketer
/// and one session cache for every config built from it, so a policy reload keeps them.
pub struct ServerIdentity {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// When the leaf certificate expires (unix seconds): `otpgate_tls_certificate_not_after_seconds`.
    pub not_after_secs: i64,
    tickets: Option<Arc<dyn ProducesTickets>>,
    sessions: Arc<dyn StoresServerSessions>,
}

impl ServerIdentity {
    /// The pair in `cert` and `key`, issuing session tickets keyed by `tickets` (see [`tickets`]);
    /// without it, TLS 1.3 resumes from this process's session cache only.
    pub fn load(cert: &Path, key: &Path, tickets: Option<tickets::Tickets>) -> Result<ServerIdentity, TlsError> {
        let certs = load_certs(cert)?;
        let not_after_secs = match certs.first().map(|c| x509_parser::parse_x509_certificate(c.as_ref())) {
            Some(Ok((_, leaf))) => leaf.validity().not_after.timestamp(),
            _ => return Err(err(cert, "the first certificate is not a parsable X.509 certificate")),
        };
        let identity = ServerIdentity {
            certs,
            key: load_key(key)?,
            not_after_secs,
            tickets: tickets.map(|t| Arc::new(t) as Arc<dyn ProducesTickets>),
            sessions: ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES),
        };
        // Fail at start, not at the first handshake, when the pair does not match.
        identity.config(None).map_err(|e| err(cert, e))?;
        Ok(identity)
    }

    /// A server config with `verifier` deciding about client certificates (none: not asked for).
    pub fn config(&self, verifier: Option<Arc<dyn ClientCertVerifier>>) -> Result<Arc<ServerConfig>, rustls::Error> {
        let builder = ServerConfig::builder();
        let builder = match verifier {
            Some(v) => builder.with_client_cert_verifier(v),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(self.certs.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config.session_storage = self.sessions.clone();
        if let Some(t) = &self.tickets {
            config.ticketer = t.clone();
        }
        Ok(Arc::new(config))
    }
}

/// The TLS side of one runtime, built from its policy: the server configs of shared and
/// partner-only listeners, and the verifier that checks partner certificates of open connections
/// again (after a reload, or once a CRL or a certificate of the chain has lapsed).
#[derive(Default)]
pub struct TlsConfigs {
    /// Shared listeners: client certificates optional (citizens present none; partners do).
    pub shared: Option<Arc<ServerConfig>>,
    /// Partner-only listeners: client certificates required.
    pub partner: Option<Arc<ServerConfig>>,
    pub partner_verifier: Option<Arc<dyn ClientCertVerifier>>,
}

impl TlsConfigs {
    /// The configs for `policy`'s partners and the gateway's own certificate, if any.
    pub fn build(policy: &Policy, identity: Option<&ServerIdentity>) -> Result<TlsConfigs, String> {
        let mut tls = TlsConfigs::default();
        if let Some(partners) = &policy.partners {
            tls.partner_verifier = Some(crate::auth::partner::verifier(partners, false)?);
        }
        if let Some(identity) = identity {
            let optional = match &policy.partners {
                Some(p) => Some(crate::auth::partner::verifier(p, true)?),
                None => None,
            };
            tls.shared = Some(identity.config(optional).map_err(|e| e.to_string())?);
            if let Some(v) = &tls.partner_verifier {
                tls.partner = Some(identity.config(Some(v.clone())).map_err(|e| e.to_string())?);
            }
        }
        Ok(tls)
    }
}
