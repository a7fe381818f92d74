//! `filter_response`.

use serde_json::{Value, json};

use super::super::{Filtered, OwnershipError, ResponseRule, filter_response};
use super::helpers::{CALLER, OTHER, response_rule};

fn filter(doc: &Value) -> Result<Filtered, OwnershipError> {
    filter_response(&serde_json::to_vec(doc).unwrap(), &response_rule(), CALLER)
}

fn records(f: &Filtered) -> Vec<Value> {
    let doc: Value = serde_json::from_slice(&f.body).unwrap();
    doc["beneficiaries"].as_array().unwrap().clone()
}

#[test]
fn keeps_only_the_callers_records_and_the_rest_of_the_document() {
    let doc = json!({
        "beneficiaries": [
            {"beneficiary_reference_id": "1", "mobile_number": CALLER},
            {"beneficiary_reference_id": "2", "mobile_number": OTHER},
            {"beneficiary_reference_id": "3", "mobile_number": CALLER, "nested": {"mobile_number": OTHER}},
        ],
        "total": 3,
        "meta": {"page": 1},
    });
    let f = filter(&doc).unwrap();
    assert_eq!((f.kept, f.dropped), (2, 1));
    let out: Value = serde_json::from_slice(&f.body).unwrap();
    assert_eq!(out["total"], 3);
    assert_eq!(out["meta"], json!({"page": 1}));
    let ids: Vec<&str> = out["beneficiaries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["beneficiary_reference_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["1", "3"]);
    assert_eq!(out["beneficiaries"][1]["nested"], json!({"mobile_number": OTHER}));
}

#[test]
fn owner_spellings_of_the_caller_are_kept() {
    let doc = json!({"beneficiaries": [
        {"mobile_number": CALLER},
        {"mobile_number": format!("+91{CALLER}")},
        {"mobile_number": format!("91{CALLER}")},
        {"mobile_number": format!("0{CALLER}")},
        {"mobile_number": 9_000_000_001_u64},
        {"mobile_number": 919_000_000_001_u64},
    ]});
    let f = filter(&doc).unwrap();
    assert_eq!((f.kept, f.dropped), (6, 0));
    // The caller's own mobile may be given in another spelling too.
    let f = filter_response(&serde_json::to_vec(&doc).unwrap(), &response_rule(), &format!("+91{CALLER}")).unwrap();
    assert_eq!(f.kept, 6);
}

#[test]
fn unusable_owners_are_dropped() {
    let doc = json!({"beneficiaries": [
        {"mobile_number": CALLER, "id": "keep"},
        {"id": "missing"},
        {"mobile_number": null},
        {"mobile_number": true},
        {"mobile_number": [CALLER]},
        {"mobile_number": {"value": CALLER}},
        {"mobile_number": 9_000_000_001.0_f64},
        {"mobile_number": "XXXXXX0001"},
        {"mobile_number": "90000XXXX1"},
        {"mobile_number": ""},
        {"mobile_number": format!(" {CALLER}")},
        {"mobile_number": format!("{CALLER}0")},
        {"mobile_number": OTHER},
    ]});
    let f = filter(&doc).unwrap();
    assert_eq!((f.kept, f.dropped), (1, 12));
    assert_eq!(records(&f), vec![json!({"mobile_number": CALLER, "id": "keep"})]);
}

#[test]
fn nothing_left_is_not_found() {
    for doc in [
        json!({"beneficiaries": []}),
        json!({"beneficiaries": [{"mobile_number": OTHER}]}),
        json!({"beneficiaries": [{"mobile_number": "XXXXXX0001"}, {}]}),
    ] {
        assert_eq!(filter(&doc), Err(OwnershipError::NothingLeft), "{doc}");
    }
}

#[test]
fn invalid_caller_keeps_nothing() {
    let doc =
        serde_json::to_vec(&json!({"beneficiaries": [{"mobile_number": CALLER}, {"mobile_number": ""}]})).unwrap();
    for caller in ["", "XXXXXX0001", "900000000"] {
        assert_eq!(filter_response(&doc, &response_rule(), caller), Err(OwnershipError::NothingLeft), "{caller:?}");
    }
}

