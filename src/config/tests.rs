use super::*;

fn sources(files: &[(&str, &str)]) -> Sources {
    Sources { files: files.iter().map(|(n, c)| (n.to_string(), c.to_string())).collect(), base: None }
}

#[test]
fn embedded_policy_parses() {
    let m = parse(&Sources::embedded()).expect("the shipped policy parses");
    assert!(m.gateway.is_some());
    assert!(m.routes.len() > 10);
}

/// Found by the `policy` fuzz target: a file that is one scalar (or a list) was reported with
/// neither a field path nor a line; a syntax error serde cannot place was printed with the path `?`.
#[test]
fn a_file_that_is_not_a_mapping_says_the_error_is_about_the_whole_file() {
    for text in ["nope", "- gateway", "42"] {
        let errors = parse(&sources(&[("a.yaml", text)])).unwrap_err();
        assert_eq!(errors.len(), 1, "{text}: {errors:?}");
        assert_eq!((errors[0].file.as_str(), errors[0].path.as_str()), ("a.yaml", ""));
        assert!(errors[0].message.contains("the whole file"), "{text}: {}", errors[0].message);
    }
    let errors =
        parse(&sources(&[("a.yaml", "gateway:\n  limits: {max_headers: 0}\n 2timeouts: {route: 1s}\n")])).unwrap_err();
    assert_eq!(errors[0].path, "", "{errors:?}");
    assert!(errors[0].message.contains("line "), "{errors:?}");
}

#[test]
fn unknown_fields_and_bad_types_name_file_and_path() {
    let s = sources(&[
        (
            "a.yaml",
            "routes:\n  - name: x\n    methods: [GET]\n    path: /x\n    access: public\n    upstream: u\n    colour: red\n",
        ),
        ("b.yaml", "gateway:\n  limits:\n    max_headers: lots\n"),
        ("c.yaml", "gateway:\n  timeouts:\n    route: 10 fortnights\n"),
    ]);
    let errors = parse(&s).unwrap_err();
    assert_eq!(errors.len(), 3, "one error per broken file: {errors:?}");
    assert_eq!(errors[0].file, "a.yaml");
    assert_eq!(errors[0].path, "routes[0].colour");
    assert!(errors[0].message.contains("colour"), "{}", errors[0].message);
    assert_eq!((errors[1].file.as_str(), errors[1].path.as_str()), ("b.yaml", "gateway.limits.max_headers"));
    assert_eq!((errors[2].file.as_str(), errors[2].path.as_str()), ("c.yaml", "gateway.timeouts.route"));
    assert!(errors[2].message.contains("fortnights"));
}

#[test]
fn sections_merge_across_files_and_duplicates_are_errors() {
    let s = sources(&[
        ("1.yaml", "gateway: {}\nupstreams:\n  u: {url: 'http://127.0.0.1:1'}\n"),
        ("2.yaml", "gateway: {}\nupstreams:\n  u: {url: 'http://127.0.0.1:2'}\n"),
    ]);
    let errors = parse(&s).unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().all(|e| e.file == "2.yaml"));
    assert!(errors[0].message.contains("1.yaml"));
}

#[test]
fn version_changes_with_any_byte() {
    let a = sources(&[("a.yaml", "routes: []\n")]);
    let b = sources(&[("a.yaml", "routes: [] \n")]);
    let c = sources(&[("b.yaml", "routes: []\n")]);
    assert_ne!(a.version(), b.version());
    assert_ne!(a.version(), c.version());
    assert_eq!(a.version(), a.clone().version());
}

#[test]
fn from_dir_reads_yaml_only_in_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.yaml"), "routes: []\n").unwrap();
    std::fs::write(dir.path().join("a.yml"), "gateway: {}\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let s = Sources::from_dir(dir.path()).unwrap();
    let names: Vec<&str> = s.files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a.yml", "b.yaml"]);
    let empty = tempfile::tempdir().unwrap();
    assert!(Sources::from_dir(empty.path()).is_err());
}
