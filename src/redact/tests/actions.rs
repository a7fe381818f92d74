//! Transforms: mask formats, HMAC tokens, generalization, non-scalars under transforms.

use super::super::actions::{decode, format_json, mask, year};
use super::*;

fn masked(format: &str, keep: usize, value: &str) -> String {
    let mut out = Vec::new();
    mask(&format_json(format), keep, value.as_bytes(), &mut out);
    String::from_utf8(out).expect("UTF-8")
}

#[test]
fn mask_reveals_the_last_characters_right_aligned() {
    assert_eq!(masked("XXXX-XXXX-####", 4, "123456789012"), r#""XXXX-XXXX-9012""#);
    assert_eq!(masked("XXXXXX####", 4, "9000000001"), r#""XXXXXX0001""#);
    assert_eq!(masked("##-##", 4, "abcdef"), r#""cd-ef""#);
    assert_eq!(masked("***", 0, "anything"), r#""***""#);
    // Characters, not bytes.
    assert_eq!(masked("XX##", 2, "नमस्ते"), "\"XXते\"");
}

#[test]
fn mask_of_a_short_value_reveals_nothing() {
    assert_eq!(masked("XXXX-XXXX-####", 4, "1234"), r#""XXXX-XXXX-XXXX""#);
    assert_eq!(masked("XXXX-XXXX-####", 4, ""), r#""XXXX-XXXX-XXXX""#);
}

#[test]
fn mask_output_is_escaped_json() {
    assert_eq!(masked("\"\\#", 1, "ab"), r#""\"\\b""#);
    assert_eq!(masked("##", 2, "a\"\\"), r#""\"\\""#);
    assert_eq!(masked("é#", 1, "xy"), r#""éy""#);
}

#[test]
fn mask_in_documents_and_default_format() {
    let p = profile(CITIZEN);
    let doc = r#"{"beneficiaries":[{"photo_id_number":"1234 5678 9012","mobile_number":9000000001}]}"#;
    assert_eq!(
        run(&p, doc),
        r#"{"beneficiaries":[{"photo_id_number":"XXXX-XXXX-9012","mobile_number":"XXXXXX0001"}]}"#
    );
    let p = profile("rules: [{path: a, action: mask, keep_last: 2}]");
    assert_eq!(run(&p, r#"{"a":"secret42"}"#), r#"{"a":"XXXXXX42"}"#);
    // Escapes are decoded before masking.
    assert_eq!(run(&p, r#"{"a":"x\u0034\u0032"}"#), r#"{"a":"XXXXXX42"}"#);
}

fn token(key: &[u8], value: &str) -> String {
    let raw: RawProfile = serde_yaml_ng::from_str("rules: [{path: v, action: hmac}]").expect("yaml");
    let p = compile("h", &raw, key).expect("compiles");
    let (out, _) = redact(&p, format!(r#"{{"v":{value}}}"#).as_bytes()).expect("ok");
    String::from_utf8(out).expect("UTF-8")
}

#[test]
fn hmac_is_deterministic_per_key_and_differs_across_keys() {
    let a = token(KEY, r#""9000000001""#);
    assert_eq!(a, token(KEY, r#""9000000001""#));
    assert_ne!(a, token(b"another-key-of-enough-length", r#""9000000001""#));
    assert_ne!(a, token(KEY, r#""9000000002""#));
    // Numbers hash by their text, like the same digits in a string.
    assert_eq!(a, token(KEY, "9000000001"));
    let v: serde_json::Value = serde_json::from_str(&a).expect("json");
    let t = v["v"].as_str().expect("string token");
    assert!(t.starts_with("h:") && t.len() == 34 && t[2..].bytes().all(|b| b.is_ascii_hexdigit()), "{t}");
    assert!(!a.contains("9000000001"));
}

#[test]
fn hmac_repeats_and_alternations_stay_consistent() {
    // Exercises the per-rule memo of the last token: repeats, alternations, escaped equals.
    let p = profile("default: allow\nrules: [{path: '[*]', action: hmac}]");
    let out = run(&p, r#"["a","a","b","a","\u0061",97,"97"]"#);
    let v: Vec<String> = serde_json::from_str(&out).expect("array of tokens");
    assert_eq!((v[0] == v[1], v[1] == v[2], v[0] == v[3], v[0] == v[4]), (true, false, true, true), "{out}");
    assert_eq!(v[5], v[6], "number and string of the same text");
    assert_ne!(v[0], v[5]);
}

#[test]
fn derived_keys_differ_per_profile_and_master() {
    assert_ne!(derive_key(b"master", "citizen"), derive_key(b"master", "research"));
    assert_ne!(derive_key(b"master", "citizen"), derive_key(b"other", "citizen"));
    assert_eq!(derive_key(b"master", "citizen"), derive_key(b"master", "citizen"));
}

#[test]
fn year_of_every_supported_date_form() {
    for (date, y) in [
        ("01-06-2021", "2021"),
        ("01/06/2021", "2021"),
        ("2021-06-01", "2021"),
        ("2021/06/01", "2021"),
        ("2021-06-01T10:00:00Z", "2021"),
        ("2021-06-01 10:00", "2021"),
        ("2021-06", "2021"),
        ("2021", "2021"),
    ] {
        assert_eq!(year(date.as_bytes()), Some(y.as_bytes()), "{date}");
    }
    for bad in ["", "21", "2021-13-01", "2021-06-32", "01-13-2021", "2021-06/01", "x2021", "2021-06-01x", "abcd"] {
        assert_eq!(year(bad.as_bytes()), None, "{bad}");
    }
}

#[test]
fn generalize_in_documents() {
    let p = profile("default: allow\nrules: [{path: '**.d', action: generalize}]");
    assert_eq!(
        run(&p, r#"[{"d":"01-06-2021"},{"d":"2021-06-01"},{"d":1987},{"d":"soon"},{"d":20210601},{"d":true}]"#),
        r#"[{"d":"2021"},{"d":"2021"},{"d":1987},{"d":null},{"d":null},{"d":null}]"#
    );
}

#[test]
fn transforms_of_containers_and_literals_are_null() {
    let p = profile(
        "rules: [{path: m, action: mask, keep_last: 1, format: 'X#'}, {path: h, action: hmac}, \
         {path: g, action: generalize}, {path: n, action: 'null'}]",
    );
    let doc = r#"{"m":{"secret":"s1"},"h":["s2",{"x":"s3"}],"g":{"d":"2021-01-01"},"n":[1],"x":1}"#;
    assert_eq!(run(&p, doc), r#"{"m":null,"h":null,"g":null,"n":null}"#);
    assert_eq!(run(&p, r#"{"m":true,"h":false,"g":null,"n":"v"}"#), r#"{"m":null,"h":null,"g":null,"n":null}"#);
}

#[test]
fn decode_handles_every_escape() {
    let mut out = Vec::new();
    decode(br#"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00z"#, &mut out);
    assert_eq!(String::from_utf8(out).expect("UTF-8"), "a\"\\/\u{8}\u{c}\n\r\té😀z");
}
