use super::test_pki::{ca, crl};
use super::*;

fn dn(s: &str) -> Dn {
    Dn::parse_policy(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn policy_subjects_parse_into_attributes_in_order() {
    // Names in any case, spaces around separators ignored, dotted OIDs for the same type.
    assert_eq!(dn("cn=icmr,O= ICMR "), dn("CN=icmr, O=ICMR"));
    assert_eq!(dn("2.5.4.3=icmr, 2.5.4.10=ICMR"), dn("CN=icmr, O=ICMR"));
    assert_eq!(dn("  O = otpgate test ,  CN = nic "), dn("O=otpgate test, CN=nic"));
    // Values are exact: case, inner spaces; order and count of RDNs matter.
    assert_ne!(dn("CN=ICMR, O=ICMR"), dn("CN=icmr, O=ICMR"));
    assert_ne!(dn("O=otpgate  test"), dn("O=otpgate test"));
    assert_ne!(dn("O=ICMR, CN=icmr"), dn("CN=icmr, O=ICMR"));
    assert_ne!(dn("CN=icmr"), dn("CN=icmr, O=ICMR"));
    assert_eq!(dn("CN=icmr, O=ICMR").0.len(), 2);
    // Unicode and RFC 4514-safe punctuation are fine.
    assert_eq!(dn("O=भारत, CN=a.b-c_d (x)/y:z").0[0].value, "भारत");
    assert_eq!(dn("DC=in, DC=gov, UID=x1, SERIALNUMBER=42, emailAddress=ops@icmr.example").0.len(), 5);
}

#[test]
fn ambiguous_policy_subjects_are_refused() {
    for bad in [
        "",
        "  ",
        "CN=icmr,",
        ",CN=icmr",
        "CN=icmr,, O=ICMR",
        "CN=icmr + O=ICMR",
        "CN=a+b",
        "CN=icmr\\, O=ICMR",
        "CN=a=b",
        "CN=",
        "CN",
        "=icmr",
        "FOO=x",
        "3.1=x",
        "1.40=x",
        "01.2=x",
        "2..5=x",
        "2=x",
        "CN=#04026869",
        "CN=a;b",
        "CN=\"icmr\"",
        "CN=<icmr>",
        "CN=a\tb",
        "CN=a\u{0}b",
    ] {
        assert!(Dn::parse_policy(bad).is_err(), "{bad:?} accepted as {:?}", Dn::parse_policy(bad));
    }
    let e = Dn::parse_policy("CN=icmr\\, O=ICMR").unwrap_err();
    assert!(e.contains("spki_sha256"), "{e}");
}

#[test]
fn oids_encode_as_der() {
    assert_eq!(encode_oid("2.5.4.3").unwrap(), [0x55, 0x04, 0x03]);
    assert_eq!(encode_oid("1.2.840.113549.1.9.1").unwrap(), [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]);
    assert_eq!(
        encode_oid("0.9.2342.19200300.100.1.25").unwrap(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19]
    );
    assert_eq!(encode_oid("2.999.3").unwrap(), [0x88, 0x37, 0x03]);
    for dotted in ["2.5.4.3", "1.2.840.113549.1.9.1", "2.999.3", "0.0"] {
        assert_eq!(dotted_oid(&encode_oid(dotted).unwrap()), dotted);
    }
    for bad in ["", "2", "3.1", "1.40", "2.5.", ".2.5", "2.05", "2.5.x", "2.5.99999999999999999999999"] {
        assert_eq!(encode_oid(bad), None, "{bad}");
    }
}

#[test]
fn subjects_display_with_escapes() {
    assert_eq!(dn("cn=icmr, o=ICMR, 2.5.4.97=NTRIN-1").to_string(), "CN=icmr, O=ICMR, 2.5.4.97=NTRIN-1");
    let forged = Dn(vec![Attr { oid: encode_oid("2.5.4.3").unwrap(), value: "icmr, O=ICMR".into() }]);
    assert_eq!(forged.to_string(), "CN=icmr\\, O\\=ICMR");
}

/// One DER TLV: (tag, the whole element, its content).
fn tlv(input: &[u8]) -> (u8, &[u8], &[u8]) {
    let (tag, first) = (input[0], input[1]);
    let (header, len) = if first < 0x80 {
        (2, first as usize)
    } else {
        let n = (first & 0x7f) as usize;
        (2 + n, input[2..2 + n].iter().fold(0usize, |acc, b| acc << 8 | *b as usize))
    };
    (tag, &input[..header + len], &input[header..header + len])
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

/// The CRL without its nextUpdate field (the signature no longer matches; the field is what is
/// checked first).
fn without_next_update(crl: &[u8]) -> Vec<u8> {
    let (_, _, list) = tlv(crl);
    let (_, tbs, tbs_content) = tlv(list);
    let rest = &list[tbs.len()..];
    let mut fields = Vec::new();
    let mut at = tbs_content;
    while !at.is_empty() {
        let (tag, whole, _) = tlv(at);
        fields.push((tag, whole));
        at = &at[whole.len()..];
    }
    // version, signature, issuer, thisUpdate, nextUpdate, …
    assert!(matches!(fields[4].0, 0x17 | 0x18), "{fields:?}");
    fields.remove(4);
    let tbs = der(0x30, &fields.iter().flat_map(|(_, w)| w.iter().copied()).collect::<Vec<_>>());
    der(0x30, &[tbs, rest.to_vec()].concat())
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

fn compile_partners(dir: &Path, crls: &[&str], subject: &str) -> Result<Partners, Vec<ConfigError>> {
    let list = |names: &[&str]| names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ");
    let yaml = format!(
        "partners:\n  ca: ['ca.pem']\n  crl: [{}]\n  clients:\n    x: {{certificate: {{subject: '{subject}'}}, api_key_sha256: '{}', source: ['127.0.0.1/32'], scopes: [s]}}\n",
        list(crls),
        "ab".repeat(32)
    );
    let sources = crate::config::Sources { files: vec![("partners.yaml".into(), yaml)], base: Some(dir.to_path_buf()) };
    let merged = crate::config::parse(&sources)?;
    let mut errors = Vec::new();
    let partners = compile(&merged, Some(dir), &HashMap::new(), &mut errors);
    match partners {
        Some(p) if errors.is_empty() => Ok(p),
        _ => Err(errors),
    }
}

#[test]
fn ambiguous_subjects_are_policy_errors_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("partner CA");
    std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
    let p = compile_partners(dir.path(), &[], "CN=icmr, O=ICMR").unwrap();
    assert_eq!(p.clients[0].cert, CertId::Subject(dn("CN=icmr, O=ICMR")));
    for bad in ["CN=icmr\\, O=ICMR", "CN=icmr+O=ICMR", "CN=icmr,", ""] {
        let errors = compile_partners(dir.path(), &[], bad).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].path, "partners.clients.x.certificate.subject", "{bad}: {errors:?}");
        assert_eq!(errors[0].file, "partners.yaml");
    }
}

#[test]
fn crls_need_a_next_update_and_must_parse() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("partner CA");
    std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
    let good = crl(&ca, &[66], (2035, 1, 1));
    std::fs::write(dir.path().join("good.pem"), good.pem().unwrap()).unwrap();
    std::fs::write(dir.path().join("none.pem"), pem("X509 CRL", &without_next_update(good.der()))).unwrap();
    std::fs::write(dir.path().join("junk.pem"), pem("X509 CRL", b"not a CRL")).unwrap();
    std::fs::write(dir.path().join("empty.pem"), "").unwrap();

    let p = compile_partners(dir.path(), &["good.pem"], "CN=x").unwrap();
    assert_eq!(p.crls.len(), 1);
    assert_eq!(p.crl_info[0].next_update_ms, 2_051_222_400_000, "2035-01-01T00:00:00Z");
    assert!(p.crl_info[0].issuer.contains("partner CA"), "{:?}", p.crl_info);

    let errors = compile_partners(dir.path(), &["good.pem", "none.pem"], "CN=x").unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "partners.crl[1]");
    assert!(errors[0].message.contains("no nextUpdate"), "{errors:?}");
    for bad in ["junk.pem", "empty.pem", "missing.pem"] {
        let errors = compile_partners(dir.path(), &[bad], "CN=x").unwrap_err();
        assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
        assert_eq!(errors[0].path, "partners.crl[0]", "{bad}: {errors:?}");
    }
}

