//! The streaming walker: every chunk split gives the same result; strict RFC 8259 validation;
//! limits; error stickiness and error messages without input bytes.

use super::*;

const DOCS: &[&str] = &[
    r#"{"beneficiaries":[{"name":"Asha \"A\" \u0915\ud83d\ude00","photo_id_number":"1234-5678-9012","mobile":9000000001,"aadhaarNo":"x","dose1_date":"01-06-2021","birth_year":-1.5e+3,"comorbidity_ind":true,"x":[null,false,{}]}],"ttl":0}"#,
    " [ 1 , -0.0 , 2e10 , \"a\\/b\" , { } , [ ] , null , true , false ] ",
    r#"{"aadh\u0061ar":"s","ttl":{"deep":[[["v"]]]},"beneficiaries":[]}"#,
    "\"top-level string\"",
    "12345.678e-9",
    "true",
    r#"{"ttl":"é日本😀","beneficiaries":[{"name":"\\\"","mobile_number":"12"}]}"#,
];

/// Invalid documents: each must fail however it is split.
const BAD: &[&str] = &[
    "",
    "   ",
    "{",
    "[1,]",
    "{\"a\":1,}",
    "{\"a\" 1}",
    "{a:1}",
    "{'a':1}",
    "01",
    "1.",
    ".5",
    "-",
    "+1",
    "1e",
    "1e+",
    "0x10",
    "tru",
    "nul",
    "truee",
    "\"abc",
    "\"a\\x\"",
    "\"\\u12G4\"",
    "\"\\ud800\"",
    "\"\\udc00\"",
    "\"\\ud800\\u0041\"",
    "\"\\ud800x\"",
    "\"tab\there\"",
    "{}{}",
    "{} x",
    "[1 2]",
    "{\"a\":1 \"b\":2}",
    "[}",
    "{]",
    "{\"a\":1,\"a\":2}",
    "{\"a\":1,\"\\u0061\":2}",
    "[\"x\",]",
    "{\"b\":[{\"a\":1,\"a\":1}]}",
];

#[test]
fn every_split_gives_the_same_result() {
    let profiles = [profile(CITIZEN), profile("default: allow\nrules: [{path: '**.x', action: drop}]")];
    for p in &profiles {
        for doc in DOCS.iter().chain(BAD) {
            let whole = redact(p, doc.as_bytes());
            assert_eq!(whole.is_ok(), !BAD.contains(doc), "{doc}");
            if let Ok((out, _)) = &whole {
                assert!(valid_json(out), "{doc} → {}", String::from_utf8_lossy(out));
            }
            assert_eq!(chunks_run(p, doc.as_bytes(), 1), whole, "1-byte chunks of {doc}");
            for cut in 0..=doc.len() {
                assert_eq!(split_run(p, doc.as_bytes(), &[cut]), whole, "split at {cut} of {doc}");
            }
            for a in (0..=doc.len()).step_by(3) {
                for b in a..=doc.len() {
                    assert_eq!(split_run(p, doc.as_bytes(), &[a, b]), whole, "splits {a},{b} of {doc}");
                }
            }
        }
    }
}

#[test]
fn invalid_utf8_is_rejected() {
    let p = profile("default: allow\nrules: []");
    for bad in [
        &b"\"\xC0\x80\""[..],
        b"\"\xED\xA0\x80\"",
        b"\"\xF5\x80\x80\x80\"",
        b"\"\xE0\x80\xAF\"",
        b"\"\xF4\x90\x80\x80\"",
        b"\"\x80\"",
        b"\"\xC3\"",
        b"\"\xE6\x97\"",
        b"{\"\xFF\":1}",
    ] {
        assert!(redact(&p, bad).is_err(), "{bad:?}");
        assert!(chunks_run(&p, bad, 1).is_err(), "{bad:?}");
    }
    assert!(redact(&p, "\"\u{7FF}\u{FFFF}\u{10FFFF}\"".as_bytes()).is_ok());
}

