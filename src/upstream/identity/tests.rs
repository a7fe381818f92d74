use super::*;
use crate::upstream::assertion::verify_assertion;

#[test]
fn cached_until_close_to_expiry_and_verifiable() {
    let a = Assertions::new(b"k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y!");
    let now = 2_000_000_000;
    let ttl = Duration::from_secs(300);
    let t1 = a.citizen("s1", "9000000001", now, ttl).unwrap();
    assert_eq!(a.citizen("s1", "9000000001", now + 200, ttl).unwrap(), t1, "reused");
    let t2 = a.citizen("s1", "9000000001", now + 241, ttl).unwrap();
    assert_ne!(t1, t2, "re-signed when under a minute is left");
    a.forget("s1");
    assert_ne!(a.citizen("s1", "9000000001", now + 242, ttl).unwrap(), t2);
    let claims = verify_assertion(b"k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y!", &t1);
    // Verification uses the wall clock; an assertion from 2033 is valid today.
    assert_eq!(claims.unwrap().sub, "9000000001");
}
