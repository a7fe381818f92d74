//! Request parameters that name people: read from the route's path parameters, the query string
//! and the top-level keys of a JSON body, for quotas, rate-limit keys and the audit record. Names
//! and values are read exactly as the ownership check reads them (`ownership::query`), so a
//! spelling the ownership check sees (`{beneficiary_reference_id}` in the path,
//! `beneficiary.reference-id`, `beneficiaries[0]`, `;` separators) is counted too.

use crate::error::GatewayError;
use crate::ownership::query::{normalize_name, pairs};

#[doc(hidden)]
pub mod fuzzing;

const AMBIGUOUS: GatewayError = GatewayError::AmbiguousSubject("the request's parameters are ambiguous");

/// The values of `names` in the query string and the top-level keys of a JSON body (a route
/// without path parameters; see [`named_values_in`]).
pub fn named_values(names: &[String], query: Option<&str>, body: &[u8]) -> Result<Vec<String>, GatewayError> {
    named_values_in(names, &[], query, body)
}

/// The values of `names` in the route's path parameters (`(name, value)`, as
/// `pipeline::context::route` found them), the query string and the top-level keys of a JSON
/// body. Names are bare (`beneficiary_reference_id`, not the path form of an ownership rule).
pub fn named_values_in(
    names: &[String],
    path: &[(String, String)],
    query: Option<&str>,
    body: &[u8],
) -> Result<Vec<String>, GatewayError> {
    let wanted: Vec<String> = names.iter().filter_map(|n| normalize_name(n.as_bytes()).ok()).collect();
    let wanted = |n: &str| wanted.iter().any(|w| w == n);
    let mut out = Vec::new();
    for (name, value) in path {
        if wanted(&normalize_name(name.as_bytes()).map_err(|_| AMBIGUOUS)?) {
            out.push(value.clone());
        }
    }
    for pair in pairs(query.unwrap_or("")) {
        let pair = pair.map_err(|_| AMBIGUOUS)?;
        if wanted(&pair.name) {
            out.push(String::from_utf8(pair.value).map_err(|_| AMBIGUOUS)?);
        }
    }
    if !body.is_empty() {
        let doc = crate::ownership::parse_strict(body)
            .map_err(|_| GatewayError::AmbiguousSubject("the body must be one JSON object"))?;
        let obj = doc.as_object().ok_or(GatewayError::AmbiguousSubject("the body must be one JSON object"))?;
        for (k, v) in obj {
            if !wanted(&normalize_name(k.as_bytes()).map_err(|_| AMBIGUOUS)?) {
                continue;
            }
            match v {
                serde_json::Value::String(s) => out.push(s.clone()),
                serde_json::Value::Number(n) => out.push(n.to_string()),
                serde_json::Value::Array(items) => {
                    for item in items {
                        match item {
                            serde_json::Value::String(s) => out.push(s.clone()),
                            serde_json::Value::Number(n) => out.push(n.to_string()),
                            _ => return Err(GatewayError::AmbiguousSubject("subjects are strings or numbers")),
                        }
                    }
                }
                _ => return Err(GatewayError::AmbiguousSubject("subjects are strings or numbers")),
            }
        }
    }
    // A mobile and the same mobile with +91 are one person.
    Ok(out.into_iter().map(|v| crate::ownership::canonical_mobile(&v).unwrap_or(v)).collect())
}

#[cfg(test)]
mod tests;
