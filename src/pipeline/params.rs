//! Request parameters that name people: read from the query string and from the top-level keys
//! of a JSON body, for quotas and rate-limit keys.

use crate::error::GatewayError;

/// The values of `names` in the query string and the top-level keys of a JSON body.
pub fn named_values(names: &[String], query: Option<&str>, body: &[u8]) -> Result<Vec<String>, GatewayError> {
    let mut out = Vec::new();
    let wanted = |n: &str| names.iter().any(|w| w.eq_ignore_ascii_case(n));
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_encoding::percent_decode_str(k).decode_utf8_lossy();
        if wanted(k.trim_end_matches("[]")) {
            out.push(percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned());
        }
    }
    if !body.is_empty() {
        let doc = crate::ownership::parse_strict(body)
            .map_err(|_| GatewayError::AmbiguousSubject("the body must be one JSON object"))?;
        let obj = doc.as_object().ok_or(GatewayError::AmbiguousSubject("the body must be one JSON object"))?;
        for (k, v) in obj {
            if !wanted(k) {
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
}
