//! Property tests: no spelling or encoding of `mobile` gets another number past the request check, no
//! foreign record survives the response filter, and strict parsing agrees with serde_json.

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::super::{OwnershipError, canonical_mobile, check_request, filter_response, parse_strict};
use super::helpers::{CALLER, OTHER, query, response_rule, rules, subjects};

/// Percent-encode each byte of `s` with probability given by `mask` bits (hex case from the next bit).
fn encode(s: &str, mask: u64) -> String {
    s.bytes()
        .enumerate()
        .map(|(i, b)| match (mask >> (i % 32 * 2)) & 3 {
            1 => format!("%{b:02x}"),
            2 => format!("%{b:02X}"),
            _ => char::from(b).to_string(),
        })
        .collect()
}

/// A spelling of the name `mobile`, as sent on the wire.
fn mobile_name() -> impl Strategy<Value = String> {
    (
        any::<u8>(),
        any::<u64>(),
        prop::sample::select(vec!["", "[]", "[0]", "%5B%5D", "[a][b]", "[", "%5b1%5d"]),
        prop::sample::select(vec!["", "+", "%20"]),
        prop::sample::select(vec!["", "+", "%20"]),
    )
        .prop_map(|(case, enc, suffix, lead, trail)| {
            let cased: String = "mobile"
                .chars()
                .enumerate()
                .map(|(i, c)| if case >> i & 1 == 1 { c.to_ascii_uppercase() } else { c })
                .collect();
            format!("{lead}{}{trail}{suffix}", encode(&cased, enc))
        })
}

/// A value for `mobile` once decoded (what a backend reads), and how it is sent on the wire.
fn mobile_value() -> impl Strategy<Value = (String, String)> {
    let decoded = prop_oneof![
        4 => Just(CALLER.to_owned()),
        2 => Just(OTHER.to_owned()),
        2 => "[6-9][0-9]{9}",
        1 => "[0-9]{0,14}",
        1 => prop::sample::select(vec!["919000000001", "09000000001", "+919000000001", " 9000000001", "9000000001 ", "90000000012"]).prop_map(str::to_owned),
        1 => (0usize..10, 0u8..10).prop_map(|(i, d)| { let mut v = CALLER.as_bytes().to_vec(); v[i] = b'0' + d; String::from_utf8_lossy(&v).into_owned() }),
    ];
    (decoded, any::<u64>(), any::<bool>()).prop_map(|(decoded, enc, double)| {
        // `+` and space must be encoded to survive one decode unchanged.
        let once: String = encode(&decoded, enc).replace('+', "%2B").replace(' ', "%20");
        if double {
            // Encoding the '%' of an already-encoded value: one decode yields `once`, not `decoded`.
            (once.clone(), once.replace('%', "%25"))
        } else {
            (decoded, once)
        }
    })
}

#[derive(Clone, Debug)]
enum Pair {
    /// A spelling of `mobile` with (value after one decode, value on the wire).
    Mobile(String, String, String),
    /// A parameter that is not a subject.
    Decoy(String, String),
}

fn pair() -> impl Strategy<Value = Pair> {
    prop_oneof![
        (mobile_name(), mobile_value()).prop_map(|(n, (d, w))| Pair::Mobile(n, d, w)),
        (
            prop::sample::select(vec!["x", "page", "mobil", "mobiles", "m0bile", "amobile", "mobile_no", "m%6fbil"]),
            "[a-z0-9]{0,6}"
        )
            .prop_map(|(n, v)| Pair::Decoy(n.to_owned(), v)),
    ]
}

