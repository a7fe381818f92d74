use super::*;

fn router(templates: &[(&str, &[Method])]) -> Router {
    let mut r = Router::default();
    for (i, (t, m)) in templates.iter().enumerate() {
        r.insert(&parse_template(t).unwrap(), m, i).unwrap();
    }
    r
}

#[test]
fn literals_beat_params_with_backtracking() {
    let r = router(&[("/a/{x}/c", &[Method::GET]), ("/a/b", &[Method::GET]), ("/a/b/d", &[Method::POST])]);
    assert_eq!(r.find(&["a", "b"], &Method::GET), Match::Found(1, vec![]));
    assert_eq!(r.find(&["a", "b", "c"], &Method::GET), Match::Found(0, vec!["b"]));
    assert_eq!(r.find(&["a", "z", "c"], &Method::GET), Match::Found(0, vec!["z"]));
    assert_eq!(r.find(&["a", "b", "d"], &Method::GET), Match::MethodNotAllowed(vec![Method::POST]));
    assert_eq!(r.find(&["a"], &Method::GET), Match::NotFound);
    assert_eq!(r.find(&["a", "b", "c", "d"], &Method::GET), Match::NotFound);
}

#[test]
fn same_shape_same_method_conflicts() {
    let mut r = Router::default();
    r.insert(&parse_template("/d/{a}").unwrap(), &[Method::GET], 0).unwrap();
    assert_eq!(r.insert(&parse_template("/d/{b}").unwrap(), &[Method::GET, Method::POST], 1), Err(0));
    r.insert(&parse_template("/d/{b}").unwrap(), &[Method::POST], 2).unwrap();
    assert_eq!(r.find(&["d", "7"], &Method::POST), Match::Found(2, vec!["7"]));
}

#[test]
fn template_syntax() {
    assert!(parse_template("/x/{state_id}").is_ok());
    assert!(parse_template("/").unwrap().is_empty());
    for bad in ["x", "/a//b", "/a/", "/a/../b", "/{Bad}", "/{a}/{a}", "/a;b", "/a%2fb"] {
        assert!(parse_template(bad).is_err(), "{bad}");
    }
}
