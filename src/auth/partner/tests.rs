use super::*;
use crate::policy::partners::test_pki::{self, TestCa, ca};

use std::collections::HashMap;
use std::path::Path;

use rcgen::string::{BmpString, PrintableString};
use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, KeyPair, SerialNumber};

/// Unix ms at midnight UTC of a day.
fn day(y: i32, m: u8, d: u8) -> u64 {
    u64::try_from(rcgen::date_time_ymd(y, m, d).unix_timestamp()).unwrap() * 1000
}

/// A client certificate with exactly these subject RDNs, valid 2025 until `until`.
fn leaf(ca: &TestCa, rdns: &[(DnType, DnValue)], serial: u64, until: (i32, u8, u8)) -> CertificateDer<'static> {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    for (ty, value) in rdns {
        dn.push(ty.clone(), value.clone());
    }
    p.distinguished_name = dn;
    p.serial_number = Some(SerialNumber::from(serial));
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
    p.signed_by(&key, &ca.issuer).unwrap().der().clone()
}

fn crl(ca: &TestCa, revoked: &[u64], next_update: (i32, u8, u8)) -> String {
    test_pki::crl(ca, revoked, next_update).pem().unwrap()
}

fn cert(der: &CertificateDer<'static>) -> Arc<ClientCert> {
    Arc::new(ClientCert::from_chain(std::slice::from_ref(der), 1).unwrap())
}

fn pin(der: &CertificateDer<'static>) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(cert(der).spki_sha256)
}

fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The `partners` section compiled as `serve` compiles it; `clients` is YAML of the clients map.
fn partners(dir: &Path, crls: &[&str], clients: &str) -> Partners {
    let crls: Vec<String> = crls.iter().map(|c| format!("'{c}'")).collect();
    let yaml = format!("partners:\n  ca: ['ca.pem']\n  crl: [{}]\n  clients:\n{clients}", crls.join(", "));
    let sources = crate::config::Sources { files: vec![("p.yaml".into(), yaml)], base: Some(dir.to_path_buf()) };
    let mut errors = Vec::new();
    let p = crate::policy::partners::compile(
        &crate::config::parse(&sources).unwrap(),
        Some(dir),
        &HashMap::new(),
        &mut errors,
    );
    assert!(errors.is_empty(), "{errors:?}");
    p.unwrap()
}

fn client(id: &str, certificate: &str) -> String {
    format!(
        "    {id}: {{certificate: {certificate}, api_key_sha256: '{}', source: ['127.0.0.1/32'], scopes: [s]}}\n",
        key_hash(&format!("{id}-key"))
    )
}

fn headers(key: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-api-key", key.parse().unwrap());
    h
}

const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// A subject as (type, value) RDNs, in order.
type Rdns = Vec<(DnType, DnValue)>;

fn cn_o(cn: &str, o: &str) -> Rdns {
    vec![(DnType::CommonName, cn.into()), (DnType::OrganizationName, o.into())]
}