#[test]
fn errors_say_where_but_never_what() {
    let p = profile(CITIZEN);
    let cases: &[(&str, RedactError)] = &[
        ("{\"mobile\":\"9000000001\" x", RedactError::Syntax { offset: 23 }),
        ("{\"9000000001\":1,\"9000000001\":2}", RedactError::DuplicateKey { offset: 27 }),
        ("{\"a\":\"9000000001\"} 9000000001", RedactError::TrailingData { offset: 19 }),
        ("{\"a\":\"9000000001", RedactError::Incomplete),
    ];
    for (doc, want) in cases {
        let err = redact(&p, doc.as_bytes()).expect_err("invalid");
        assert_eq!(&err, want, "{doc}");
        assert!(!err.to_string().contains("9000000001"), "{err}");
    }
}

#[test]
fn limits_are_enforced() {
    let p = profile("default: allow\nrules: [{path: '**.m', action: mask}]");
    let limits = Limits { max_depth: 3, max_token: 8, max_members: 2 };
    let run_with = |doc: &str| {
        let mut r = Redactor::new(&p, limits);
        let mut out = Vec::new();
        r.feed(doc.as_bytes(), &mut out).and_then(|()| r.finish(&mut out)).map(|_| out)
    };
    assert!(run_with("[[[1]]]").is_ok());
    assert_eq!(run_with("[[[[1]]]]"), Err(RedactError::TooDeep));
    assert_eq!(run_with("{\"a\":{\"b\":{\"c\":{}}}}"), Err(RedactError::TooDeep));
    assert!(run_with("\"12345678\"").is_ok());
    assert_eq!(run_with("\"123456789\""), Err(RedactError::TokenTooLong));
    assert_eq!(run_with("{\"m\":\"123456789\"}"), Err(RedactError::TokenTooLong));
    assert_eq!(run_with("{\"123456789\":1}"), Err(RedactError::TokenTooLong));
    assert_eq!(run_with("1234567890"), Err(RedactError::TokenTooLong));
    assert_eq!(run_with("{\"a\":1,\"b\":2,\"c\":3}"), Err(RedactError::TooManyMembers));
    // Depth counts inside dropped subtrees too (they are still validated).
    let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
    assert_eq!(redact(&profile("rules: []"), deep.as_bytes()).map(|_| ()), Err(RedactError::TooDeep));
}

#[test]
fn errors_are_sticky() {
    let p = profile(CITIZEN);
    let mut r = Redactor::new(&p, Limits::default());
    let mut out = Vec::new();
    assert!(r.feed(b"[1,,", &mut out).is_err());
    assert!(r.feed(b"2]", &mut out).is_err());
    assert!(r.finish(&mut out).is_err());
}

