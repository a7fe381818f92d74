//! `check_request` on JSON bodies, and bodies together with queries.

use super::super::{OwnershipError, check_request};
use super::helpers::{CALLER, OTHER, OTHER_PHOTO, OTHER_REF, PHOTO, REF, is_ambiguous, json, ok, rules, subjects};

fn with_type(body: &str, content_type: Option<&str>) -> Result<super::super::Checked, OwnershipError> {
    check_request(&[], None, body.as_bytes(), content_type, &rules(), &subjects())
}

#[test]
fn empty_body_is_not_checked_whatever_its_type() {
    assert_eq!(check_request(&[], None, b"", Some("application/x-www-form-urlencoded"), &rules(), &subjects()), ok(0));
    assert_eq!(check_request(&[], None, b"", None, &rules(), &subjects()), ok(0));
}

#[test]
fn non_empty_body_must_be_json() {
    let form = format!("mobile={OTHER}");
    for ct in [
        None,
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
        Some("multipart/form-data"),
        Some("text/json"),
        Some("application/jsonx"),
        Some("application/vnd.api+json"),
    ] {
        assert_eq!(with_type(&form, ct), Err(OwnershipError::Ambiguous("body must be JSON")), "{ct:?}");
        assert_eq!(
            with_type(&format!(r#"{{"mobile":"{CALLER}"}}"#), ct),
            Err(OwnershipError::Ambiguous("body must be JSON")),
            "{ct:?}"
        );
    }
    for ct in
        ["application/json", "Application/JSON", "application/json; charset=utf-8", " application/json ;charset=UTF-8"]
    {
        assert_eq!(with_type(&format!(r#"{{"mobile":"{CALLER}"}}"#), Some(ct)), ok(1), "{ct}");
        assert_eq!(with_type(&format!(r#"{{"mobile":"{OTHER}"}}"#), Some(ct)), Err(OwnershipError::NotOwned), "{ct}");
    }
}

#[test]
fn body_subjects_are_checked() {
    assert_eq!(json(&format!(r#"{{"mobile":"{CALLER}","other":"x"}}"#)), ok(1));
    assert_eq!(json(&format!(r#"{{"mobile":"{OTHER}"}}"#)), Err(OwnershipError::NotOwned));
    assert_eq!(json(&format!(r#"{{"photo_id_number":"{PHOTO}"}}"#)), ok(1));
    assert_eq!(json(&format!(r#"{{"photo_id_number":"{OTHER_PHOTO}"}}"#)), Err(OwnershipError::NotOwned));
    assert_eq!(json(&format!(r#"{{"beneficiary_reference_id":"{OTHER_REF}"}}"#)), Err(OwnershipError::NotOwned));
    assert_eq!(json(r#"{"session_id":"abc","slot":"09:00AM-11:00AM"}"#), ok(0));
    assert_eq!(json("{}"), ok(0));
}

#[test]
fn body_keys_compare_case_insensitively() {
    assert_eq!(json(&format!(r#"{{"MOBILE":"{OTHER}"}}"#)), Err(OwnershipError::NotOwned));
    assert_eq!(json(&format!(r#"{{"Mobile":"{CALLER}"}}"#)), ok(1));
    assert_eq!(json(&format!(r#"{{"Photo_Id_Number":"{OTHER_PHOTO}"}}"#)), Err(OwnershipError::NotOwned));
    // Same key in two spellings: a backend could read either.
    assert!(is_ambiguous(&json(&format!(r#"{{"mobile":"{CALLER}","Mobile":"{CALLER}"}}"#))));
}

#[test]
fn numbers_are_accepted() {
    assert_eq!(json(&format!(r#"{{"mobile":{CALLER}}}"#)), ok(1));
    assert_eq!(json(&format!(r#"{{"mobile":{OTHER}}}"#)), Err(OwnershipError::NotOwned));
    assert_eq!(json(&format!(r#"{{"beneficiary_reference_id":{REF}}}"#)), ok(1));
    for body in [
        r#"{"mobile":9000000001.0}"#,
        r#"{"mobile":9.000000001e9}"#,
        r#"{"mobile":-9000000001}"#,
        r#"{"mobile":1e400}"#,
    ] {
        assert!(is_ambiguous(&json(body)), "{body}");
    }
}

#[test]
fn arrays_check_every_element() {
    assert_eq!(json(&format!(r#"{{"beneficiaries":[],"beneficiary_reference_id":["{REF}",{REF}]}}"#)), ok(2));
    assert_eq!(
        json(&format!(r#"{{"beneficiary_reference_id":["{REF}","{OTHER_REF}"]}}"#)),
        Err(OwnershipError::NotOwned)
    );
    assert_eq!(json(&format!(r#"{{"mobile":["{CALLER}","{OTHER}"]}}"#)), Err(OwnershipError::NotOwned));
    assert_eq!(json(r#"{"mobile":[]}"#), ok(0));
    assert!(is_ambiguous(&json(&format!(r#"{{"mobile":[["{OTHER}"]]}}"#))));
    assert!(is_ambiguous(&json(r#"{"mobile":[null]}"#)));
}

#[test]
fn other_value_types_are_ambiguous() {
    for v in [
        "null",
        "true",
        "{}",
        r#"{"value":"9000000001"}"#,
        r#""""#,
        r#"" 9000000001""#,
        r#""+919000000001""#,
        r#""%39000000001""#,
    ] {
        let body = format!(r#"{{"mobile":{v}}}"#);
        assert!(is_ambiguous(&json(&body)), "{body}");
    }
}

#[test]
fn non_object_or_invalid_json_is_ambiguous() {
    for body in
        [r#"["9000000002"]"#, r#""mobile""#, "42", "null", "{", "mobile=9000000002", "{\"mobile\":\"9000000001\"}{}"]
    {
        assert!(is_ambiguous(&json(body)), "{body}");
    }
}

#[test]
fn duplicate_keys_at_any_depth_are_ambiguous() {
    for body in [
        format!(r#"{{"mobile":"{CALLER}","mobile":"{OTHER}"}}"#),
        format!(r#"{{"mobile":"{CALLER}","mobile":"{CALLER}"}}"#),
        format!(r#"{{"mobile":"{CALLER}","x":{{"a":1,"a":2}}}}"#),
        format!(r#"{{"mobile":"{CALLER}","\u006dobile":"{OTHER}"}}"#),
    ] {
        assert!(is_ambiguous(&json(&body)), "{body}");
    }
}

#[test]
fn subject_in_both_query_and_body_is_ambiguous() {
    let body = format!(r#"{{"mobile":"{CALLER}"}}"#);
    for q in [format!("mobile={CALLER}"), format!("MOBILE[]={CALLER}")] {
        let r = check_request(&[], Some(&q), body.as_bytes(), Some("application/json"), &rules(), &subjects());
        assert!(is_ambiguous(&r), "{q}");
    }
    // Different parameters in query and body are each checked.
    let body = format!(r#"{{"beneficiary_reference_id":["{REF}"]}}"#);
    let r = check_request(
        &[],
        Some(&format!("mobile={CALLER}")),
        body.as_bytes(),
        Some("application/json"),
        &rules(),
        &subjects(),
    );
    assert_eq!(r, ok(2));
    let body = format!(r#"{{"photo_id_number":"{OTHER_PHOTO}"}}"#);
    let r = check_request(
        &[],
        Some(&format!("mobile={CALLER}")),
        body.as_bytes(),
        Some("application/json"),
        &rules(),
        &subjects(),
    );
    assert_eq!(r, Err(OwnershipError::NotOwned));
}

#[test]
fn body_key_spellings_follow_query_rules() {
    assert_eq!(json(&format!(r#"{{"mobile[]":["{OTHER}"]}}"#)), Err(OwnershipError::NotOwned));
    assert_eq!(json(&format!(r#"{{"photo.id.number":"{OTHER_PHOTO}"}}"#)), Err(OwnershipError::NotOwned));
    assert!(is_ambiguous(&json(&format!(r#"{{"mobile\u0000":"{OTHER}"}}"#))));
}
