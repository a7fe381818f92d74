//! Development certificates for `otpgate demo`: a CA, a server certificate for localhost and a
//! partner client certificate, written as PEM files. Existing files are reused, so a CA a user
//! already trusts stays valid across runs. Not for production: see `certs/README.md`.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// Paths of the files in the data dir.
#[derive(Debug, Clone)]
pub struct DevCerts {
    pub ca: PathBuf,
    pub ca_key: PathBuf,
    pub server: PathBuf,
    pub server_key: PathBuf,
    pub partner: PathBuf,
    pub partner_key: PathBuf,
}

impl DevCerts {
    pub fn in_dir(dir: &Path) -> Self {
        DevCerts {
            ca: dir.join("ca.pem"),
            ca_key: dir.join("ca-key.pem"),
            server: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
            partner: dir.join("partner-icmr.pem"),
            partner_key: dir.join("partner-icmr-key.pem"),
        }
    }

    fn all(&self) -> [&PathBuf; 6] {
        [&self.ca, &self.ca_key, &self.server, &self.server_key, &self.partner, &self.partner_key]
    }
}

/// The host name CoWIN's clients call (`https://cdn-api.co-vin.in/api/v2/…`).
pub const COWIN_API_HOST: &str = "cdn-api.co-vin.in";

/// Make sure the data dir has a CA, server and partner certificate; generate what is missing.
pub fn ensure(dir: &Path) -> Result<DevCerts, String> {
    let certs = DevCerts::in_dir(dir);
    if certs.all().iter().all(|p| p.is_file()) {
        return Ok(certs);
    }
    generate(&certs).map_err(|e| format!("generating dev certificates: {e}"))?;
    Ok(certs)
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "otpgate demo");
    dn.push(DnType::CommonName, cn);
    dn
}

fn generate(c: &DevCerts) -> Result<(), Box<dyn std::error::Error>> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name = name("otpgate demo CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    ca_params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, &ca_key);

    let server_key = KeyPair::generate()?;
    // Also CoWIN's API host, so that unmodified CoWIN clients can be pointed at the demo through an
    // HTTPS proxy or a hosts entry (they trust the demo CA only if told to).
    let mut sp = CertificateParams::new(vec!["localhost".to_string(), COWIN_API_HOST.to_string()])?;
    sp.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse()?));
    sp.subject_alt_names.push(SanType::IpAddress("::1".parse()?));
    sp.distinguished_name = name("localhost");
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    sp.not_before = rcgen::date_time_ymd(2025, 1, 1);
    sp.not_after = rcgen::date_time_ymd(2030, 1, 1);
    let server = sp.signed_by(&server_key, &issuer)?;

    let partner_key = KeyPair::generate()?;
    let mut pp = CertificateParams::new(Vec::<String>::new())?;
    pp.distinguished_name = name("icmr");
    pp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    pp.not_before = rcgen::date_time_ymd(2025, 1, 1);
    pp.not_after = rcgen::date_time_ymd(2030, 1, 1);
    let partner = pp.signed_by(&partner_key, &issuer)?;

    std::fs::create_dir_all(c.ca.parent().unwrap_or(Path::new(".")))?;
    write(&c.ca, &ca_cert.pem(), false)?;
    write(&c.ca_key, &ca_key.serialize_pem(), true)?;
    write(&c.server, &server.pem(), false)?;
    write(&c.server_key, &server_key.serialize_pem(), true)?;
    write(&c.partner, &partner.pem(), false)?;
    write(&c.partner_key, &partner_key.serialize_pem(), true)?;
    Ok(())
}

/// Write a file; private keys get mode 0600.
pub fn write(path: &Path, content: &str, private: bool) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(content.as_bytes())
}