#[test]
fn long_strings_stream_without_buffering() {
    // A 4 MiB kept string under a 1 MiB token limit is an error…
    let p = profile("default: allow\nrules: []");
    let big = format!("[\"{}\"]", "a".repeat(4 << 20));
    assert_eq!(chunks_run(&p, big.as_bytes(), 65536).map(|_| ()), Err(RedactError::TokenTooLong));
    // …and many records pass in chunks, output identical to the compact input.
    let doc = format!("[{}]", vec![r#"{"k":"v","n":[1,2.5,true]}"#; 20_000].join(","));
    let (out, _) = chunks_run(&p, doc.as_bytes(), 4096).expect("ok");
    assert_eq!(out, doc.as_bytes());
}

#[test]
fn dfa_cache_rebuild_keeps_results_identical() {
    // Thousands of distinct keys overflow the transition cache; results must not change.
    let p = profile(
        "rules: [{path: '**.k*', action: keep}, {path: '**.s*', action: drop}, {path: 'a.**.x', action: keep}]",
    );
    let mut doc = String::from("{\"a\":{");
    for i in 0..20_000 {
        doc.push_str(&format!("\"k{i}\":{{\"s{i}\":1,\"x\":2,\"q{i}\":[{i}]}},"));
    }
    doc.push_str("\"end\":0}}");
    let (out, _) = redact(&p, doc.as_bytes()).expect("ok");
    let v: serde_json::Value = serde_json::from_slice(&out).expect("valid");
    let a = v["a"].as_object().expect("object");
    assert_eq!(a.len(), 20_000);
    for i in (0..20_000).step_by(997) {
        let want: serde_json::Value = serde_json::from_str(&format!(r#"{{"x":2,"q{i}":[{i}]}}"#)).expect("json");
        assert_eq!(a[&format!("k{i}")], want, "k{i}");
    }
}

#[test]
fn memory_does_not_grow_with_the_body() {
    // An export of ~6 MB streamed in 64 KiB pieces, with a fresh key in every record (so the
    // transition cache fills up and is rebuilt, several times) and a dry-run twin: the largest
    // footprint in the second half is no larger than in the first, and small.
    let p = profile(CITIZEN);
    let dry = profile(&CITIZEN.replace("dry_run: false", "dry_run: true"));
    for p in [&p, &dry] {
        let mut r = Redactor::new(p, Limits::default());
        let mut out = Vec::new();
        let mut pending = b"{\"beneficiaries\":[".to_vec();
        let mut fed = 0usize;
        let mut peaks = [0usize; 2];
        for i in 0..40_000 {
            if i > 0 {
                pending.push(b',');
            }
            pending.extend_from_slice(
                format!(
                    concat!(
                        r#"{{"name":"N{i}","photo_id_number":"1234567890{i:02}","mobile":"9{i:09}","#,
                        r#""extra_{i}":{{"aadhaar":"{i}"}},"dose1_date":"01-06-2021","x":[1,2,{{"y":"z"}}]}}"#
                    ),
                    i = i
                )
                .as_bytes(),
            );
            if pending.len() >= 64 << 10 {
                r.feed(&pending, &mut out).expect("valid");
                fed += pending.len();
                pending.clear();
                out.clear();
                let half = usize::from(i >= 20_000);
                peaks[half] = peaks[half].max(r.footprint());
            }
        }
        pending.extend_from_slice(b"]}");
        r.feed(&pending, &mut out).expect("valid");
        fed += pending.len();
        assert!(fed > 5 << 20, "{fed}");
        assert!(peaks[0] > 0 && peaks[1] <= peaks[0] + 4096, "footprint grew: {peaks:?}");
        assert!(peaks[1] < 1 << 20, "footprint {peaks:?}");
        r.finish(&mut out).expect("complete");
    }
}

#[test]
fn records_are_the_top_level_array_elements_released() {
    let count = |p: &Profile, doc: &str| redact(p, doc.as_bytes()).expect("valid").1.records;
    let citizen = profile(CITIZEN);
    let doc = r#"{"beneficiaries":[{"name":"a"},{"name":"b"},{"x":{"y":[1,2,3]}}],"ttl":5,"more":[1,2]}"#;
    // Three records in `beneficiaries` (the third is emitted as an empty skeleton); `more` is
    // unnamed under deny, so its elements are not released; nested arrays never count.
    assert_eq!(count(&citizen, doc), 3);
    let open = profile("default: allow");
    assert_eq!(count(&open, doc), 5, "allow releases `more` too");
    assert_eq!(count(&open, "[1,[2,3],{\"a\":[4]}]"), 3, "root array");
    assert_eq!(count(&open, r#"{"a":{"b":[1,2]}}"#), 0, "deeper arrays are not record lists");
    let none = profile("default: allow\nrules: [{path: 'beneficiaries[*]', action: drop}]");
    assert_eq!(count(&none, doc), 2, "dropped records are not released (only `more`'s two)");
    let dry = profile("default: deny\ndry_run: true\nrules: [{path: 'beneficiaries[*]', action: drop}]");
    assert_eq!(count(&dry, doc), 5, "a dry run releases everything");
    // Chunking does not change the count.
    for n in [1, 7, 64] {
        assert_eq!(chunks_run(&citizen, doc.as_bytes(), n).expect("valid").1.records, 3, "chunks of {n}");
    }
}

#[test]
fn progress_counts_the_records_before_a_failure() {
    let p = profile("default: allow");
    let records: Vec<String> = (0..100).map(|i| format!(r#"{{"name":"n{i}","x":[1,2]}}"#)).collect();
    let doc = format!(r#"{{"beneficiaries":[{}]}}"#, records.join(","));
    let mut r = Redactor::new(&p, Limits::default());
    let mut out = Vec::new();
    r.feed(&doc.as_bytes()[..doc.len() / 2], &mut out).expect("valid so far");
    assert!(r.feed(b"]]]} not json", &mut out).is_err());
    let n = r.progress().records;
    assert!((40..=60).contains(&n), "about half the records were redacted before the error: {n}");
}
