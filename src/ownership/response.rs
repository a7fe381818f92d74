//! The response side: whatever the backend answered, only records registered to the caller go out.

use serde_json::Value;

use super::keys::unique_member;
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
///
/// The redaction that follows reads keys case-insensitively, so the keys this filter reads must mean one
/// thing to both: a top-level key that is another spelling of `rule.records` (`Beneficiaries`, a Kelvin
/// sign for a `k`, … see [`super::same_key`]), or a key in any record that is another spelling of
/// `rule.owner` (`MOBILE_NUMBER`), is `BadUpstream`, whether or not the exact spelling is there too.
/// Escaped keys are read decoded (`"\u0062eneficiaries"` is `beneficiaries`, and is filtered as it);
/// two keys that decode alike are a duplicate, refused by [`parse_strict`].
pub fn filter_response(body: &[u8], rule: &ResponseRule, caller_mobile: &str) -> Result<Filtered, OwnershipError> {
    let mut doc = parse_strict(body).map_err(|_| OwnershipError::BadUpstream("response is not strict JSON"))?;
    let Value::Object(top) = &mut doc else {
        return Err(OwnershipError::BadUpstream("response is not a JSON object"));
    };
    if unique_member(top, &rule.records).is_err() {
        return Err(OwnershipError::BadUpstream("response spells the records key more than one way"));
    }
    let Some(Value::Array(records)) = top.get_mut(&rule.records) else {
        return Err(OwnershipError::BadUpstream("response records are missing or not an array"));
    };
    let mut owners = Vec::with_capacity(records.len());
    for record in records.iter() {
        let Value::Object(fields) = record else {
            return Err(OwnershipError::BadUpstream("response record is not an object"));
        };
        let owner = unique_member(fields, &rule.owner)
            .map_err(|_| OwnershipError::BadUpstream("a record spells the owner field more than one way"))?;
        owners.push(owner_mobile(owner));
    }
    let caller = canonical_mobile(caller_mobile);
    let before = records.len();
    let mut owners = owners.into_iter();
    records.retain(|_| {
        let owner = owners.next().flatten();
        caller.as_deref().is_some_and(|caller| owner.is_some_and(|owner| ct_eq(&owner, caller)))
    });
    let kept = records.len();
    if kept == 0 {
        return Err(OwnershipError::NothingLeft);
    }
    let body = serde_json::to_vec(&doc).map_err(|_| OwnershipError::BadUpstream("response could not be re-encoded"))?;
    Ok(Filtered { body, doc, kept, dropped: before - kept })
}

/// The canonical mobile an owner field holds: a string or a non-negative integer [`canonical_mobile`] reads.
fn owner_mobile(owner: Option<&Value>) -> Option<String> {
    match owner {
        Some(Value::String(s)) => canonical_mobile(s),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| canonical_mobile(&n.to_string())),
        _ => None,
    }
}
