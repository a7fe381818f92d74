use super::*;

#[test]
fn mobile_never_prints_in_full() {
    let m = Mobile::new("9000000001".into());
    assert_eq!(format!("{m}"), "********01");
    assert_eq!(format!("{m:?}"), "********01");
    let c = Caller::Citizen(Citizen { session_id: "s".into(), mobile: m });
    assert!(!format!("{c:?}").contains("9000000001"));
}

#[test]
fn bearer_parsing() {
    let h = |vals: &[&str]| {
        let mut m = HeaderMap::new();
        for v in vals {
            m.append(header::AUTHORIZATION, v.parse().unwrap());
        }
        m
    };
    assert_eq!(bearer_token(&h(&[])).unwrap(), None);
    assert_eq!(bearer_token(&h(&["Bearer abc"])).unwrap(), Some("abc"));
    assert_eq!(bearer_token(&h(&["bearer abc"])).unwrap(), Some("abc"));
    for bad in [&["Basic abc"][..], &["Bearer"], &["Bearer "], &["Bearer a b"], &["Bearer a", "Bearer b"]] {
        assert!(bearer_token(&h(bad)).is_err(), "{bad:?}");
    }
}
