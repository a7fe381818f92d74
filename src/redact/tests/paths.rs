//! Profiles: compile errors, path features, precedence, deny vs allow, dry run, reports.

use super::*;

fn errors(yaml: &str, key: &[u8]) -> Vec<(String, String)> {
    let raw: RawProfile = serde_yaml_ng::from_str(yaml).expect("profile YAML");
    compile("bad", &raw, key).expect_err("must not compile")
}

#[test]
fn compile_reports_every_error_with_its_field() {
    let errs = errors(
        r#"
rules:
  - {path: "a..b", action: keep}
  - {path: "a[0]", action: keep}
  - {path: "x", action: mask, keep_last: 4, format: "XX###"}
  - {path: "y", action: keep, keep_last: 2}
  - {path: "z", action: drop, format: "X"}
  - {path: "h", action: hmac}
  - {path: "X", action: drop}
  - {path: "a**b", action: drop}
  - {path: "**.**.c", action: drop}
  - {path: "", action: drop}
"#,
        b"short",
    );
    let fields: Vec<&str> = errors_fields(&errs);
    assert_eq!(
        fields,
        [
            "rules[0].path",
            "rules[1].path",
            "rules[2].format",
            "rules[3].keep_last",
            "rules[4].format",
            "rules[5].action",
            "rules[6].path",
            "rules[7].path",
            "rules[8].path",
            "rules[9].path"
        ],
        "{errs:?}"
    );
}

fn errors_fields(errs: &[(String, String)]) -> Vec<&str> {
    errs.iter().map(|(f, _)| f.as_str()).collect()
}

#[test]
fn unknown_fields_and_actions_are_rejected() {
    assert!(serde_yaml_ng::from_str::<RawProfile>("rules: []\nextra: 1").is_err());
    assert!(serde_yaml_ng::from_str::<RawProfile>("rules: [{path: a, action: keep, why: x}]").is_err());
    assert!(serde_yaml_ng::from_str::<RawProfile>("rules: [{path: a, action: shred}]").is_err());
    assert!(serde_yaml_ng::from_str::<RawProfile>("default: maybe").is_err());
    let raw: RawProfile = serde_yaml_ng::from_str(CITIZEN).expect("example parses");
    assert_eq!(raw.default, DefaultPolicy::Deny);
    assert_eq!(raw.rules.len(), 9);
}

#[test]
fn the_example_profile_end_to_end() {
    let p = profile(CITIZEN);
    let doc = r#"{"beneficiaries":[{"beneficiary_reference_id":"1","name":"Asha","birth_year":"1987",
        "photo_id_number":"123456789012","mobile":"9000000001","mobile_number":"9000000001",
        "aadhaarNo":"999988887777","dose1_date":"01-06-2021","comorbidity_ind":"Y",
        "extra":{"AADHAAR":"1","nested":{"Aadhaar_number":"2"}}}],"ttl":15,"aadhaar":"3","other":1}"#;
    let out = run(&p, doc);
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    let b = &v["beneficiaries"][0];
    assert_eq!(b["name"], "Asha");
    assert_eq!(b["birth_year"], "1987");
    assert_eq!(b["photo_id_number"], "XXXX-XXXX-9012");
    assert_eq!(b["mobile_number"], "XXXXXX0001");
    assert_eq!(b["dose1_date"], "2021");
    assert!(b["mobile"].as_str().is_some_and(|t| t.starts_with("h:")));
    assert_eq!(b["comorbidity_ind"], serde_json::Value::Null);
    assert_eq!(b.as_object().map(|o| o.len()), Some(7), "{out}");
    assert_eq!(v["ttl"], 15);
    assert_eq!(v.as_object().map(|o| o.len()), Some(2), "{out}");
    for secret in ["999988887777", "123456789012", "9000000001", "Y\""] {
        assert!(!out.contains(secret), "{secret} in {out}");
    }
}

