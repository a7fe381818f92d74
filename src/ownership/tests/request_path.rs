//! `check_request` on the route's path parameters, alone and with a query or a body.

use super::super::{Checked, OwnershipError, RequestRule, SubjectKind, check_request};
use super::helpers::*;

fn path(name: &str, value: &str) -> Vec<(String, String)> {
    vec![(name.to_owned(), value.to_owned())]
}

fn on_path(params: &[(String, String)]) -> Result<Checked, OwnershipError> {
    check_request(params, None, b"", None, &rules(), &subjects())
}

#[test]
fn a_path_parameter_is_checked_like_a_query_parameter() {
    assert_eq!(on_path(&path("beneficiary_reference_id", REF)), ok(1));
    assert_eq!(on_path(&path("beneficiary_reference_id", REF13)), ok(1));
    assert_eq!(on_path(&path("beneficiary_reference_id", OTHER_REF)), Err(OwnershipError::NotOwned));
    assert_eq!(on_path(&path("mobile", CALLER)), ok(1));
    assert_eq!(on_path(&path("mobile", OTHER)), Err(OwnershipError::NotOwned));
    assert_eq!(on_path(&path("photo_id_number", OTHER_PHOTO)), Err(OwnershipError::NotOwned));
    // Parameters no rule names are not subjects.
    assert_eq!(on_path(&path("state_id", "99999999999999")), ok(0));
    let both = vec![("state_id".to_owned(), "1".to_owned()), ("beneficiary_reference_id".to_owned(), OTHER_REF.into())];
    assert_eq!(on_path(&both), Err(OwnershipError::NotOwned));
}

#[test]
fn malformed_path_values_are_ambiguous() {
    for bad in ["", "abc", "1234567890123a", "+919000000001", "12345678901234 ", "123", "%31234567890123"] {
        assert!(is_ambiguous(&on_path(&path("beneficiary_reference_id", bad))), "{bad:?}");
    }
    assert!(is_ambiguous(&on_path(&path("mobile", &format!("91{CALLER}")))), "prefixed mobiles are refused");
}

#[test]
fn the_path_form_and_any_case_of_the_rule_name_the_same_parameter() {
    for param in ["{beneficiary_reference_id}", "Beneficiary_Reference_Id", "{BENEFICIARY_REFERENCE_ID}"] {
        let rule = vec![RequestRule { param: param.into(), kind: SubjectKind::Beneficiary }];
        let check = |v: &str| check_request(&path("beneficiary_reference_id", v), None, b"", None, &rule, &subjects());
        assert_eq!(check(REF), ok(1), "{param}");
        assert_eq!(check(OTHER_REF), Err(OwnershipError::NotOwned), "{param}");
    }
}

#[test]
fn a_path_parameter_repeated_in_the_query_or_the_body_is_ambiguous() {
    let own = path("beneficiary_reference_id", REF);
    for q in [
        format!("beneficiary_reference_id={REF}"),
        format!("BENEFICIARY.REFERENCE-ID={REF}"),
        format!("beneficiary_reference_id[]={OTHER_REF}"),
    ] {
        assert!(is_ambiguous(&check_request(&own, Some(&q), b"", None, &rules(), &subjects())), "{q}");
    }
    let body = format!(r#"{{"beneficiary_reference_id":"{REF}"}}"#);
    let r = check_request(&own, None, body.as_bytes(), Some("application/json"), &rules(), &subjects());
    assert!(is_ambiguous(&r));
    // Ambiguity is found before ownership: someone else's reference in the path and a repeat is a 400.
    let theirs = path("beneficiary_reference_id", OTHER_REF);
    let q = format!("beneficiary_reference_id={REF}");
    assert!(is_ambiguous(&check_request(&theirs, Some(&q), b"", None, &rules(), &subjects())));
    // Other parameters in the query are checked too.
    let q = format!("mobile={OTHER}");
    assert_eq!(check_request(&own, Some(&q), b"", None, &rules(), &subjects()), Err(OwnershipError::NotOwned));
    let q = format!("mobile={CALLER}");
    assert_eq!(check_request(&own, Some(&q), b"", None, &rules(), &subjects()), ok(2));
}

#[test]
fn the_path_form_is_recognised() {
    let rule = |param: &str| RequestRule { param: param.into(), kind: SubjectKind::Beneficiary };
    assert_eq!((rule("{ref}").name(), rule("{ref}").in_path()), ("ref", true));
    assert_eq!((rule("ref").name(), rule("ref").in_path()), ("ref", false));
    assert_eq!((rule("{ref").name(), rule("{ref").in_path()), ("{ref", false));
}
