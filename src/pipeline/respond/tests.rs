use crate::redact::{RawProfile, compile, redact};

#[test]
fn registry_codes_cannot_carry_numbers() {
    for ok in ["APPOIN0040", "BENERR0001", "GENERR0500", "NF"] {
        assert!(super::registry_code(ok), "{ok}");
    }
    for bad in ["", "9000000001", "APPOIN9000000001", "appoin0040", "A-B", "ABCDEFGHIJKLMNOPQ", "X12345"] {
        assert!(!super::registry_code(bad), "{bad}");
    }
}

/// What the `respond` phase reads from `doc` for the audit record: `None` when it is not strict
/// JSON (refused).
fn read(doc: &[u8]) -> Option<super::Released> {
    let parsed = crate::ownership::parse_strict(doc).ok()?;
    Some(super::released(&parsed, "beneficiaries", "mobile_number", "beneficiary_reference_id"))
}

fn released(doc: &[u8]) -> super::Released {
    read(doc).expect("readable")
}

#[test]
fn records_are_found_whatever_the_case_of_their_keys() {
    let doc = br#"{"Beneficiaries":[{"Beneficiary_Reference_Id":"10000000000001","MOBILE_NUMBER":"9000000001"},{"beneficiary_reference_id":10000000000002}]}"#;
    let r = released(doc);
    assert_eq!(r.count, 2);
    assert_eq!(r.refs, ["10000000000001", "10000000000002"]);
    assert_eq!(r.owners, ["9000000001"]);
}

/// A partner's answer is not filtered: every spelling a profile may let through is named.
#[test]
fn every_spelling_of_records_references_and_owners_is_named() {
    let doc = br#"{"beneficiaries":[{"beneficiary_reference_id":"10000000000001","BENEFICIARY_REFERENCE_ID":"10000000000002","mobile_number":"9000000001","Mobile_Number":"9000000002"}],
        "Beneficiaries":[{"beneficiary_reference_id":"10000000000003","mobile_number":"9000000003"}],
        "BENEFICIARIES":{"not":"an array"}, "others":[{"beneficiary_reference_id":"10000000000009"}]}"#;
    let r = released(doc);
    assert_eq!(r.count, 2);
    let mut refs = r.refs.clone();
    refs.sort();
    assert_eq!(refs, ["10000000000001", "10000000000002", "10000000000003"]);
    let mut owners = r.owners.clone();
    owners.sort();
    assert_eq!(owners, ["9000000001", "9000000002", "9000000003"]);
}

/// A document the audit cannot read is refused (502) rather than released with no record named:
/// `1e400` is JSON the redactor passes as written, but serde cannot hold it.
#[test]
fn a_document_the_audit_cannot_read_is_not_named_as_empty() {
    let raw: RawProfile = serde_yaml_ng::from_str("default: allow\n").expect("profile YAML");
    let profile = compile("all", &raw, b"0123456789abcdef0123456789abcdef").expect("profile compiles");
    let big = br#"{"beneficiaries":[{"beneficiary_reference_id":"10000000000001","n":1e400}]}"#;
    assert!(redact(&profile, big).is_ok(), "the redactor would release it");
    for doc in [
        &big[..],
        br#"{"beneficiaries":[{"beneficiary_reference_id":"1"}],"beneficiaries":[]}"#,
        br#"{"beneficiaries":[{"name":"\ud800"}]}"#,
        b"{\"beneficiaries\":[]} trailing",
        b"not json",
    ] {
        assert!(read(doc).is_none(), "{}", String::from_utf8_lossy(doc));
    }
}

/// `ownership::same_key` reads at least every key the redactor reads as a rule's key: for each
/// candidate key, if a profile keeping `NAME[*].x` lets `{KEY: [{"x": 1}]}` through, the filter
/// must treat KEY as a spelling of NAME.
#[test]
fn the_filter_reads_every_key_the_redactor_reads_as_the_records_key() {
    let raw: RawProfile = serde_yaml_ng::from_str(
        "default: deny\nrules:\n  - {path: \"beneficiaries[*].x\", action: keep}\n  - {path: \"bookings[*].x\", action: keep}\n",
    )
    .expect("profile YAML");
    let profile = compile("agreement", &raw, b"0123456789abcdef0123456789abcdef").expect("profile compiles");
    // Every one-character change of each name: each ASCII character, and every non-ASCII character
    // whose lowercase or uppercase holds an ASCII letter (the Kelvin sign, the dotless i, the long s, …).
    let special: Vec<char> = (0x80..=0x10FFFF_u32)
        .filter_map(char::from_u32)
        .filter(|c| c.to_lowercase().chain(c.to_uppercase()).any(|l| l.is_ascii_alphabetic()))
        .collect();
    let mut candidates: Vec<String> = Vec::new();
    for name in ["beneficiaries", "bookings"] {
        candidates.push(name.to_string());
        candidates.push(name.to_uppercase());
        for (i, _) in name.char_indices() {
            for c in (0u8..0x80).map(char::from).chain(special.iter().copied()) {
                let mut key = name.to_string();
                key.replace_range(i..i + 1, c.encode_utf8(&mut [0; 4]));
                candidates.push(key);
            }
        }
    }
    let mut seen_non_ascii = 0;
    for key in candidates {
        let mut doc = serde_json::Map::new();
        doc.insert(key.clone(), serde_json::json!([{"x": 1}]));
        let doc = serde_json::Value::Object(doc).to_string();
        let (out, _) = redact(&profile, doc.as_bytes()).expect("valid JSON");
        let kept = out != b"{}";
        if kept {
            let filter_reads = ["beneficiaries", "bookings"].iter().any(|n| crate::ownership::same_key(&key, n));
            assert!(filter_reads, "the redactor reads {key:?} as a records key; the filter does not");
            seen_non_ascii += usize::from(!key.is_ascii());
        }
    }
    assert!(seen_non_ascii > 0, "the Kelvin sign in `bookings` is read as `k` by the redactor");
}