#[test]
fn subjects_are_compared_on_the_der_not_on_how_they_render() {
    let ca = ca("partner CA");
    let genuine = leaf(&ca, &cn_o("icmr", "ICMR"), 1, (2035, 1, 1));
    let forged = leaf(&ca, &[(DnType::CommonName, "icmr, O=ICMR".into())], 2, (2035, 1, 1));
    // What a string comparison saw: the same subject.
    let render = |der: &CertificateDer<'_>| x509_parser::parse_x509_certificate(der).unwrap().1.subject().to_string();
    assert_eq!(render(&genuine), render(&forged));

    let id = CertId::Subject(Dn::parse_policy("CN=icmr, O=ICMR").unwrap());
    assert!(cert_matches(&id, &cert(&genuine)));
    assert!(!cert_matches(&id, &cert(&forged)), "one CN that contains `, O=` is not CN + O");
    let printable = |s: &str| DnValue::PrintableString(PrintableString::try_from(s).unwrap());
    let cases: Vec<(&str, Rdns, bool)> = vec![
        (
            "PrintableString values",
            vec![(DnType::CommonName, printable("icmr")), (DnType::OrganizationName, printable("ICMR"))],
            true,
        ),
        (
            "the other order",
            vec![(DnType::OrganizationName, "ICMR".into()), (DnType::CommonName, "icmr".into())],
            false,
        ),
        ("another case", cn_o("ICMR", "ICMR"), false),
        ("a trailing space", cn_o("icmr ", "ICMR"), false),
        ("a NUL", cn_o("icmr\0", "ICMR"), false),
        ("only the CN", vec![(DnType::CommonName, "icmr".into())], false),
        ("one more RDN", [cn_o("icmr", "ICMR"), vec![(DnType::OrganizationalUnitName, "x".into())]].concat(), false),
        (
            "a BMPString",
            vec![
                (DnType::CommonName, DnValue::BmpString(BmpString::try_from("icmr").unwrap())),
                (DnType::OrganizationName, "ICMR".into()),
            ],
            false,
        ),
        (
            "the O as a second CN",
            vec![(DnType::CommonName, "icmr".into()), (DnType::CustomDnType(vec![2, 5, 4, 3]), "ICMR".into())],
            false,
        ),
    ];
    for (i, (what, rdns, want)) in cases.into_iter().enumerate() {
        let c = cert(&leaf(&ca, &rdns, 10 + i as u64, (2035, 1, 1)));
        assert_eq!(cert_matches(&id, &c), want, "{what}: {:?}", c.subject);
    }
}

#[test]
fn subjects_count_only_from_leaves_the_partner_ca_signed() {
    let ca = ca("partner CA");
    let der = leaf(&ca, &cn_o("icmr", "ICMR"), 1, (2035, 1, 1));
    let direct = cert(&der);
    let via_sub_ca = ClientCert::from_chain(&[der.clone(), CertificateDer::from(ca.issuer_der())], 1).unwrap();
    let subject = CertId::Subject(Dn::parse_policy("CN=icmr, O=ICMR").unwrap());
    assert!(cert_matches(&subject, &direct));
    assert!(!cert_matches(&subject, &via_sub_ca), "a sub-CA could have issued this subject");
    let pinned = CertId::Pin(direct.spki_sha256);
    assert!(cert_matches(&pinned, &via_sub_ca), "pins hold through intermediates");
    assert!(!cert_matches(&CertId::Pin([8; 32]), &direct));
}

impl TestCa {
    fn issuer_der(&self) -> Vec<u8> {
        use rustls_pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(self.pem.as_bytes()).unwrap().to_vec()
    }
}

#[test]
fn a_crl_past_its_next_update_refuses_the_certificates_of_its_ca_only() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (ca("CA A"), ca("CA B"));
    std::fs::write(dir.path().join("ca.pem"), format!("{}{}", a.pem, b.pem)).unwrap();
    std::fs::write(dir.path().join("a-crl.pem"), crl(&a, &[], (2030, 1, 1))).unwrap();
    let (leaf_a, leaf_b) = (leaf(&a, &cn_o("a", "A"), 1, (2035, 1, 1)), leaf(&b, &cn_o("b", "B"), 1, (2035, 1, 1)));
    let clients = [
        client("a", &format!("{{spki_sha256: '{}'}}", pin(&leaf_a))),
        client("b", &format!("{{spki_sha256: '{}'}}", pin(&leaf_b))),
    ]
    .concat();
    let p = partners(dir.path(), &["a-crl.pem"], &clients);
    let v = verifier(&p, false).unwrap();
    let (before, after) = (day(2029, 12, 31), day(2030, 1, 1));

    // The handshake.
    assert!(v.verify_client_cert(&leaf_a, &[], at(before)).is_ok());
    assert!(v.verify_client_cert(&leaf_a, &[], at(after)).is_err(), "A's CRL has expired: fail closed");
    assert!(v.verify_client_cert(&leaf_b, &[], at(after)).is_ok(), "B has no CRL");

    // Requests on open connections, same runtime generation: the CRL's expiry is noticed.
    let (ca_, cb) = (cert(&leaf_a), cert(&leaf_b));
    let id = |c: &Arc<ClientCert>, key: &str, now: u64| identify(Some(c), &headers(key), LOCAL, &p, v.as_ref(), 1, now);
    assert_eq!(id(&ca_, "a-key", before).unwrap().id(), "a");
    assert_eq!(id(&cb, "b-key", before).unwrap().id(), "b");
    assert!(matches!(id(&ca_, "a-key", after), Err(GatewayError::Forbidden)));
    assert!(matches!(id(&ca_, "a-key", after + 1), Err(GatewayError::Forbidden)));
    assert_eq!(id(&cb, "b-key", after).unwrap().id(), "b");

    // A current CRL, loaded (a new runtime): A's partner is back.
    std::fs::write(dir.path().join("a-crl.pem"), crl(&a, &[], (2031, 1, 1))).unwrap();
    let fresh = partners(dir.path(), &["a-crl.pem"], &clients);
    let v2 = verifier(&fresh, false).unwrap();
    let r = identify(Some(&ca_), &headers("a-key"), LOCAL, &fresh, v2.as_ref(), 2, after);
    assert_eq!(r.unwrap().id(), "a");
}

