//! A per-run PKI for partner tests: a partner CA (with CRLs, current or expiring when asked), a
//! rogue CA, a server certificate, and client certificates that are valid, expired, revoked, from
//! the rogue CA, or with a subject crafted to render like another's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub struct Ca {
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn dn(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::OrganizationName, "otpgate test");
    d.push(DnType::CommonName, cn);
    d
}

impl Ca {
    pub fn new(cn: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = dn(cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = p.self_signed(&key).unwrap();
        Ca { pem: cert.pem(), issuer: Issuer::new(p, key) }
    }

    /// A leaf certificate; `years` is (not_before, not_after) years.
    pub fn leaf(&self, cn: &str, server: bool, years: (i32, i32), serial: u64) -> Leaf {
        self.issue(dn(cn), server, years, serial)
    }

    /// A client certificate whose subject is exactly these RDNs, in this order (one attribute
    /// each), valid 2025–2035.
    pub fn leaf_with_subject(&self, rdns: &[(DnType, &str)], serial: u64) -> Leaf {
        let mut d = DistinguishedName::new();
        for (ty, value) in rdns {
            d.push(ty.clone(), *value);
        }
        self.issue(d, false, (2025, 2035), serial)
    }

    fn issue(&self, dn: DistinguishedName, server: bool, years: (i32, i32), serial: u64) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let sans = if server { vec!["localhost".to_string()] } else { Vec::new() };
        let mut p = CertificateParams::new(sans).unwrap();
        p.distinguished_name = dn;
        p.serial_number = Some(SerialNumber::from(serial));
        p.extended_key_usages =
            vec![if server { ExtendedKeyUsagePurpose::ServerAuth } else { ExtendedKeyUsagePurpose::ClientAuth }];
        p.not_before = rcgen::date_time_ymd(years.0, 1, 1);
        p.not_after = rcgen::date_time_ymd(years.1, 1, 1);
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }

    /// A CRL revoking `revoked_serials`, current until 2035.
    pub fn crl(&self, revoked_serials: &[u64]) -> String {
        let until_2035 = rcgen::date_time_ymd(2035, 1, 1).unix_timestamp();
        self.crl_until(revoked_serials, until_2035)
    }

    /// A CRL revoking `revoked_serials`, issued 2025-01-01, whose `nextUpdate` is `next_update`
    /// (unix seconds).
    pub fn crl_until(&self, revoked_serials: &[u64], next_update: i64) -> String {
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        let params = CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2025, 1, 1),
            next_update: epoch + std::time::Duration::from_secs(u64::try_from(next_update).unwrap()),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked_serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: rcgen::date_time_ymd(2025, 6, 1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params.signed_by(&self.issuer).unwrap().pem().unwrap()
    }
}

pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Leaf {
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let (c, k) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}-key.pem")));
        std::fs::write(&c, &self.cert_pem).unwrap();
        std::fs::write(&k, &self.key_pem).unwrap();
        (c, k)
    }

    /// Base64 SHA-256 of the SPKI, as the policy's `spki_sha256`.
    pub fn pin(&self) -> String {
        use base64::Engine;
        let der = CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).unwrap();
        let cert = otpgate::auth::partner::ClientCert::from_chain(&[der], 0).unwrap();
        base64::engine::general_purpose::STANDARD.encode(cert.spki_sha256)
    }

    pub fn identity(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let cert = CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).unwrap();
        (vec![cert], PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).unwrap())
    }
}

/// TLS to a gateway trusting `server_ca`, presenting `client` if given. Errors (handshake refused)
/// come back as `Err`.
pub async fn connect(
    addr: std::net::SocketAddr,
    server_ca: &str,
    client: Option<&Leaf>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(server_ca.as_bytes()).unwrap()).unwrap();
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let mut config = match client {
        Some(leaf) => {
            let (chain, key) = leaf.identity();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    connector.connect(rustls_pki_types::ServerName::try_from("localhost").unwrap(), tcp).await
}
