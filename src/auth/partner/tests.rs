use super::*;

fn cert(intermediates: usize) -> ClientCert {
    ClientCert {
        end_entity: CertificateDer::from(vec![1u8]),
        intermediates: vec![CertificateDer::from(vec![2u8]); intermediates],
        spki_sha256: [7; 32],
        subject: "CN=icmr, O=ICMR".into(),
        verified_under: Mutex::new(0),
    }
}

#[test]
fn subjects_count_only_from_leaves_the_partner_ca_signed() {
    let subject = CertId::Subject("CN=icmr, O=ICMR".into());
    assert!(cert_matches(&subject, &cert(0)));
    assert!(!cert_matches(&subject, &cert(1)), "a sub-CA could have issued this subject");
    assert!(cert_matches(&CertId::Pin([7; 32]), &cert(1)), "pins hold through intermediates");
    assert!(!cert_matches(&CertId::Pin([8; 32]), &cert(0)));
}
