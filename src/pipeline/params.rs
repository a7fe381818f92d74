//! Request parameters that name people: read from the query string and from the top-level keys
//! of a JSON body, for quotas, rate-limit keys and the audit record. Names and values are read
//! exactly as the ownership check reads them (`ownership::query`), so a spelling the ownership
//! check sees (`beneficiary.reference-id`, `beneficiaries[0]`, `;` separators) is counted too.

use crate::error::GatewayError;
use crate::ownership::query::{normalize_name, pairs};

const AMBIGUOUS: GatewayError = GatewayError::AmbiguousSubject("the request's parameters are ambiguous");

/// The values of `names` in the query string and the top-level keys of a JSON body.
pub fn named_values(names: &[String], query: Option<&str>, body: &[u8]) -> Result<Vec<String>, GatewayError> {
    let wanted: Vec<String> = names.iter().filter_map(|n| normalize_name(n.as_bytes()).ok()).collect();
    let wanted = |n: &str| wanted.iter().any(|w| w == n);
    let mut out = Vec::new();
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
mod tests {
    use super::*;

    #[test]
    fn subjects_come_from_query_and_json_and_are_canonical() {
        let names = vec!["mobile".to_string(), "photo_id_number".to_string()];
        let v =
            named_values(&names, Some("mobile=%2B919000000001&x=1"), br#"{"photo_id_number":"234512341234"}"#).unwrap();
        assert_eq!(v, ["9000000001", "234512341234"]);
        let v = named_values(&names, None, br#"{"MOBILE":[9000000002, "9000000003"]}"#).unwrap();
        assert_eq!(v, ["9000000002", "9000000003"]);
        assert!(named_values(&names, None, br#"{"mobile":"1","mobile":"2"}"#).is_err(), "duplicate keys");
        assert!(named_values(&names, None, b"mobile=9000000001").is_err(), "not JSON");
        assert!(named_values(&names, None, br#"{"mobile":{"$ne":1}}"#).is_err());
    }

    #[test]
    fn every_spelling_the_ownership_check_reads_is_counted() {
        let names = vec!["beneficiary_reference_id".to_string()];
        for query in [
            "beneficiary.reference.id=10000000000001",
            "beneficiary-reference-id=10000000000001",
            "beneficiary_reference_id[0]=10000000000001",
            "x=1;beneficiary_reference_id=10000000000001",
            "BENEFICIARY_REFERENCE_ID=10000000000001",
        ] {
            assert_eq!(named_values(&names, Some(query), b"").unwrap(), ["10000000000001"], "{query}");
        }
        let v = named_values(&names, None, br#"{"Beneficiary-Reference-Id":"10000000000001"}"#).unwrap();
        assert_eq!(v, ["10000000000001"]);
        assert!(named_values(&names, Some("beneficiary_reference_id=%zz"), b"").is_err(), "bad encoding");
    }
}
