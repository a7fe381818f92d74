//! Shared fixtures: one caller, the CoWIN search rules and the beneficiaries response rule.

use std::collections::HashSet;

use super::super::{Checked, OwnershipError, RequestRule, ResponseRule, SubjectKind, Subjects, check_request};

pub const CALLER: &str = "9000000001";
pub const OTHER: &str = "9000000002";
pub const PHOTO: &str = "123456789012";
pub const OTHER_PHOTO: &str = "999999999999";
pub const REF: &str = "12345678901234";
pub const REF13: &str = "1234567890123";
pub const OTHER_REF: &str = "99999999999999";
pub const APPOINTMENT: &str = "0f3c9a2e-7d41-4b8e-9a65-2c7e1d9b4f10";
pub const OTHER_APPOINTMENT: &str = "6a1d2e3f-4b5c-4d6e-8f70-8192a3b4c5d6";

pub fn subjects() -> Subjects {
    Subjects {
        mobile: CALLER.to_owned(),
        beneficiary_refs: HashSet::from([REF.to_owned(), REF13.to_owned()]),
        photo_ids: HashSet::from([PHOTO.to_owned()]),
        appointment_ids: HashSet::from([APPOINTMENT.to_owned()]),
    }
}

pub fn rules() -> Vec<RequestRule> {
    vec![
        RequestRule { param: "mobile".into(), kind: SubjectKind::Mobile },
        RequestRule { param: "photo_id_number".into(), kind: SubjectKind::PhotoId },
        RequestRule { param: "beneficiary_reference_id".into(), kind: SubjectKind::Beneficiary },
    ]
}

pub fn response_rule() -> ResponseRule {
    ResponseRule { records: "beneficiaries".into(), owner: "mobile_number".into() }
}

/// `check_request` on a query only.
pub fn query(q: &str) -> Result<Checked, OwnershipError> {
    check_request(&[], Some(q), b"", None, &rules(), &subjects())
}

/// `check_request` on a JSON body only.
pub fn json(body: &str) -> Result<Checked, OwnershipError> {
    check_request(&[], None, body.as_bytes(), Some("application/json"), &rules(), &subjects())
}

pub fn ok(named: usize) -> Result<Checked, OwnershipError> {
    Ok(Checked { named })
}

pub fn is_ambiguous<T>(r: &Result<T, OwnershipError>) -> bool {
    matches!(r, Err(OwnershipError::Ambiguous(_)))
}