#[test]
fn key_globs_are_case_insensitive_at_any_depth_and_decoded() {
    let p = profile("default: allow\nrules: [{path: '**.aadhaar*', action: drop}]");
    let doc = r#"{"aadhaarNo":1,"AADHAAR":2,"Aadhaar_number":3,"a":[{"b":{"AadHaar":4}}],"aadh\u0061ar":5,"x":6}"#;
    assert_eq!(run(&p, doc), r#"{"a":[{"b":{}}],"x":6}"#);
    // Middle and leading globs.
    let p = profile("default: allow\nrules: [{path: '*id*num*', action: drop}, {path: '*_X', action: drop}]");
    assert_eq!(run(&p, r#"{"photo_ID_number":1,"idnum":2,"numid":3,"a_x":4,"x":5}"#), r#"{"numid":3,"x":5}"#);
}

#[test]
fn array_wildcards() {
    let p = profile("rules: [{path: '[*].a', action: keep}, {path: '[*][*]', action: keep}]");
    assert_eq!(run(&p, r#"[{"a":1,"b":2},[1,[2]],3]"#), r#"[{"a":1},[1,[2]]]"#);
    let p = profile("rules: [{path: 'm[*][*].v', action: keep}]");
    assert_eq!(run(&p, r#"{"m":[[{"v":1,"w":2}],{"v":3}],"n":1}"#), r#"{"m":[[{"v":1}]]}"#);
    // `[*]` does not match object members, a key does not match array elements: under `deny`
    // neither container can hold anything a rule names, so both go.
    let p = profile("rules: [{path: 'a[*]', action: keep}, {path: 'b.c', action: keep}]");
    assert_eq!(run(&p, r#"{"a":{"x":1},"b":[{"c":1}],"c":2}"#), "{}");
    assert_eq!(run(&p, r#"{"a":["x"],"b":{"c":1}}"#), r#"{"a":["x"],"b":{"c":1}}"#);
}

#[test]
fn any_depth_matches_zero_or_more_levels() {
    let p = profile("rules: [{path: '**.v', action: keep}]");
    assert_eq!(run(&p, r#"{"v":1,"a":{"v":2,"w":3,"b":[{"v":4},5]}}"#), r#"{"v":1,"a":{"v":2,"b":[{"v":4}]}}"#);
    let p = profile("rules: [{path: 'a.**', action: keep}]");
    assert_eq!(run(&p, r#"{"a":{"x":[1]},"b":1}"#), r#"{"a":{"x":[1]}}"#);
    let p = profile("rules: [{path: 'a.**.z', action: keep}]");
    assert_eq!(run(&p, r#"{"a":{"z":1,"y":{"z":2,"q":3}},"z":4}"#), r#"{"a":{"z":1,"y":{"z":2}}}"#);
}

#[test]
fn precedence_most_specific_then_later() {
    // Literal beats glob beats `**`, regardless of order.
    let p = profile(
        "rules: [{path: 'a.id', action: keep}, {path: 'a.*', action: 'null'}, {path: '**.id', action: drop}, \
         {path: '**.x', action: drop}, {path: 'a.x*', action: keep}]",
    );
    assert_eq!(run(&p, r#"{"a":{"id":1,"other":2,"xy":3,"x":4}}"#), r#"{"a":{"id":1,"other":null,"xy":3,"x":4}}"#);
    // Among equally specific rules the later one wins.
    let p = profile("rules: [{path: 'a.*x', action: keep}, {path: 'a.x*', action: drop}]");
    assert_eq!(run(&p, r#"{"a":{"xx":1,"ax":2,"xa":3}}"#), r#"{"a":{"ax":2}}"#);
    let p = profile("rules: [{path: 'a.x*', action: drop}, {path: 'a.*x', action: keep}]");
    assert_eq!(run(&p, r#"{"a":{"xx":1,"ax":2,"xa":3}}"#), r#"{"a":{"xx":1,"ax":2}}"#);
}

#[test]
fn keep_keeps_a_subtree_except_direct_matches() {
    let p = profile(
        "rules: [{path: 'b', action: keep}, {path: '**.aadhaar', action: drop}, \
         {path: 'b.m', action: mask, keep_last: 1, format: 'X#'}]",
    );
    assert_eq!(
        run(&p, r#"{"b":{"x":1,"aadhaar":2,"m":"12","deep":{"aadhaar":3,"y":[4]}},"c":5}"#),
        r#"{"b":{"x":1,"m":"X2","deep":{"y":[4]}}}"#
    );
}

#[test]
fn drop_rules_alone_keep_no_skeletons() {
    // `**.aadhaar*: drop` could match anywhere, but it never puts anything in the output, so it
    // does not make unnamed containers appear as empty skeletons under `deny`.
    let p = profile("rules: [{path: '**.aadhaar*', action: drop}, {path: 'a.k', action: keep}]");
    assert_eq!(run(&p, r#"{"a":{"k":1,"x":{"y":{}},"aadhaar":2},"b":{"c":[{}]}}"#), r#"{"a":{"k":1}}"#);
    let p = profile("rules: [{path: '**.aadhaar*', action: drop}]");
    assert_eq!(run(&p, r#"{"a":{"k":1}}"#), "null");
}

#[test]
fn deny_drops_unnamed_and_keeps_skeletons() {
    let p = profile("rules: [{path: 'a.b.c', action: keep}]");
    assert_eq!(run(&p, r#"{"a":{"b":{"c":1,"d":2},"e":3},"f":{"b":{"c":4}}}"#), r#"{"a":{"b":{"c":1}}}"#);
    // A scalar where the rules expect a container is unnamed: dropped.
    assert_eq!(run(&p, r#"{"a":{"b":"c"},"z":null}"#), r#"{"a":{}}"#);
    // Unnamed root scalar, nothing kept: the output is `null`.
    assert_eq!(run(&p, "42"), "null");
    let none = profile("rules: []");
    assert_eq!(run(&none, r#"{"a":1}"#), "null");
}

#[test]
fn allow_passes_unnamed() {
    let p = profile("default: allow\nrules: [{path: 'a.s', action: drop}]");
    assert_eq!(run(&p, r#" { "a" : { "s" : 1 , "t" : [ 1 , 2 ] } , "u" : "v" } "#), r#"{"a":{"t":[1,2]},"u":"v"}"#);
}

#[test]
fn drop_leaves_no_dangling_commas() {
    let p = profile("default: allow\nrules: [{path: '**.d', action: drop}, {path: '[*]', action: drop}]");
    assert_eq!(
        run(&p, r#"{"d":1,"a":{"d":1},"b":{"x":1,"d":2},"c":{"d":1,"x":2,"d2":3}}"#),
        r#"{"a":{},"b":{"x":1},"c":{"x":2,"d2":3}}"#
    );
    assert_eq!(run(&p, r#"[1,2,3]"#), "[]");
    let p = profile("default: allow\nrules: [{path: '[*].d', action: drop}]");
    assert_eq!(run(&p, r#"[{"d":1},{"d":1,"e":2},{"e":3,"d":4}]"#), r#"[{},{"e":2},{"e":3}]"#);
    let p = profile("rules: [{path: '[*].k', action: keep}]");
    assert_eq!(run(&p, r#"[1,{"k":1},2,{"j":1},3]"#), r#"[{"k":1},{}]"#);
}

#[test]
fn root_rules() {
    let p = profile("rules: [{path: '**', action: keep}, {path: '**.pw', action: drop}]");
    assert_eq!(run(&p, r#"{"a":[{"pw":1,"b":2}],"pw":3}"#), r#"{"a":[{"b":2}]}"#);
    let p = profile("default: allow\nrules: [{path: '**', action: drop}]");
    assert_eq!(run(&p, r#"{"a":1}"#), "null");
    let p = profile("default: allow\nrules: [{path: '[*]', action: hmac}]");
    assert!(run(&p, r#"["x",{"y":1}]"#).ends_with(r#"",null]"#));
}

#[test]
fn report_names_rules_and_counts_without_values() {
    let p = profile(CITIZEN);
    let doc = r#"{"beneficiaries":[{"name":"A","aadhaar":"1","mobile":"9","photo_id_number":"123456",
        "comorbidity_ind":"N","dose1_date":"2021-01-01","x":1},{"aadhaarNo":"2","mobile":"8","y":{"z":1}}],"w":1}"#;
    let (_, report) = redact(&p, doc.as_bytes()).expect("ok");
    let fields: Vec<(&str, u64)> = report.fields.iter().map(|(k, &v)| (k.as_str(), v)).collect();
    assert_eq!(
        fields,
        [
            ("**.aadhaar*", 2),
            (UNNAMED, 3),
            ("beneficiaries[*].comorbidity_ind", 1),
            ("beneficiaries[*].dose1_date", 1),
            ("beneficiaries[*].mobile", 2),
            ("beneficiaries[*].photo_id_number", 1),
        ]
    );
    assert_eq!((report.removed, report.masked, report.hashed, report.generalized, report.nulled), (5, 1, 2, 1, 1));
    assert_eq!(report.redacted(), 10);
    assert!(!report.dry_run);
    assert_eq!(report.bytes_in, doc.len() as u64);
    let debug = format!("{report:?}");
    assert!(!debug.contains("123456") && !debug.contains("2021"), "{debug}");
}

#[test]
fn dry_run_passes_input_unchanged_and_still_counts() {
    let dry = profile(&CITIZEN.replace("dry_run: false", "dry_run: true"));
    let wet = profile(CITIZEN);
    let doc = "{ \"beneficiaries\" : [ {\"name\":\"A\",\"aadhaar\":\"1\",\"x\" :1} ] ,\n\"w\":1 }\n";
    for n in [1, 3, doc.len()] {
        let (out, report) = chunks_run(&dry, doc.as_bytes(), n).expect("ok");
        assert_eq!(out, doc.as_bytes());
        assert!(report.dry_run);
        let (_, wet_report) = chunks_run(&wet, doc.as_bytes(), n).expect("ok");
        assert_eq!(report.fields, wet_report.fields);
        assert_eq!(report.removed, 3);
    }
    // Invalid input is still an error.
    assert!(redact(&dry, b"{\"a\":1,}").is_err());
    assert!(redact(&dry, b"{\"a\":1,\"a\":2}").is_err());
}
