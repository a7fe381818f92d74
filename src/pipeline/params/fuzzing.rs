//! The invariant the fuzz target `params` (`fuzz/fuzz_targets/params.rs`) and the corpus replay
//! test check on one request. Not part of the gateway's API.
//!
//! Input: `query 0xff body 0xff path-value` (missing parts are empty); the path value is the
//! route's `{beneficiary_reference_id}`. The request is read by the ownership check
//! (`ownership::check_request`, rules for `mobile`, `photo_id_number` and the path's
//! `beneficiary_reference_id`) and by [`named_values_in`] (what limits, quotas and the audit read).
//!
//! Invariants: neither panics; when the ownership check accepts, `named_values_in` accepts too and
//! every value it reads is the caller's (the limits and the audit count exactly what ownership
//! let through, never a stranger); and its values round-trip: written again as a query, they read
//! back the same.

use std::collections::HashSet;

use super::named_values_in;
use crate::ownership::{RequestRule, SubjectKind, Subjects, canonical_mobile, check_request};

const MOBILE: &str = "9000000001";
const REFS: [&str; 2] = ["10000000000001", "10000000000002"];
const PHOTO: &str = "234512341234";
const APPOINTMENT: &str = "6f1c2a4e-0b7d-4c1e-9a3f-2d5e8b7c9a01";

fn rule(param: &str, kind: SubjectKind) -> RequestRule {
    RequestRule { param: param.to_string(), kind }
}

fn subjects() -> Subjects {
    Subjects {
        mobile: MOBILE.to_string(),
        beneficiary_refs: REFS.iter().map(|r| r.to_string()).collect::<HashSet<_>>(),
        photo_ids: [PHOTO.to_string()].into_iter().collect(),
        appointment_ids: [APPOINTMENT.to_string()].into_iter().collect(),
    }
}

/// Percent-encode everything but unreserved characters.
fn encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Check the invariant on one input; `Err` describes the violation.
pub fn check(data: &[u8]) -> Result<(), String> {
    let mut parts = data.splitn(3, |&b| b == 0xff);
    let query = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = parts.next().unwrap_or_default();
    let path_value = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let path =
        if path_value.is_empty() { Vec::new() } else { vec![("beneficiary_reference_id".to_string(), path_value)] };
    let query = (!query.is_empty()).then_some(query.as_str());
    let rules = [
        rule("mobile", SubjectKind::Mobile),
        rule("photo_id_number", SubjectKind::PhotoId),
        rule("{beneficiary_reference_id}", SubjectKind::Beneficiary),
        rule("appointment_id", SubjectKind::Appointment),
    ];
    let names: Vec<String> = rules.iter().map(|r| r.name().to_string()).collect();
    let subjects = subjects();
    let owned = check_request(&path, query, body, Some("application/json"), &rules, &subjects);
    let named = named_values_in(&names, &path, query, body);
    let Ok(values) = named else {
        if owned.is_ok() {
            return Err(format!("ownership accepted what the limits refuse: {named:?}"));
        }
        return Ok(());
    };
    if let Ok(checked) = owned {
        if checked.named != values.len() {
            return Err(format!("ownership checked {} values, the limits read {}", checked.named, values.len()));
        }
        let own =
            |v: &String| v == MOBILE || REFS.contains(&v.as_str()) || v == PHOTO || v.eq_ignore_ascii_case(APPOINTMENT);
        if let Some(stranger) = values.iter().find(|v| !own(v)) {
            return Err(format!("ownership accepted, the limits read a stranger's {stranger:?}"));
        }
    }
    // Round trip: the values, written again as one JSON body, read back the same; so does each
    // value as a query (but for the delimiters and `%`, which the query reader refuses decoded).
    let want: Vec<String> = values.iter().map(|v| canonical_mobile(v).unwrap_or_else(|| v.clone())).collect();
    let body = serde_json::to_vec(&serde_json::json!({ "mobile": values })).map_err(|e| e.to_string())?;
    let again = named_values_in(&names, &[], None, &body).map_err(|e| format!("{values:?} as a body: {e:?}"))?;
    if again != want {
        return Err(format!("{values:?} written again as a body reads {again:?}"));
    }
    for (value, want) in values.iter().zip(&want) {
        if value.contains(['%', '&', '=', ';']) {
            continue;
        }
        let again = named_values_in(&names, &[], Some(&format!("mobile={}", encode(value))), b"")
            .map_err(|e| format!("{value:?} written again is refused: {e:?}"))?;
        if again != [want.clone()] {
            return Err(format!("{value:?} written again reads {again:?}"));
        }
    }
    Ok(())
}
