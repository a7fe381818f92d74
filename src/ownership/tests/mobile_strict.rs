//! `canonical_mobile`, `parse_strict`, the error statuses and the masking `Debug` impls.

use serde_json::json;

use super::super::{Filtered, OwnershipError, RequestRule, ResponseRule, SubjectKind, canonical_mobile, parse_strict};
use super::helpers::{CALLER, PHOTO, REF, subjects};

#[test]
fn canonical_mobile_accepts_the_four_spellings() {
    for s in ["9000000001", "+919000000001", "919000000001", "09000000001"] {
        assert_eq!(canonical_mobile(s).as_deref(), Some("9000000001"), "{s}");
    }
    for first in ['6', '7', '8', '9'] {
        let m = format!("{first}123456789");
        assert_eq!(canonical_mobile(&m), Some(m.clone()));
    }
}

#[test]
fn canonical_mobile_refuses_everything_else() {
    for s in [
        "",
        "5000000001",         // first digit below 6
        "0000000001",         //
        "900000000",          // 9 digits
        "90000000011",        // 11 digits without trunk 0
        "900000000123",       // 12 digits without 91
        "+9190000000011",     // too long
        "+929000000001",      // other country
        "0919000000001",      // two prefixes
        "+09000000001",       //
        "91 9000000001",      // separators
        "90000 00001",        //
        "9000-000-001",       //
        " 9000000001",        // whitespace
        "9000000001\n",       //
        "XXXXXX0001",         // upstream mask
        "90000000O1",         // letter O
        "９０００００００01", // full-width digits
        "+915000000001",      // prefix, bad first digit
        "915000000001",       //
        "05000000001",        //
    ] {
        assert_eq!(canonical_mobile(s), None, "{s:?}");
    }
}

#[test]
fn parse_strict_equals_serde_json_on_valid_input() {
    let text = r#"{"a":[1,-2,3.5,1e3,18446744073709551615,true,null,"x\u0041"],"b":{"c":{}},"d":[]}"#;
    let expected: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(parse_strict(text.as_bytes()).unwrap(), expected);
    assert_eq!(parse_strict(b" 42 ").unwrap(), json!(42));
    assert_eq!(parse_strict(b"\"s\"").unwrap(), json!("s"));
}

#[test]
fn parse_strict_refuses_duplicate_keys_at_any_depth() {
    for text in [
        r#"{"a":1,"a":2}"#,
        r#"{"a":1,"a":1}"#,
        r#"{"a":1,"\u0061":2}"#,
        r#"{"x":{"a":1,"b":2,"a":3}}"#,
        r#"[{"ok":1},{"a":{"deep":[{"k":1,"k":2}]}}]"#,
    ] {
        assert_eq!(
            parse_strict(text.as_bytes()),
            Err(OwnershipError::Ambiguous("invalid or ambiguous JSON")),
            "{text}"
        );
    }
    // Keys differing only in case are different JSON keys.
    assert!(parse_strict(br#"{"a":1,"A":2}"#).is_ok());
}

#[test]
fn parse_strict_refuses_invalid_json() {
    for bytes in [
        &b""[..],
        b"{",
        b"{\"a\":1} {}",
        b"{\"a\":1}x",
        b"{'a':1}",
        b"{\"a\":NaN}",
        b"{\"a\":\"\xff\"}",
        b"\"\\ud800\"",
        b"[1,]",
    ] {
        assert!(parse_strict(bytes).is_err(), "{:?}", String::from_utf8_lossy(bytes));
    }
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    assert!(parse_strict(deep.as_bytes()).is_err(), "recursion limit applies");
}

#[test]
fn error_statuses() {
    assert_eq!(OwnershipError::Ambiguous("x").status_code(), 400);
    assert_eq!(OwnershipError::NotOwned.status_code(), 403);
    assert_eq!(OwnershipError::NothingLeft.status_code(), 404);
    assert_eq!(OwnershipError::BadUpstream("x").status_code(), 502);
}

#[test]
fn debug_never_prints_personal_data() {
    let s = format!("{:?}", subjects());
    for secret in [CALLER, PHOTO, REF] {
        assert!(!s.contains(secret), "{s}");
    }
    assert!(s.contains("<set>") && s.contains("beneficiary_refs: 2") && s.contains("photo_ids: 1"), "{s}");
    let f = Filtered { body: CALLER.as_bytes().to_vec(), doc: serde_json::json!({ "m": CALLER }), kept: 1, dropped: 0 };
    assert!(!format!("{f:?}").contains(CALLER));
}

#[test]
fn rules_deserialize_strictly() {
    let rule: RequestRule = serde_json::from_str(r#"{"param":"photo_id_number","kind":"photo_id"}"#).unwrap();
    assert_eq!(rule.kind, SubjectKind::PhotoId);
    let rule: RequestRule = serde_json::from_str(r#"{"param":"b","kind":"beneficiary"}"#).unwrap();
    assert_eq!(rule.kind, SubjectKind::Beneficiary);
    assert!(serde_json::from_str::<RequestRule>(r#"{"param":"m","kind":"mobile","x":1}"#).is_err());
    assert!(serde_json::from_str::<RequestRule>(r#"{"param":"m","kind":"Mobile"}"#).is_err());
    let rule: ResponseRule = serde_json::from_str(r#"{"records":"beneficiaries","owner":"mobile_number"}"#).unwrap();
    assert_eq!((rule.records.as_str(), rule.owner.as_str()), ("beneficiaries", "mobile_number"));
    assert!(serde_json::from_str::<ResponseRule>(r#"{"records":"r","owner":"o","extra":1}"#).is_err());
}
