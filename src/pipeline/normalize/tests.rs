use super::*;

fn limits() -> Limits {
    Limits {
        unidentified: Vec::new(),
        max_headers: 3,
        max_header_bytes: 200,
        max_uri_bytes: 64,
        citizen_body: 1,
        partner_body: 1,
        max_connections: 1,
    }
}

fn check(target: &str) -> Result<Vec<String>, GatewayError> {
    let uri: Uri = target.parse().unwrap();
    path_segments(&uri, &limits()).map(|v| v.into_iter().map(|c| c.into_owned()).collect())
}

fn problem(target: &str) -> PathProblem {
    match check(target) {
        Err(GatewayError::AmbiguousPath(p)) => p,
        other => panic!("{target}: expected an ambiguous path, got {other:?}"),
    }
}

#[test]
fn plain_paths_pass_and_split() {
    assert_eq!(check("/").unwrap(), Vec::<String>::new());
    assert_eq!(check("/api/v2/x?mobile=9%2F1").unwrap(), ["api", "v2", "x"]);
    assert_eq!(check("/d/a%20b").unwrap(), ["d", "a b"], "needed encodings decode");
    assert_eq!(check("/d/%E0%A4%85").unwrap(), ["d", "अ"]);
}

#[test]
fn ambiguous_paths_are_refused() {
    let cases = [
        ("/a/%2f/b", PathProblem::EncodedSeparator),
        ("/a%2Fb", PathProblem::EncodedSeparator),
        ("/a/%5c", PathProblem::EncodedSeparator),
        ("/a/%2e%2e/b", PathProblem::EncodedUnreserved),
        ("/a/%2E", PathProblem::EncodedUnreserved),
        ("/%61pi", PathProblem::EncodedUnreserved),
        ("/a/%252f", PathProblem::DoubleEncoding),
        ("/a/../b", PathProblem::DotSegment),
        ("/a/./b", PathProblem::DotSegment),
        ("/a/..", PathProblem::DotSegment),
        ("/a//b", PathProblem::EmptySegment),
        ("/a/", PathProblem::EmptySegment),
        ("/a;jsessionid=1/b", PathProblem::Semicolon),
        ("/a/%3b", PathProblem::Semicolon),
        ("/a/%00", PathProblem::ControlOrNul),
        ("/a/%0a", PathProblem::ControlOrNul),
        ("/a/%zz", PathProblem::BadPercentEncoding),
        ("/a/%4", PathProblem::BadPercentEncoding),
        ("/a/%ff", PathProblem::NotUtf8),
        ("/a/%c0%af", PathProblem::NotUtf8),
        ("/a/%ef%bc%8f..%ef%bc%8fb", PathProblem::LookAlike),
        ("/a/%e2%80%a4%e2%80%a4", PathProblem::LookAlike),
        ("/a/%ef%bc%852e", PathProblem::LookAlike),
        ("*", PathProblem::NotOriginForm),
    ];
    for (target, want) in cases {
        assert_eq!(problem(target), want, "{target}");
    }
}

#[test]
fn backslash_is_refused() {
    // `http::Uri` itself refuses a raw backslash; a decoded one is covered above.
    assert_eq!(segment("a\\b"), Err(PathProblem::Backslash));
    assert_eq!(segment("a\0b"), Err(PathProblem::ControlOrNul));
}

#[test]
fn tokens_in_query_strings_are_recognised() {
    for q in ["access_token=abc", "x=1&token=abc", "ACCESS%5fTOKEN=x", "jwt", "q=eyJhbGciOi.eyJzdWIi.sig", "auth[]=x"] {
        assert!(query_carries_token(Some(q)), "{q}");
    }
    for q in ["district_id=1&date=01-06-2021", "mobile=9000000001", "tokens_left=3"] {
        assert!(!query_carries_token(Some(q)), "{q}");
    }
    assert!(!query_carries_token(None));
}

#[test]
fn length_and_header_limits() {
    let long = format!("/{}", "a".repeat(80));
    assert!(matches!(check(&long), Err(GatewayError::UriTooLong)));
    let uri: Uri = "/x".parse().unwrap();
    let mut h = HeaderMap::new();
    for i in 0..3 {
        h.insert(http::HeaderName::from_bytes(format!("h{i}").as_bytes()).unwrap(), "v".parse().unwrap());
    }
    assert!(check_headers(&h, &uri, &limits()).is_ok());
    h.insert("h3", "v".parse().unwrap());
    assert!(matches!(check_headers(&h, &uri, &limits()), Err(GatewayError::HeadersTooLarge)));
    let mut h = HeaderMap::new();
    h.insert("big", "x".repeat(300).parse().unwrap());
    assert!(matches!(check_headers(&h, &uri, &limits()), Err(GatewayError::HeadersTooLarge)));
}

#[test]
fn repeated_single_headers_are_refused() {
    let uri: Uri = "/x".parse().unwrap();
    let roomy = Limits { max_headers: 10, max_header_bytes: 1000, ..limits() };
    for name in &SINGLE {
        let mut h = HeaderMap::new();
        h.append(name.clone(), "a".parse().unwrap());
        assert!(check_headers(&h, &uri, &roomy).is_ok(), "{name} once");
        h.append(name.clone(), "b".parse().unwrap());
        assert!(matches!(check_headers(&h, &uri, &roomy), Err(GatewayError::BadRequest(_))), "{name} twice");
    }
    let mut h = HeaderMap::new();
    h.append("accept", "a/b".parse().unwrap());
    h.append("accept", "c/d".parse().unwrap());
    assert!(check_headers(&h, &uri, &roomy).is_ok(), "list headers may repeat");
}

/// The committed corpus of the `normalize` fuzz target, replayed (what CI runs; fuzzing is not).
#[test]
fn fuzz_corpus_replays_clean() {
    let files = crate::redact::fuzzing::replay("normalize", super::fuzzing::check);
    assert!(files >= 20, "only {files} corpus files");
}

#[test]
fn the_fuzz_invariant_holds_on_known_targets() {
    for target in ["/", "/a/b", "/d/a%20b", "/d/%E0%A4%85?x=1", "/a/%2f", "/a/../b", "/a//b", "http://h/a", "*"] {
        super::fuzzing::check(target.as_bytes()).unwrap_or_else(|e| panic!("{target}: {e}"));
    }
}
