//! `check_request` on appointment ids: the caller's own, in any case; anything else refused.

use super::super::{Checked, OwnershipError, RequestRule, SubjectKind, check_request};
use super::helpers::{APPOINTMENT, OTHER_APPOINTMENT, OTHER_REF, REF, is_ambiguous, ok, subjects};

/// The rules of CoWIN's cancel route: an appointment and the beneficiaries to cancel.
fn cancel_rules() -> Vec<RequestRule> {
    vec![
        RequestRule { param: "appointment_id".into(), kind: SubjectKind::Appointment },
        RequestRule { param: "beneficiariesToCancel".into(), kind: SubjectKind::Beneficiary },
    ]
}

fn body(b: &str) -> Result<Checked, OwnershipError> {
    check_request(&[], None, b.as_bytes(), Some("application/json"), &cancel_rules(), &subjects())
}

fn query(q: &str) -> Result<Checked, OwnershipError> {
    check_request(&[], Some(q), b"", None, &cancel_rules(), &subjects())
}

#[test]
fn the_callers_own_appointment_passes_in_either_case() {
    assert_eq!(query(&format!("appointment_id={APPOINTMENT}")), ok(1));
    assert_eq!(query(&format!("appointment_id={}", APPOINTMENT.to_ascii_uppercase())), ok(1));
    assert_eq!(body(&format!(r#"{{"appointment_id":"{APPOINTMENT}","beneficiariesToCancel":["{REF}"]}}"#)), ok(2));
}

#[test]
fn someone_elses_appointment_or_beneficiary_is_not_owned() {
    assert_eq!(query(&format!("appointment_id={OTHER_APPOINTMENT}")), Err(OwnershipError::NotOwned));
    let theirs = format!(r#"{{"appointment_id":"{OTHER_APPOINTMENT}","beneficiariesToCancel":["{REF}"]}}"#);
    assert_eq!(body(&theirs), Err(OwnershipError::NotOwned));
    let mixed = format!(r#"{{"appointment_id":"{APPOINTMENT}","beneficiariesToCancel":["{REF}","{OTHER_REF}"]}}"#);
    assert_eq!(body(&mixed), Err(OwnershipError::NotOwned));
}

#[test]
fn anything_but_one_uuid_spelling_is_ambiguous() {
    let braces = format!("{{{APPOINTMENT}}}");
    let no_hyphens = APPOINTMENT.replace('-', "");
    let padded = format!(" {APPOINTMENT}");
    let moved = format!("{}-{}", &APPOINTMENT[..7], &APPOINTMENT[8..]);
    let non_hex = APPOINTMENT.replacen('0', "g", 1);
    for bad in [braces.as_str(), &no_hyphens, &padded, &moved, &non_hex, "", "1234"] {
        let r = body(&serde_json::json!({ "appointment_id": bad }).to_string());
        assert!(is_ambiguous(&r), "{bad:?}: {r:?}");
    }
    // Twice, even both the caller's, in the query and the body.
    let twice = check_request(
        &[],
        Some(&format!("appointment_id={APPOINTMENT}")),
        format!(r#"{{"appointment_id":"{APPOINTMENT}"}}"#).as_bytes(),
        Some("application/json"),
        &cancel_rules(),
        &subjects(),
    );
    assert!(is_ambiguous(&twice));
    assert!(is_ambiguous(&query(&format!("appointment_id={APPOINTMENT}&Appointment.Id={APPOINTMENT}"))));
}
