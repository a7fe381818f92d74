//! Property tests: random documents keep only named keys under `deny`; secrets under dropped or
//! transformed paths never survive; random mutations give valid output or an error, never invalid
//! output; any chunking gives the same result.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value};

use super::*;

/// Keys: mostly names the test profile knows (in any case), some arbitrary.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["a", "A", "b", "c", "d", "e", "f", "x", "y", "sec", "SECRET", "Sec_2", "z", "q"])
            .prop_map(String::from),
        1 => "[a-zA-Z_\"\\\\é\\u{1F600} ]{0,6}",
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        "[ -~é日\\u{1F600}\\n\\t\"\\\\]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 80, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Cut points into a document of length `len`.
fn cuts(picks: &[Index], len: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = picks.iter().map(|i| i.index(len + 1)).collect();
    cuts.sort_unstable();
    cuts
}

const DENY: &str = r#"
rules:
  - {path: a, action: keep}
  - {path: "b[*].c", action: mask, keep_last: 2, format: "XX##"}
  - {path: "**.sec*", action: drop}
  - {path: d.e, action: hmac}
  - {path: "b[*].f", action: keep}
  - {path: "x.**.y", action: keep}
"#;

/// Every key in `v` is one the profile names, unless inside a kept subtree (over-approximated:
/// under `a` at the root, or under any `f` or `y`) or a container on the way to `x.**.y`; no
/// `sec*` key anywhere.
fn only_named(v: &Value, depth: usize, kept: bool, under_x: bool) -> Result<(), String> {
    let children: Vec<(Option<&String>, &Value)> = match v {
        Value::Object(m) => m.iter().map(|(k, v)| (Some(k), v)).collect(),
        Value::Array(a) => a.iter().map(|v| (None, v)).collect(),
        _ => return Ok(()),
    };
    for (k, child) in children {
        let (mut child_kept, mut child_x) = (kept, under_x);
        if let Some(k) = k {
            let k = k.to_lowercase();
            if k.starts_with("sec") {
                return Err(format!("key {k:?} survived"));
            }
            let skeleton = under_x && (child.is_object() || child.is_array());
            if !kept && !skeleton && !["a", "b", "c", "d", "e", "f", "x", "y"].contains(&k.as_str()) {
                return Err(format!("unnamed key {k:?} survived"));
            }
            child_kept |= (depth == 0 && k == "a") || k == "f" || k == "y";
            child_x |= depth == 0 && k == "x";
        }
        only_named(child, depth + 1, child_kept, child_x)?;
    }
    Ok(())
}

const MARK: &str = "SECRETMARK";

/// An export-shaped record with the marker in every field the citizen profile must not release.
fn record() -> impl Strategy<Value = Value> {
    let secret = prop_oneof![
        (0u32..10_000).prop_map(|n| Value::from(format!("{MARK}{n:04}"))),
        Just(Value::from(format!("x{MARK}"))),
        Just(serde_json::json!({ "v": MARK })),
        Just(serde_json::json!([MARK, 1])),
    ];
    let aadhaar_key = prop::sample::select(vec!["aadhaar", "AADHAAR", "aadhaarNo", "Aadhaar_number"]);
    (json(), secret.clone(), secret.clone(), secret.clone(), aadhaar_key, secret, any::<bool>()).prop_map(
        |(noise, s1, s2, s3, ak, s4, nest)| {
            let mut m = Map::new();
            m.insert("name".into(), Value::from("Asha"));
            m.insert("photo_id_number".into(), s1);
            m.insert("mobile".into(), s2);
            m.insert("comorbidity_ind".into(), s3.clone());
            m.insert("unnamed_field".into(), s3);
            m.insert("noise".into(), noise);
            if nest {
                let inner: Map<String, Value> = [(ak.to_string(), s4)].into_iter().collect();
                m.insert("name2".into(), serde_json::json!({ "deep": inner }));
            } else {
                m.insert(ak.into(), s4);
            }
            Value::Object(m)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn deny_output_is_valid_and_has_only_named_keys(v in json(), picks in prop::collection::vec(any::<Index>(), 0..4)) {
        let p = profile(DENY);
        let doc = serde_json::to_vec(&v).expect("serialize");
        let (out, _) = redact(&p, &doc).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let parsed: Value = serde_json::from_slice(&out).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        only_named(&parsed, 0, false, false).map_err(TestCaseError::fail)?;
        let again = split_run(&p, &doc, &cuts(&picks, doc.len())).map(|(o, _)| o);
        prop_assert_eq!(again, Ok(out));
    }

    #[test]
    fn nothing_under_dropped_or_transformed_paths_survives(
        recs in prop::collection::vec(record(), 1..5),
        pretty in any::<bool>(),
        picks in prop::collection::vec(any::<Index>(), 0..6),
    ) {
        let p = profile(CITIZEN);
        let doc = serde_json::json!({ "beneficiaries": recs, "ttl": 5, "aadhaar": MARK });
        let doc = if pretty { serde_json::to_vec_pretty(&doc) } else { serde_json::to_vec(&doc) }.expect("serialize");
        let (out, report) = split_run(&p, &doc, &cuts(&picks, doc.len()))
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let text = String::from_utf8(out.clone()).expect("UTF-8");
        prop_assert!(!text.contains(MARK), "{}", text);
        let parsed: Value = serde_json::from_slice(&out).expect("valid JSON");
        prop_assert!(!parsed.to_string().contains(MARK));
        prop_assert!(report.redacted() > 5 * recs.len() as u64);
    }

    #[test]
    fn mutations_give_valid_output_or_an_error(
        v in json(),
        edits in prop::collection::vec((any::<Index>(), any::<u8>(), 0u8..3), 1..4),
        picks in prop::collection::vec(any::<Index>(), 0..3),
    ) {
        let mut doc = serde_json::to_vec(&v).expect("serialize");
        for (at, byte, op) in edits {
            let i = at.index(doc.len() + 1);
            match op {
                0 if i < doc.len() => doc[i] = byte,
                1 => doc.insert(i, byte),
                _ if i < doc.len() => { doc.remove(i); }
                _ => doc.push(byte),
            }
        }
        let input_valid = valid_json(&doc);
        for p in [profile(DENY), profile("default: allow\nrules: [{path: '**.c', action: mask}]")] {
            let whole = redact(&p, &doc);
            match &whole {
                Ok((out, _)) => {
                    prop_assert!(input_valid, "accepted invalid input {:?}", String::from_utf8_lossy(&doc));
                    prop_assert!(valid_json(out), "invalid output {:?}", String::from_utf8_lossy(out));
                }
                Err(RedactError::DuplicateKey { .. } | RedactError::TooDeep) => {}
                Err(e) => {
                    prop_assert!(!input_valid, "rejected valid input ({}) {:?}", e, String::from_utf8_lossy(&doc));
                }
            }
            prop_assert_eq!(split_run(&p, &doc, &cuts(&picks, doc.len())), whole);
        }
    }
}
