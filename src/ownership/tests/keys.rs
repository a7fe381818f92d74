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

/// The ASCII fast path gives the answer the full folding gives: every pair of one- and
/// two-character ASCII strings, and longer keys differing in case or in one character.
#[test]
fn the_ascii_shortcut_agrees_with_the_full_folding() {
    fn full(key: &str, name: &str) -> bool {
        let fold = |s: &str| if s.is_ascii() { s.to_ascii_lowercase() } else { s.to_lowercase() };
        key == name
            || fold(key) == fold(name)
            || key.to_uppercase().to_lowercase() == name.to_uppercase().to_lowercase()
    }
    let chars: Vec<char> = (0x20u8..0x7f).map(char::from).collect();
    let mut keys: Vec<String> = chars.iter().map(char::to_string).collect();
    for a in ['a', 'A', 'z', '_', '0', 'k', 'K', 's', 'S', 'i', 'I'] {
        keys.extend(chars.iter().map(|b| format!("{a}{b}")));
    }
    keys.extend(
        ["beneficiaries", "BENEFICIARIES", "Beneficiaries", "beneficiarieS", "beneficiarie5", "mobile_number"]
            .map(String::from),
    );
    for key in &keys {
        for name in &keys {
            assert_eq!(same_key(key, name), full(key, name), "{key:?} vs {name:?}");
        }
    }
}