/// A policy naming a device, a FIFO or a directory as a trust file is an error naming the field,
/// never a read that hangs or does not end (found writing the `policy` fuzz target).
#[test]
fn trust_files_that_are_not_regular_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &ca("partner CA").pem).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    for bad in ["/dev/zero", "/dev/stdin", "sub", "fifo"] {
        let errors = compile_partners(dir.path(), &[bad], "CN=x").unwrap_err();
        assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
        assert_eq!(errors[0].path, "partners.crl[0]", "{bad}: {errors:?}");
    }
}

#[test]
fn an_expired_crl_is_loaded_and_reported_not_refused() {
    // Refusing the policy would stop the whole gateway (citizens too) over one CA's lapsed CRL;
    // instead its certificates are refused (see `auth::partner`), and compile warns.
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("partner CA");
    std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
    std::fs::write(dir.path().join("old.pem"), crl(&ca, &[], (2025, 2, 1)).pem().unwrap()).unwrap();
    let p = compile_partners(dir.path(), &["old.pem"], "CN=x").unwrap();
    assert!(p.crl_info[0].expired(crate::clock::system_now_ms()));
    assert!(!p.crl_info[0].expired(1_735_689_600_000), "2025-01-01");
}

#[test]
fn trust_files_changes_are_seen_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, other) = (ca("partner CA"), ca("other"));
    std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
    let first = crl(&ca, &[], (2035, 1, 1)).pem().unwrap();
    std::fs::write(dir.path().join("crl.pem"), &first).unwrap();
    let p = compile_partners(dir.path(), &["crl.pem"], "CN=x").unwrap();
    assert_eq!(p.changed_trust_files(), None);
    // Rewritten with the same bytes: no change.
    std::fs::write(dir.path().join("crl.pem"), &first).unwrap();
    assert_eq!(p.changed_trust_files(), None);
    // A new CRL, a changed CA bundle, a file gone: changes, each with its own fingerprint.
    std::fs::write(dir.path().join("crl.pem"), crl(&ca, &[10], (2035, 1, 1)).pem().unwrap()).unwrap();
    let revoked = p.changed_trust_files().expect("a new CRL");
    std::fs::write(dir.path().join("crl.pem"), &first).unwrap();
    assert_eq!(p.changed_trust_files(), None);
    std::fs::write(dir.path().join("ca.pem"), format!("{}{}", ca.pem, other.pem)).unwrap();
    let bundle = p.changed_trust_files().expect("a changed CA file");
    std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
    std::fs::remove_file(dir.path().join("crl.pem")).unwrap();
    let gone = p.changed_trust_files().expect("a missing CRL file");
    assert!(revoked != bundle && bundle != gone && revoked != gone);
}

