//! The bulk scans (string content eight bytes at a time, runs of non-ASCII validated as UTF-8 in
//! one call, runs of whitespace) against the byte-at-a-time grammar: every byte that needs
//! attention is found wherever it falls in a word, and wherever a chunk boundary cuts the
//! document, with the same output or the same error offset.

use proptest::prelude::*;

use super::*;

/// Pieces of string content that need attention, each valid JSON string content.
const PIECES: &[&str] =
    &["\\\"", "\\\\", "\\n", "\\u00e9", "\\ud83d\\ude00", "é", "日", "😀", "\\/", "é\\\"日", "😀😀a"];

/// Every `(prefix length, piece)`: the piece lands at each offset of a 16-byte block and its two
/// words, after ASCII or after non-ASCII content.
fn placed() -> Vec<String> {
    let mut docs = Vec::new();
    for k in 0..34 {
        for piece in PIECES {
            let pad = "a".repeat(k);
            docs.push(format!(r#"{{"k{pad}":"{pad}{piece}bcdefgh","x":["{piece}{pad}","é{pad}{piece}"],"n":{k}}}"#));
        }
    }
    docs
}

#[test]
fn content_that_needs_attention_is_found_at_every_offset_and_split() {
    let p = profile("default: allow\nrules: [{path: 'x[*]', action: mask, keep_last: 2, format: 'XX##'}]");
    for doc in placed() {
        let whole = redact(&p, doc.as_bytes());
        let (out, _) = whole.as_ref().unwrap_or_else(|e| panic!("{doc}: {e}"));
        // The first member is copied as written (escapes included), the masks end in the last
        // two characters of each element, the last member is copied too.
        let first = &doc[..doc.find(",\"x\":").expect("x")];
        assert!(out.starts_with(first.as_bytes()), "{doc} → {}", String::from_utf8_lossy(out));
        let got: serde_json::Value = serde_json::from_slice(out).expect("valid output");
        let v: serde_json::Value = serde_json::from_str(&doc).expect("valid input");
        let tail = |s: &serde_json::Value| s.as_str().map(|s| s.chars().rev().take(2).collect::<String>());
        for i in 0..2 {
            let revealed = v["x"][i].as_str().is_some_and(|s| s.chars().count() > 2);
            let want = if revealed { tail(&v["x"][i]) } else { Some("XX".to_string()) };
            assert_eq!(tail(&got["x"][i]), want, "{doc}");
        }
        assert_eq!(got["n"], v["n"], "{doc}");
        for cut in 0..=doc.len() {
            assert_eq!(split_run(&p, doc.as_bytes(), &[cut]), whole, "split at {cut} of {doc}");
        }
        assert_eq!(chunks_run(&p, doc.as_bytes(), 1), whole, "1-byte chunks of {doc}");
        assert_eq!(chunks_run(&p, doc.as_bytes(), 7), whole, "7-byte chunks of {doc}");
    }
}

/// `["<prefix><bad><tail>"]`, and the offset of the byte that must be refused.
fn bad_doc(prefix: &[u8], bad: &[u8], at: usize) -> (Vec<u8>, u64) {
    let mut doc = b"[\"".to_vec();
    doc.extend_from_slice(prefix);
    let offset = (doc.len() + at) as u64;
    doc.extend_from_slice(bad);
    doc.extend_from_slice(b"tail-bytes\"]");
    (doc, offset)
}

/// Invalid content and the index in it of the byte a byte-at-a-time UTF-8/JSON check refuses.
const BAD: &[(&[u8], usize)] = &[
    (b"\x00", 0),
    (b"\x01", 0),
    (b"\x1f", 0),
    (b"\t", 0),
    (b"\n", 0),
    (b"\x80", 0),
    (b"\xbf", 0),
    (b"\xc0\x80", 0),
    (b"\xc1\xbf", 0),
    (b"\xc3", 1),
    (b"\xc3\xc3\xa9", 1),
    (b"\xe6\x97", 2),
    (b"\xe6\x97\x01", 2),
    (b"\xe6\x97\"", 2),
    (b"\xe6\x97\\n", 2),
    (b"\xe0\x80\xaf", 1),
    (b"\xed\xa0\x80", 1),
    (b"\xf0\x8f\xbf\xbf", 1),
    (b"\xf4\x90\x80\x80", 1),
    (b"\xf5\x80\x80\x80", 0),
    (b"\xff", 0),
    (b"\xf0\x9f\x98", 3),
    (b"\\x", 1),
    (b"\\u12g4", 4),
];

#[test]
fn invalid_content_is_refused_at_the_offending_byte_at_every_offset_and_split() {
    let p = profile("default: allow\nrules: []");
    let prefixes = |k: usize| ["a".repeat(k), format!("é{}", "a".repeat(k)), format!("{}日😀", "a".repeat(k))];
    for k in 0..34 {
        for prefix in prefixes(k) {
            for &(bad, at) in BAD {
                let (doc, offset) = bad_doc(prefix.as_bytes(), bad, at);
                let want = Err(RedactError::Syntax { offset });
                assert_eq!(redact(&p, &doc).map(|_| ()), want, "{:?}", String::from_utf8_lossy(&doc));
                for cut in 0..=doc.len() {
                    assert_eq!(split_run(&p, &doc, &[cut]).map(|_| ()), want, "split at {cut} of {doc:?}");
                }
            }
        }
    }
}

#[test]
fn numbers_and_whitespace_runs_split_anywhere() {
    let p = profile("default: allow\nrules: [{path: '**.m', action: mask}]");
    let docs = [
        "[ 12345678901234567890 , -0.0000000001 , 1.5e+300000 , 9E-12 , 0 ]",
        " \n\t\r {\n  \"a\" :\t[ 1 ,\r\n 22 , 333.333e33 ] ,\n  \"m\" : 1234567890123 \n } \n\t ",
        "{\"n\":00}",
        "[1.2.3]",
        "[1e5e5]",
        "[--1]",
        "[1 2]",
    ];
    for doc in docs {
        let whole = redact(&p, doc.as_bytes());
        assert_eq!(whole.is_ok(), valid_json(doc.as_bytes()), "{doc}");
        for cut in 0..=doc.len() {
            assert_eq!(split_run(&p, doc.as_bytes(), &[cut]), whole, "split at {cut} of {doc}");
        }
        assert_eq!(chunks_run(&p, doc.as_bytes(), 1), whole, "1-byte chunks of {doc}");
    }
}

/// String content: mostly runs that the bulk scan takes whole, with escapes, multi-byte
/// characters and (sometimes) a byte that makes it invalid.
fn content() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => "[a-z0-9 ]{0,20}".prop_map(String::into_bytes),
        2 => "[é日😀ß]{1,6}".prop_map(String::into_bytes),
        1 => prop::sample::select(vec!["\\\"", "\\\\", "\\n", "\\u0041", "\\ud83d\\ude00"]).prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::sample::select(vec![
            &b"\x01"[..], b"\x80", b"\xc3", b"\xe6\x97", b"\xed\xa0\x80", b"\xf4\x90", b"\\q", b"\\ud800x",
        ]).prop_map(<[u8]>::to_vec),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn chunked_strings_give_the_one_shot_result(
        key in content(),
        value in content(),
        chunk in 1usize..24,
        picks in prop::collection::vec(any::<proptest::sample::Index>(), 0..4),
    ) {
        let mut doc = b"{\"".to_vec();
        doc.extend_from_slice(&key);
        doc.extend_from_slice(b"\":[\"");
        doc.extend_from_slice(&value);
        doc.extend_from_slice(b"\",1]}");
        for p in [profile("default: allow"), profile("rules: [{path: '*', action: keep}, {path: '*[*]', action: hmac}]")] {
            let whole = redact(&p, &doc);
            prop_assert_eq!(whole.is_ok(), valid_json(&doc), "{:?}", String::from_utf8_lossy(&doc));
            prop_assert_eq!(&chunks_run(&p, &doc, chunk), &whole);
            let mut cuts: Vec<usize> = picks.iter().map(|i| i.index(doc.len() + 1)).collect();
            cuts.sort_unstable();
            prop_assert_eq!(&split_run(&p, &doc, &cuts), &whole);
        }
    }
}