#[test]
fn a_connection_verified_before_a_crl_lapsed_is_checked_again_at_its_next_request() {
    // The handshake happened while the CRL was current; the first request comes after it lapsed.
    let dir = tempfile::tempdir().unwrap();
    let a = ca("CA A");
    std::fs::write(dir.path().join("ca.pem"), &a.pem).unwrap();
    std::fs::write(dir.path().join("crl.pem"), crl(&a, &[], (2030, 1, 1))).unwrap();
    let der = leaf(&a, &cn_o("a", "A"), 1, (2035, 1, 1));
    let p = partners(dir.path(), &["crl.pem"], &client("a", "{subject: 'CN=a, O=A'}"));
    let v = verifier(&p, false).unwrap();
    let c = cert(&der);
    assert!(matches!(
        identify(Some(&c), &headers("a-key"), LOCAL, &p, v.as_ref(), 1, day(2030, 1, 2)),
        Err(GatewayError::Forbidden)
    ));
    let fresh = cert(&der);
    let r = identify(Some(&fresh), &headers("a-key"), LOCAL, &p, v.as_ref(), 1, day(2029, 6, 1));
    assert_eq!(r.unwrap().id(), "a", "subject identity, CRL current");
}

#[test]
fn open_connections_follow_a_new_crl_and_a_certificate_that_expires() {
    let dir = tempfile::tempdir().unwrap();
    let a = ca("CA A");
    std::fs::write(dir.path().join("ca.pem"), &a.pem).unwrap();
    std::fs::write(dir.path().join("crl.pem"), crl(&a, &[], (2035, 1, 1))).unwrap();
    let der = leaf(&a, &cn_o("a", "A"), 7, (2031, 1, 1));
    let clients = client("a", &format!("{{spki_sha256: '{}'}}", pin(&der)));
    let p1 = partners(dir.path(), &["crl.pem"], &clients);
    let v1 = verifier(&p1, false).unwrap();
    let c = cert(&der);
    let now = day(2026, 1, 1);
    assert!(identify(Some(&c), &headers("a-key"), LOCAL, &p1, v1.as_ref(), 1, now).is_ok());

    // Generation 2 revokes serial 7: refused, and stays refused under that generation.
    std::fs::write(dir.path().join("crl.pem"), crl(&a, &[7], (2035, 1, 1))).unwrap();
    assert!(p1.changed_trust_files().is_some(), "the reload loop sees the new CRL");
    let p2 = partners(dir.path(), &["crl.pem"], &clients);
    let v2 = verifier(&p2, false).unwrap();
    for _ in 0..2 {
        let r = identify(Some(&c), &headers("a-key"), LOCAL, &p2, v2.as_ref(), 2, now);
        assert!(matches!(r, Err(GatewayError::Forbidden)), "revoked");
    }
    // Generation 3 (the old CRL again) admits it; the certificate expiring later refuses it.
    assert!(identify(Some(&c), &headers("a-key"), LOCAL, &p1, v1.as_ref(), 3, now).is_ok());
    let expired = day(2031, 1, 1) + 1000;
    assert!(matches!(
        identify(Some(&c), &headers("a-key"), LOCAL, &p1, v1.as_ref(), 3, expired),
        Err(GatewayError::Forbidden)
    ));
}
