use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn v4_and_v6_membership() {
    let c: Cidr = "10.1.0.0/16".parse().unwrap();
    assert!(c.contains(ip("10.1.255.3")));
    assert!(!c.contains(ip("10.2.0.1")));
    assert!(c.contains(ip("::ffff:10.1.2.3")), "mapped v4");
    let c: Cidr = "127.0.0.1".parse().unwrap();
    assert!(c.contains(ip("127.0.0.1")) && !c.contains(ip("127.0.0.2")));
    let c: Cidr = "2001:db8::/33".parse().unwrap();
    assert!(c.contains(ip("2001:db8:7fff::1")));
    assert!(!c.contains(ip("2001:db8:8000::1")));
    let all: Cidr = "0.0.0.0/0".parse().unwrap();
    assert!(all.contains(ip("8.8.8.8")) && !all.contains(ip("::1")));
}

#[test]
fn rejects_bad_blocks() {
    for bad in ["10.0.0.1/16", "10.0.0.0/33", "nope", "10.0.0.0/", "::1/129"] {
        assert!(bad.parse::<Cidr>().is_err(), "{bad}");
    }
}
