//! `check_request` on the query string.

use super::super::{Checked, OwnershipError, RequestRule, SubjectKind, Subjects, check_request};
use super::helpers::{
    CALLER, OTHER, OTHER_PHOTO, OTHER_REF, PHOTO, REF, REF13, is_ambiguous, ok, query, rules, subjects,
};

#[test]
fn no_rules_means_nothing_to_check() {
    let r = check_request(&[], Some("mobile=9000000002&mobile=x%zz"), b"junk", Some("text/plain"), &[], &subjects());
    assert_eq!(r, ok(0));
}

#[test]
fn own_mobile_passes_and_is_counted() {
    assert_eq!(query(&format!("mobile={CALLER}")), ok(1));
    assert_eq!(query(&format!("x=1&mobile={CALLER}&y=2")), ok(1));
    assert_eq!(query("x=1&y=abc%20def"), ok(0));
    assert_eq!(query(""), ok(0));
    assert_eq!(check_request(&[], None, b"", None, &rules(), &subjects()), ok(0));
}

#[test]
fn another_mobile_is_not_owned() {
    assert_eq!(query(&format!("mobile={OTHER}")), Err(OwnershipError::NotOwned));
    assert_eq!(query("mobile=9100000000"), Err(OwnershipError::NotOwned));
}

#[test]
fn name_spellings_all_name_the_parameter() {
    for name in [
        "mobile",
        "MOBILE",
        "Mobile",
        "mob%69le",
        "MOB%49LE",
        "%6d%6f%62%69%6c%65",
        "mobile[]",
        "mobile[0]",
        "mobile%5B%5D",
        "mobile[a][b]",
        "mobile[",
        "mobile+",
        "+mobile",
        "%20mobile",
        "mobile%20[]",
    ] {
        assert_eq!(query(&format!("{name}={OTHER}")), Err(OwnershipError::NotOwned), "{name}");
        assert_eq!(query(&format!("{name}={CALLER}")), ok(1), "{name}");
    }
    // PHP reads `.` and space in names as `_`.
    for name in ["photo.id.number", "photo+id+number", "PHOTO-ID-NUMBER", "photo_id_number[]"] {
        assert_eq!(query(&format!("{name}={OTHER_PHOTO}")), Err(OwnershipError::NotOwned), "{name}");
    }
}

#[test]
fn repeated_subject_parameter_is_ambiguous_even_when_both_are_the_callers() {
    for q in [
        format!("mobile={CALLER}&mobile={CALLER}"),
        format!("mobile={CALLER}&MOBILE={OTHER}"),
        format!("mobile={OTHER}&mob%69le={CALLER}"),
        format!("mobile[]={CALLER}&mobile[]={CALLER}"),
        format!("mobile={CALLER};mobile={OTHER}"),
        format!("photo_id_number={PHOTO}&photo.id.number={PHOTO}"),
    ] {
        assert!(is_ambiguous(&query(&q)), "{q}");
    }
    // Different subject parameters may each appear once.
    assert_eq!(query(&format!("mobile={CALLER}&photo_id_number={PHOTO}&beneficiary_reference_id={REF}")), ok(3));
}

#[test]
fn semicolon_separates_pairs() {
    assert_eq!(query(&format!("x=1;mobile={OTHER}")), Err(OwnershipError::NotOwned));
    assert_eq!(query(&format!("x=1;mobile={CALLER}")), ok(1));
}

#[test]
fn values_are_decoded_once() {
    // %39 is '9': a single encoding of the caller's number is the caller's number.
    assert_eq!(query("mobile=%39000000001"), ok(1));
    assert_eq!(query("mobile=%39000000002"), Err(OwnershipError::NotOwned));
    // Double encoding: %2539 decodes to %39, which a second decoder would read as 9.
    assert!(is_ambiguous(&query("mobile=%2539000000001")));
    assert!(is_ambiguous(&query("mobile=%2539000000002")));
    // Double encoding is refused in any parameter, and in names.
    assert!(is_ambiguous(&query(&format!("mobile={CALLER}&x=%2526mobile%253D9100000000"))));
    assert!(is_ambiguous(&query(&format!("mob%2569le={OTHER}"))));
}

#[test]
fn invalid_percent_encoding_is_ambiguous() {
    for q in ["mobile=%zz00000001", "mobile=900000000%", "mobile=90000000%1", "x=%g1", "mob%ile=1", "x%=1", "x=%"] {
        assert!(is_ambiguous(&query(q)), "{q}");
    }
}