#[test]
fn malformed_upstream_answers_are_bad_upstream() {
    let rule = response_rule();
    let bad = |body: &[u8]| matches!(filter_response(body, &rule, CALLER), Err(OwnershipError::BadUpstream(_)));
    for body in [
        &b""[..],
        b"not json",
        b"%PDF-1.4",
        b"[]",
        b"\"x\"",
        b"{}",
        b"{\"beneficiaries\":null}",
        b"{\"beneficiaries\":{\"0\":{\"mobile_number\":\"9000000001\"}}}",
        b"{\"Beneficiaries\":[{\"mobile_number\":\"9000000001\"}]}",
        b"{\"beneficiaries\":[{\"mobile_number\":\"9000000001\"}, 5]}",
        b"{\"beneficiaries\":[{\"mobile_number\":\"9000000001\"}, null]}",
        b"{\"beneficiaries\":[{\"mobile_number\":\"9000000001\"}, [\"9000000001\"]]}",
        b"{\"beneficiaries\":[{\"mobile_number\":\"9000000001\"}]} trailing",
    ] {
        assert!(bad(body), "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn duplicate_keys_in_the_answer_are_bad_upstream() {
    let rule = response_rule();
    for body in [
        format!(r#"{{"beneficiaries":[{{"mobile_number":"{CALLER}","mobile_number":"{OTHER}"}}]}}"#),
        format!(r#"{{"beneficiaries":[{{"mobile_number":"{OTHER}","mobile_number":"{CALLER}"}}]}}"#),
        format!(r#"{{"beneficiaries":[],"beneficiaries":[{{"mobile_number":"{CALLER}"}}]}}"#),
    ] {
        assert!(
            matches!(filter_response(body.as_bytes(), &rule, CALLER), Err(OwnershipError::BadUpstream(_))),
            "{body}"
        );
    }
}

#[test]
fn other_rule_names_are_honoured() {
    let rule = ResponseRule { records: "centres".into(), owner: "owner".into() };
    let body = format!(
        r#"{{"centres":[{{"owner":"{CALLER}"}},{{"owner":"{OTHER}"}}],"beneficiaries":[{{"mobile_number":"{OTHER}"}}]}}"#
    );
    let f = filter_response(body.as_bytes(), &rule, CALLER).unwrap();
    assert_eq!((f.kept, f.dropped), (1, 1));
    // Only the named array is filtered; the rest of the document is passed through as it was.
    let out: Value = serde_json::from_slice(&f.body).unwrap();
    assert_eq!(out["beneficiaries"][0]["mobile_number"], OTHER);
}

/// Raw bodies (escapes survive only in raw text): the body, and whether the filter must refuse it.
fn spellings() -> Vec<(String, &'static str)> {
    let own = format!(r#"{{"id":"own","mobile_number":"{CALLER}"}}"#);
    let theirs = format!(r#"{{"id":"theirs","mobile_number":"{OTHER}"}}"#);
    vec![
        (format!(r#"{{"beneficiaries":[{own}],"Beneficiaries":[{theirs}]}}"#), "records: other case beside"),
        (format!(r#"{{"Beneficiaries":[{theirs}],"beneficiaries":[{own}]}}"#), "records: other case first"),
        (format!(r#"{{"beneficiaries":[{own}],"BENEFICIARIES":[{theirs}]}}"#), "records: upper case"),
        (format!(r#"{{"beneficiaries":[{own}],"\u0042eneficiaries":[{theirs}]}}"#), "records: escaped other case"),
        (format!(r#"{{"beneficiaries":[{own}],"beneficiar\u0131es":[{theirs}]}}"#), "records: dotless i"),
        (format!(r#"{{"beneficiaries":[{own}],"\u0062eneficiaries":[{theirs}]}}"#), "records: escaped duplicate"),
        (format!(r#"{{"beneficiaries":[{own}],"beneficiaries":[{theirs}]}}"#), "records: duplicate"),
        (format!(r#"{{"Beneficiaries":[{own}]}}"#), "records: only another spelling"),
        (
            format!(r#"{{"beneficiaries":[{{"id":"x","mobile_number":"{CALLER}","MOBILE_NUMBER":"{OTHER}"}}]}}"#),
            "owner: both cases",
        ),
        (
            format!(r#"{{"beneficiaries":[{{"id":"x","MOBILE_NUMBER":"{OTHER}","mobile_number":"{CALLER}"}}]}}"#),
            "owner: both cases, other first",
        ),
        (
            format!(r#"{{"beneficiaries":[{{"id":"x","mobile_number":"{CALLER}","mobile_numbe\u0072":"{OTHER}"}}]}}"#),
            "owner: escaped duplicate",
        ),
        (
            format!(r#"{{"beneficiaries":[{{"id":"x","mobile_number":"{CALLER}","MOBILE_NUMBE\u0052":"{OTHER}"}}]}}"#),
            "owner: escaped other case",
        ),
        (
            format!(r#"{{"beneficiaries":[{own},{{"id":"y","Mobile_Number":"{CALLER}"}}]}}"#),
            "owner: only another spelling",
        ),
        (
            format!(r#"{{"beneficiaries":[{own},{{"id":"y","Mobile_Number":"{OTHER}"}}]}}"#),
            "owner: another's, other spelling",
        ),
    ]
}

#[test]
fn another_spelling_of_the_records_key_or_the_owner_is_bad_upstream() {
    for (body, what) in spellings() {
        let r = filter_response(body.as_bytes(), &response_rule(), CALLER);
        assert!(matches!(r, Err(OwnershipError::BadUpstream(_))), "{what}: {body} gave {r:?}");
    }
}

#[test]
fn an_escaped_spelling_of_the_exact_name_is_the_name_and_is_filtered() {
    let body = format!(
        r#"{{"\u0062eneficiaries":[{{"id":"own","\u006dobile_number":"{CALLER}"}},{{"id":"theirs","mobile_numbe\u0072":"{OTHER}"}}],"ttl":5}}"#
    );
    let f = filter_response(body.as_bytes(), &response_rule(), CALLER).unwrap();
    assert_eq!((f.kept, f.dropped), (1, 1));
    let out: Value = serde_json::from_slice(&f.body).unwrap();
    assert_eq!(out, json!({"beneficiaries": [{"id": "own", "mobile_number": CALLER}], "ttl": 5}));
    assert!(!String::from_utf8_lossy(&f.body).contains('\\'), "re-encoded plainly: {:?}", f.body);
}

#[test]
fn other_names_elsewhere_are_not_spellings() {
    // Keys the filter does not read are passed as they are, whatever their case.
    let body = format!(
        r#"{{"beneficiaries":[{{"id":"own","mobile_number":"{CALLER}","Nested":{{"MOBILE_NUMBER":"{OTHER}"}}}}],"Mobile_Number":"x"}}"#
    );
    let f = filter_response(body.as_bytes(), &response_rule(), CALLER).unwrap();
    assert_eq!((f.kept, f.dropped), (1, 0));
}
