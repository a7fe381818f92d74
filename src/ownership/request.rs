//! The request side: every subject a request names, in its query or its JSON body, must be the caller's.

use serde_json::Value;

use super::mobile::{canonical_mobile, ct_contains, ct_eq};
use super::query::{normalize_name, pairs};
use super::strict::parse_strict;
use super::{Checked, OwnershipError, RequestRule, SubjectKind, Subjects};

/// Does the request name only the caller's subjects?
///
/// With no `rules` there is nothing to check (`named: 0`). Otherwise a rule's parameter is looked for
/// everywhere a request can carry it, and a value found in any of these places is checked:
///
/// - Path: `path` holds the route template's parameters, `(name, value)` with the value as the router
///   matched it (one segment, percent-decoded once after `pipeline::normalize` refused every ambiguous
///   encoding). A rule names a path parameter by its name, bare (`beneficiary_reference_id`) or in the
///   path form (`{beneficiary_reference_id}`).
/// - Query (`query` as received, without `?`): names are compared after percent-decoding (`+` is a space),
///   ASCII-lowercasing, cutting at the first `[`, trimming, and reading `.`, space, `+` and `-` as `_`;
///   values are decoded once. A subject parameter that appears twice under any spelling, in the path, the
///   query, the body or any two of them, is `Ambiguous`, even when both values are the caller's. So are
///   invalid or double percent-encoding, encoded delimiters and non-ASCII names anywhere in the query.
/// - Body: empty means nothing to check. Otherwise the content type must be `application/json` (parameters
///   allowed) and the body a strict JSON object (see [`parse_strict`]); subject parameters are its
///   top-level keys, compared like query names. A value may be a string, a non-negative integer, or an
///   array of those (each element checked; `[]` names nothing). Anything else is `Ambiguous`. A body is
///   read on every method, since a backend may read one on any.
/// - Values: empty, non-digit or wrong-length values are `Ambiguous`. A mobile must be exactly 10 digits
///   (first 6–9; prefixed spellings such as `91…` are refused, since backends may read them differently)
///   and equal the caller's; a photo id is 12 digits and in `photo_ids`; a beneficiary reference is 13–14
///   digits and in `beneficiary_refs`; an appointment id is a UUID (`8-4-4-4-12` hex digits, either case,
///   nothing around it) and, lowercased, in `appointment_ids`; otherwise `NotOwned`. Comparisons are
///   constant-time.
///
/// Every `Ambiguous` cause is looked for before any ownership, so the error does not depend on the order of
/// parameters: a request that is both ambiguous and not owned is `Ambiguous`.
pub fn check_request(
    path: &[(String, String)],
    query: Option<&str>,
    body: &[u8],
    content_type: Option<&str>,
    rules: &[RequestRule],
    subjects: &Subjects,
) -> Result<Checked, OwnershipError> {
    if rules.is_empty() {
        return Ok(Checked { named: 0 });
    }
    let mut check = Check::new(rules)?;
    for (name, value) in path {
        if let Some(param) = check.param(&normalize_name(name.as_bytes())?)? {
            check.values.push((param, value.as_bytes().to_vec()));
        }
    }
    for pair in pairs(query.unwrap_or("")) {
        let pair = pair?;
        if let Some(param) = check.param(&pair.name)? {
            check.values.push((param, pair.value));
        }
    }
    if !body.is_empty() {
        check.body(body, content_type)?;
    }
    // Every value's shape is checked before any ownership, so an ambiguous request is always a 400.
    let kinds = |param: usize| check.params[param].kinds.iter().copied();
    for (param, value) in &check.values {
        for kind in kinds(*param) {
            well_formed(kind, value)?;
        }
    }
    let caller_mobile = canonical_mobile(&subjects.mobile);
    for (param, value) in &check.values {
        for kind in kinds(*param) {
            if !owned(kind, value, caller_mobile.as_deref(), subjects) {
                return Err(OwnershipError::NotOwned);
            }
        }
    }
    Ok(Checked { named: check.values.len() })
}

/// One subject parameter: its normalized name, the kinds of the rules that name it, whether it was seen.
struct Param {
    name: String,
    kinds: Vec<SubjectKind>,
    seen: bool,
}

/// The subject parameters of the rules, and the values the request gives them (parameter index, value).
struct Check {
    params: Vec<Param>,
    values: Vec<(usize, Vec<u8>)>,
}

