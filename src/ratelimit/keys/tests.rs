use super::{ip_key, mobile_in_body};

#[test]
fn ipv6_clients_are_keyed_by_their_64() {
    let k = |s: &str| ip_key(s.parse().expect("address"));
    assert_eq!(k("2001:db8:1:2:aaaa::1"), k("2001:db8:1:2:ffff:1:2:3"), "same /64");
    assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"), "another /64");
    assert_eq!(k("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
    assert_eq!(k("203.0.113.7"), "203.0.113.7");
    assert_eq!(k("::ffff:203.0.113.7"), "203.0.113.7", "v4-mapped is the v4 address");
}

#[test]
fn the_mobile_of_a_body_is_canonical() {
    assert_eq!(mobile_in_body(br#"{"mobile":"+919000000001"}"#).as_deref(), Some("9000000001"));
    assert_eq!(mobile_in_body(br#"{"mobile":9000000001}"#).as_deref(), Some("9000000001"));
    assert_eq!(mobile_in_body(br#"{"mobile":{"a":1}}"#), None);
    assert_eq!(mobile_in_body(br#"{"mobile":"1","mobile":"2"}"#), None, "duplicate keys are not read");
    assert_eq!(mobile_in_body(b"mobile=9000000001"), None);
}
