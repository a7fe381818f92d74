//! The response side: whatever the backend answered, only records registered to the caller go out.

use serde_json::Value;

use super::mobile::{canonical_mobile, ct_eq};
use super::strict::parse_strict;
use super::{Filtered, OwnershipError, ResponseRule};

/// Keep only records whose `owner` field is the caller's mobile.
///
/// The body must be a strict JSON object (see [`parse_strict`]) whose `rule.records` key holds an array of
/// objects; otherwise `BadUpstream`. A record is kept only when its `rule.owner` field is a string or a
/// non-negative integer that [`canonical_mobile`] reads as `caller_mobile` (itself canonicalized). Every
/// other record is dropped, failing closed: a missing or null owner, another type, another mobile, and an
/// upstream mask such as `XXXXXX0001` (it might be anyone's). Other keys of the document are kept unchanged
/// (key order may change). When no record is kept the answer is `NothingLeft`; an invalid `caller_mobile`
/// keeps nothing.
pub fn filter_response(body: &[u8], rule: &ResponseRule, caller_mobile: &str) -> Result<Filtered, OwnershipError> {
    let mut doc = parse_strict(body).map_err(|_| OwnershipError::BadUpstream("response is not strict JSON"))?;
    let Value::Object(top) = &mut doc else {
        return Err(OwnershipError::BadUpstream("response is not a JSON object"));
    };
    let Some(Value::Array(records)) = top.get_mut(&rule.records) else {
        return Err(OwnershipError::BadUpstream("response records are missing or not an array"));
    };
    if records.iter().any(|r| !r.is_object()) {
        return Err(OwnershipError::BadUpstream("response record is not an object"));
    }
    let caller = canonical_mobile(caller_mobile);
    let before = records.len();
    records.retain(|record| caller.as_deref().is_some_and(|caller| owned_by(record, &rule.owner, caller)));
    let kept = records.len();
    if kept == 0 {
        return Err(OwnershipError::NothingLeft);
    }
    let body = serde_json::to_vec(&doc).map_err(|_| OwnershipError::BadUpstream("response could not be re-encoded"))?;
    Ok(Filtered { body, kept, dropped: before - kept })
}

/// Whether `record[owner]` is a spelling of `caller` (canonical 10 digits).
fn owned_by(record: &Value, owner: &str, caller: &str) -> bool {
    let owner_mobile = match record.get(owner) {
        Some(Value::String(s)) => canonical_mobile(s),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| canonical_mobile(&n.to_string())),
        _ => None,
    };
    owner_mobile.is_some_and(|m| ct_eq(&m, caller))
}