#[test]
fn the_next_crl_expiry_is_the_earliest_still_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (ca("A"), ca("B"));
    std::fs::write(dir.path().join("ca.pem"), format!("{}{}", a.pem, b.pem)).unwrap();
    std::fs::write(dir.path().join("a.pem"), crl(&a, &[], (2030, 1, 1)).pem().unwrap()).unwrap();
    std::fs::write(dir.path().join("b.pem"), crl(&b, &[], (2031, 1, 1)).pem().unwrap()).unwrap();
    let yaml = format!(
        "partners:\n  ca: ['ca.pem']\n  crl: ['a.pem', 'b.pem']\n  clients:\n    x: {{certificate: {{spki_sha256: '{}'}}, api_key_sha256: '{}', source: ['127.0.0.1/32'], scopes: [s]}}\n",
        "A".repeat(43) + "=",
        "ab".repeat(32)
    );
    let sources =
        crate::config::Sources { files: vec![("partners.yaml".into(), yaml)], base: Some(dir.path().to_path_buf()) };
    let mut errors = Vec::new();
    let p = compile(&crate::config::parse(&sources).unwrap(), Some(dir.path()), &HashMap::new(), &mut errors).unwrap();
    let (y2030, y2031) = (1_893_456_000_000, 1_924_992_000_000);
    assert_eq!(p.next_crl_expiry_after(0), Some(y2030));
    assert_eq!(p.next_crl_expiry_after(y2030 - 1), Some(y2030));
    assert_eq!(p.next_crl_expiry_after(y2030), Some(y2031));
    assert_eq!(p.next_crl_expiry_after(y2031), None);
}

#[test]
fn ist_day_boundaries() {
    // 2026-11-23T18:29:59.999Z is 23:59:59.999 IST.
    let before = 1_795_458_599_999;
    assert_eq!(until_ist_midnight(before), Duration::from_millis(1));
    assert_eq!(ist_day(before) + 1, ist_day(before + 1));
}
