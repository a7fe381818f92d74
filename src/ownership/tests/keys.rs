//! `same_key` and `unique_member`: keys as a case-folding reader sees them.

use serde_json::{Value, json};

use super::super::{Spelling, same_key, unique_member};

#[test]
fn other_spellings_are_the_same_key() {
    for key in ["beneficiaries", "Beneficiaries", "BENEFICIARIES", "bEnEfIcIaRiEs", "beneficiar\u{0131}es"] {
        assert!(same_key(key, "beneficiaries"), "{key:?}");
    }
    assert!(same_key("boo\u{212A}ings", "bookings"), "Kelvin sign: the redactor lowercases it to k");
    assert!(same_key("\u{017F}tatus", "status"), "long s: upper case S");
    assert!(same_key("MOBILE_NUMBER", "mobile_number"));
    for key in [
        "beneficiarie",
        "beneficiaries ",
        " beneficiaries",
        "beneficiaries_",
        "beneficiaries\u{0}",
        "benef\u{ed}ciaries",
    ] {
        assert!(!same_key(key, "beneficiaries"), "{key:?}");
    }
}

#[test]
fn unique_member_refuses_a_second_spelling() {
    let obj = |v: Value| v.as_object().unwrap().clone();
    let one = obj(json!({"beneficiaries": [1], "ttl": 5}));
    assert_eq!(unique_member(&one, "beneficiaries"), Ok(Some(&json!([1]))));
    assert_eq!(unique_member(&one, "missing"), Ok(None));
    for doc in [
        json!({"beneficiaries": [1], "Beneficiaries": [2]}),
        json!({"Beneficiaries": [2]}),
        json!({"BENEFICIARIES": [], "beneficiaries": [1]}),
        json!({"beneficiar\u{0131}es": [2], "beneficiaries": [1]}),
    ] {
        assert_eq!(unique_member(&obj(doc.clone()), "beneficiaries"), Err(Spelling), "{doc}");
    }
}