#[test]
fn encoded_delimiters_and_extra_equals_are_ambiguous() {
    for q in [
        "x=%26mobile%3D9100000000",
        "x%3Dy=1",
        "x=a%3Bmobile=1",
        &format!("mobile={CALLER}=9100000000"),
        "x=mobile=9100000000",
    ] {
        assert!(is_ambiguous(&query(q)), "{q}");
    }
}

#[test]
fn odd_names_are_ambiguous() {
    for q in ["mobile%00=9100000000", "mob%C4%B1le=9100000000", "\u{212a}=1", "mobile%7F=1", "%0Amobile=1"] {
        assert!(is_ambiguous(&query(q)), "{q}");
    }
}

#[test]
fn bad_values_are_ambiguous() {
    for q in [
        "mobile=",
        "mobile",
        "mobile=+9000000001",
        "mobile=9000000001+",
        "mobile=%2B919000000001",
        "mobile=919000000001", // prefixed spellings are refused on the request side
        "mobile=09000000001",
        "mobile=900000000",
        "mobile=5000000001",
        "mobile=9000000001x",
        "mobile=-9000000001",
        "mobile=XXXXXX0001",
        "mobile=%EF%BC%99000000001", // full-width 9
        "photo_id_number=",
        "photo_id_number=12345678901",
        "photo_id_number=1234567890123",
        "photo_id_number=1234-5678-9012",
        "beneficiary_reference_id=123456789012",
        "beneficiary_reference_id=123456789012345",
        "beneficiary_reference_id=1234567890123a",
    ] {
        assert!(is_ambiguous(&query(q)), "{q}");
    }
}

#[test]
fn photo_ids_and_beneficiaries_must_be_the_callers() {
    assert_eq!(query(&format!("photo_id_number={PHOTO}")), ok(1));
    assert_eq!(query(&format!("photo_id_number={OTHER_PHOTO}")), Err(OwnershipError::NotOwned));
    assert_eq!(query(&format!("beneficiary_reference_id={REF}")), ok(1));
    assert_eq!(query(&format!("beneficiary_reference_id={REF13}")), ok(1));
    assert_eq!(query(&format!("beneficiary_reference_id={OTHER_REF}")), Err(OwnershipError::NotOwned));
    assert_eq!(query("beneficiary_reference_id=1234567890124"), Err(OwnershipError::NotOwned));
}

#[test]
fn caller_without_subjects_owns_nothing() {
    let nobody = Subjects::default();
    for q in [format!("mobile={CALLER}"), format!("photo_id_number={PHOTO}"), format!("beneficiary_reference_id={REF}")]
    {
        assert_eq!(check_request(&[], Some(&q), b"", None, &rules(), &nobody), Err(OwnershipError::NotOwned), "{q}");
    }
}

#[test]
fn caller_mobile_in_another_spelling_still_matches() {
    let mut s = subjects();
    s.mobile = format!("+91{CALLER}");
    assert_eq!(check_request(&[], Some(&format!("mobile={CALLER}")), b"", None, &rules(), &s), ok(1));
}

#[test]
fn rule_names_are_normalized_and_invalid_rules_fail_closed() {
    let rule = |param: &str| vec![RequestRule { param: param.into(), kind: SubjectKind::Mobile }];
    let q = format!("mobile={OTHER}");
    assert_eq!(check_request(&[], Some(&q), b"", None, &rule("Mobile"), &subjects()), Err(OwnershipError::NotOwned));
    for bad in ["", "[]", "  ", "m\u{f6}bile"] {
        assert!(is_ambiguous(&check_request(&[], Some(&q), b"", None, &rule(bad), &subjects())), "{bad:?}");
    }
}

#[test]
fn two_rules_on_one_name_check_both_kinds() {
    let rules = vec![
        RequestRule { param: "id".into(), kind: SubjectKind::PhotoId },
        RequestRule { param: "ID".into(), kind: SubjectKind::PhotoId },
    ];
    let checked = check_request(&[], Some(&format!("id={PHOTO}")), b"", None, &rules, &subjects());
    assert_eq!(checked, Ok(Checked { named: 1 }));
    assert_eq!(
        check_request(&[], Some(&format!("id={OTHER_PHOTO}")), b"", None, &rules, &subjects()),
        Err(OwnershipError::NotOwned)
    );
}