impl Check {
    fn new(rules: &[RequestRule]) -> Result<Self, OwnershipError> {
        let mut params: Vec<Param> = Vec::with_capacity(rules.len());
        for rule in rules {
            let name = normalize_name(rule.name().as_bytes())
                .ok()
                .filter(|n| !n.is_empty())
                .ok_or(OwnershipError::Ambiguous("invalid ownership rule"))?;
            match params.iter_mut().find(|p| p.name == name) {
                Some(p) => p.kinds.push(rule.kind),
                None => params.push(Param { name, kinds: vec![rule.kind], seen: false }),
            }
        }
        Ok(Check { params, values: Vec::new() })
    }

    /// The subject parameter `name` (normalized) refers to, if any; a second sighting is `Ambiguous`.
    fn param(&mut self, name: &str) -> Result<Option<usize>, OwnershipError> {
        let Some(index) = self.params.iter().position(|p| p.name == name) else {
            return Ok(None);
        };
        if std::mem::replace(&mut self.params[index].seen, true) {
            return Err(OwnershipError::Ambiguous("subject parameter given more than once"));
        }
        Ok(Some(index))
    }

    fn body(&mut self, body: &[u8], content_type: Option<&str>) -> Result<(), OwnershipError> {
        if !is_json(content_type) {
            return Err(OwnershipError::Ambiguous("body must be JSON"));
        }
        let Value::Object(object) = parse_strict(body)? else {
            return Err(OwnershipError::Ambiguous("JSON body must be an object"));
        };
        for (key, value) in &object {
            let Some(index) = self.param(&normalize_name(key.as_bytes())?)? else {
                continue;
            };
            match value {
                Value::Array(items) => {
                    for item in items {
                        self.json_scalar(index, item)?;
                    }
                }
                scalar => self.json_scalar(index, scalar)?,
            }
        }
        Ok(())
    }

    fn json_scalar(&mut self, index: usize, value: &Value) -> Result<(), OwnershipError> {
        match value {
            Value::String(s) => self.values.push((index, s.as_bytes().to_vec())),
            Value::Number(n) => match n.as_u64() {
                Some(n) => self.values.push((index, n.to_string().into_bytes())),
                None => return Err(OwnershipError::Ambiguous("subject value is not a whole number")),
            },
            _ => return Err(OwnershipError::Ambiguous("subject value has an unsupported JSON type")),
        }
        Ok(())
    }
}

/// `application/json`, with any parameters, case-insensitive.
fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .map(|ct| ct.split(';').next().unwrap_or("").trim())
        .is_some_and(|essence| essence.eq_ignore_ascii_case("application/json"))
}

/// Is `value` a well-formed subject of `kind`? Anything else is `Ambiguous`.
fn well_formed(kind: SubjectKind, value: &[u8]) -> Result<(), OwnershipError> {
    if value.is_empty() {
        return Err(OwnershipError::Ambiguous("empty subject value"));
    }
    if value.contains(&b'%') {
        return Err(OwnershipError::Ambiguous("double percent-encoding"));
    }
    if kind == SubjectKind::Appointment {
        return if is_uuid(value) { Ok(()) } else { Err(OwnershipError::Ambiguous("appointment id is not a UUID")) };
    }
    if !value.iter().all(u8::is_ascii_digit) {
        return Err(OwnershipError::Ambiguous("subject value is not digits"));
    }
    match kind {
        // 10 digits, first 6-9: the canonical spelling itself, nothing a backend could read otherwise.
        SubjectKind::Mobile if value.len() != 10 || !matches!(value[0], b'6'..=b'9') => {
            Err(OwnershipError::Ambiguous("mobile is not a 10-digit Indian mobile"))
        }
        SubjectKind::PhotoId if value.len() != 12 => Err(OwnershipError::Ambiguous("photo id is not 12 digits")),
        SubjectKind::Beneficiary if !(13..=14).contains(&value.len()) => {
            Err(OwnershipError::Ambiguous("beneficiary reference is not 13-14 digits"))
        }
        _ => Ok(()),
    }
}

/// Does the caller own the well-formed subject `value` of `kind`? Constant-time comparisons.
fn owned(kind: SubjectKind, value: &[u8], caller_mobile: Option<&str>, subjects: &Subjects) -> bool {
    // Well-formed values are ASCII digits, so this never fails; a failure owns nothing.
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    match kind {
        SubjectKind::Mobile => caller_mobile.is_some_and(|caller| ct_eq(caller, value)),
        SubjectKind::PhotoId => ct_contains(&subjects.photo_ids, value),
        SubjectKind::Beneficiary => ct_contains(&subjects.beneficiary_refs, value),
        SubjectKind::Appointment => ct_contains(&subjects.appointment_ids, &value.to_ascii_lowercase()),
    }
}

/// `8-4-4-4-12` ASCII hex digits, hyphens exactly there: the one spelling of an appointment id.
pub(crate) fn is_uuid(value: &[u8]) -> bool {
    value.len() == 36
        && value.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}
