use super::*;

#[test]
fn subjects_come_from_query_and_json_and_are_canonical() {
    let names = vec!["mobile".to_string(), "photo_id_number".to_string()];
    let v = named_values(&names, Some("mobile=%2B919000000001&x=1"), br#"{"photo_id_number":"234512341234"}"#).unwrap();
    assert_eq!(v, ["9000000001", "234512341234"]);
    let v = named_values(&names, None, br#"{"MOBILE":[9000000002, "9000000003"]}"#).unwrap();
    assert_eq!(v, ["9000000002", "9000000003"]);
    assert!(named_values(&names, None, br#"{"mobile":"1","mobile":"2"}"#).is_err(), "duplicate keys");
    assert!(named_values(&names, None, b"mobile=9000000001").is_err(), "not JSON");
    assert!(named_values(&names, None, br#"{"mobile":{"$ne":1}}"#).is_err());
}

#[test]
fn every_spelling_the_ownership_check_reads_is_counted() {
    let names = vec!["beneficiary_reference_id".to_string()];
    for query in [
        "beneficiary.reference.id=10000000000001",
        "beneficiary-reference-id=10000000000001",
        "beneficiary_reference_id[0]=10000000000001",
        "x=1;beneficiary_reference_id=10000000000001",
        "BENEFICIARY_REFERENCE_ID=10000000000001",
    ] {
        assert_eq!(named_values(&names, Some(query), b"").unwrap(), ["10000000000001"], "{query}");
    }
    let v = named_values(&names, None, br#"{"Beneficiary-Reference-Id":"10000000000001"}"#).unwrap();
    assert_eq!(v, ["10000000000001"]);
    assert!(named_values(&names, Some("beneficiary_reference_id=%zz"), b"").is_err(), "bad encoding");
}

#[test]
fn path_parameters_are_read_with_the_query_and_the_body() {
    let names = vec!["beneficiary_reference_id".to_string(), "mobile".to_string()];
    let path = vec![
        ("state_id".to_string(), "7".to_string()),
        ("beneficiary_reference_id".to_string(), "10000000000001".to_string()),
    ];
    let v = named_values_in(&names, &path, Some("mobile=9000000001"), br#"{"x":1}"#).unwrap();
    assert_eq!(v, ["10000000000001", "9000000001"]);
    assert!(named_values_in(&["state".to_string()], &path, None, b"").unwrap().is_empty());
    // Without path parameters, `named_values` is the same reading.
    assert_eq!(named_values(&names, Some("mobile=9000000001"), b"").unwrap(), ["9000000001"]);
}

/// The committed corpus of the `params` fuzz target, replayed (what CI runs; fuzzing is not).
#[test]
fn fuzz_corpus_replays_clean() {
    let files = crate::redact::fuzzing::replay("params", super::fuzzing::check);
    assert!(files >= 20, "only {files} corpus files");
}