/// How a backend might read `query`: the values it would take for `mobile`.
fn backend_reads(query: &str) -> Vec<String> {
    let dec = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    let name_of = |n: &str| {
        let n = n.to_lowercase();
        n.split('[').next().unwrap_or("").trim().to_owned()
    };
    let mut found = Vec::new();
    let decoded_whole = dec(query);
    let splits: [(&str, &[char], bool, bool); 4] = [
        (query, &['&'], false, false),
        (query, &['&', ';'], false, false),
        (query, &['&'], true, true),
        (&decoded_whole, &['&'], false, false),
    ];
    for (q, seps, twice, last_eq) in splits {
        for raw in q.split(seps) {
            let split = if last_eq { raw.rsplit_once('=') } else { raw.split_once('=') };
            let (n, v) = split.unwrap_or((raw, ""));
            let (mut n, mut v) = (dec(n), dec(v));
            if twice {
                (n, v) = (dec(&n), dec(&v));
            }
            if name_of(&n) == "mobile" {
                found.push(v);
            }
        }
    }
    found
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn structured_queries_never_pass_another_mobile(pairs in prop::collection::vec(pair(), 0..5), semi in any::<u8>()) {
        let q: Vec<String> = pairs.iter().map(|p| match p {
            Pair::Mobile(n, _, w) => format!("{n}={w}"),
            Pair::Decoy(n, v) => format!("{n}={v}"),
        }).collect();
        let sep = if semi % 4 == 0 { ";" } else { "&" };
        let q = q.join(sep);
        let mobiles: Vec<&String> = pairs.iter().filter_map(|p| match p { Pair::Mobile(_, d, _) => Some(d), Pair::Decoy(..) => None }).collect();
        let result = query(&q);
        if mobiles.iter().any(|d| d.as_str() != CALLER) || mobiles.len() > 1 {
            prop_assert!(result.is_err(), "{q} -> {result:?}");
        } else {
            // At most one mobile, and it is the caller's: the request must pass.
            prop_assert_eq!(&result, &Ok(super::super::Checked { named: mobiles.len() }), "{}", q);
        }
        if mobiles.len() > 1 {
            prop_assert!(matches!(result, Err(OwnershipError::Ambiguous(_))));
        }
    }

    #[test]
    fn random_queries_never_pass_a_mobile_any_backend_reads_differently(
        tokens in prop::collection::vec(prop::sample::select(vec![
            "mobile", "MOBILE", "mob", "ile", "%6d", "%69", "%4D", "m", "=", "&", ";", "[", "]", "[]", "+", "%20", "%25",
            "%26", "%3D", "%3B", "%39", "%", "9000000001", "9000000002", "0", "1", "9", "%2B", "91", "x", "%00", "%5B",
        ]), 1..14)
    ) {
        let q = tokens.concat();
        if query(&q).is_ok() {
            for v in backend_reads(&q) {
                prop_assert_eq!(v.as_str(), CALLER, "{}", q);
            }
        }
    }

    #[test]
    fn body_arrays_pass_only_the_callers_numbers(values in prop::collection::vec(prop_oneof![Just(CALLER.to_owned()), "[6-9][0-9]{9}"], 0..4), numeric in any::<bool>()) {
        let items: Vec<Value> = values.iter().map(|v| if numeric { json!(v.parse::<u64>().unwrap()) } else { json!(v) }).collect();
        let body = serde_json::to_vec(&json!({"mobile": items})).unwrap();
        let result = check_request(&[], None, &body, Some("application/json"), &rules(), &subjects());
        if values.iter().all(|v| v == CALLER) {
            prop_assert_eq!(result, Ok(super::super::Checked { named: values.len() }));
        } else {
            prop_assert_eq!(result, Err(OwnershipError::NotOwned));
        }
    }

    #[test]
    fn filtered_responses_hold_only_the_callers_records(
        owners in prop::collection::vec(prop_oneof![
            Just(json!(CALLER)), Just(json!(format!("+91{CALLER}"))), Just(json!(format!("91{CALLER}"))),
            Just(json!(format!("0{CALLER}"))), Just(json!(9_000_000_001_u64)), Just(json!(OTHER)),
            Just(json!("XXXXXX0001")), Just(Value::Null), Just(json!(9_000_000_001.5_f64)), Just(json!(true)),
            Just(json!([CALLER])), Just(json!({"m": CALLER})), Just(json!(format!("{CALLER} "))), Just(json!("")),
            "[6-9][0-9]{9}".prop_map(Value::String), any::<u64>().prop_map(|n| json!(n)), Just(json!("missing")),
        ], 0..10),
        extra in prop::collection::btree_map("[a-z]{1,6}", any::<u32>(), 0..4),
    ) {
        let mut expected = BTreeSet::new();
        let records: Vec<Value> = owners.iter().enumerate().map(|(id, owner)| {
            if canonical_owner(owner) {
                expected.insert(id);
            }
            if owner == "missing" { json!({"id": id}) } else { json!({"id": id, "mobile_number": owner}) }
        }).collect();
        let mut doc = json!({"beneficiaries": records});
        for (k, v) in &extra {
            if k != "beneficiaries" {
                doc[k] = json!(v);
            }
        }
        let result = filter_response(&serde_json::to_vec(&doc).unwrap(), &response_rule(), CALLER);
        match result {
            Ok(f) => {
                let out: Value = serde_json::from_slice(&f.body).expect("output is valid JSON");
                let kept: BTreeSet<usize> = out["beneficiaries"].as_array().unwrap().iter().map(|r| r["id"].as_u64().unwrap() as usize).collect();
                prop_assert_eq!(&kept, &expected);
                for r in out["beneficiaries"].as_array().unwrap() {
                    prop_assert!(canonical_owner(&r["mobile_number"]), "{r}");
                }
                prop_assert_eq!((f.kept, f.dropped), (expected.len(), owners.len() - expected.len()));
                for (k, v) in &extra {
                    if k != "beneficiaries" {
                        prop_assert_eq!(&out[k], &json!(v));
                    }
                }
            }
            Err(e) => {
                prop_assert_eq!(e, OwnershipError::NothingLeft);
                prop_assert!(expected.is_empty());
            }
        }
    }

    #[test]
    fn parse_strict_agrees_with_serde_json(v in arb_json()) {
        // Compared with serde_json's own parse: its float parsing does not always round-trip `v` exactly.
        let bytes = serde_json::to_vec(&v).unwrap();
        prop_assert_eq!(parse_strict(&bytes).unwrap(), serde_json::from_slice::<Value>(&bytes).unwrap());
    }
}

/// The test's own reading of "registered to the caller": one of the explicit spellings of `CALLER`.
fn canonical_owner(owner: &Value) -> bool {
    let spellings = [CALLER.to_owned(), format!("+91{CALLER}"), format!("91{CALLER}"), format!("0{CALLER}")];
    match owner {
        Value::String(s) => spellings.contains(s),
        Value::Number(n) => n.as_u64().is_some_and(|n| spellings.contains(&n.to_string())),
        _ => false,
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        ".{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,5}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn canonical_owner_matches_canonical_mobile_for_the_caller() {
    // Ties the test oracle to the implementation's rule for the spellings used above.
    for s in [CALLER.to_owned(), format!("+91{CALLER}"), format!("91{CALLER}"), format!("0{CALLER}")] {
        assert_eq!(canonical_mobile(&s).as_deref(), Some(CALLER));
    }
}
