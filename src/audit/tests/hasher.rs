//! `Hasher`: the exact token definition, canonical spellings, domain separation, no raw digits.

use hmac::{Hmac, Mac};
use proptest::prelude::*;
use sha2::Sha256;

use super::super::Hasher;

fn reference(key: &[u8], message: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(message.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

#[test]
fn a_mobile_token_is_the_keyed_hmac_of_the_canonical_number() {
    let h = Hasher::new(b"audit key");
    let expected = format!("m:{}", reference(b"audit key", "mobile:9000000001"));
    for spelling in ["9000000001", "+919000000001", "919000000001", "09000000001", " 9000000001 "] {
        assert_eq!(h.mobile(spelling), expected, "{spelling}");
    }
    assert_eq!(h.record("ABC123"), format!("r:{}", reference(b"audit key", "record:ABC123")));
}

#[test]
fn tokens_depend_on_key_and_kind() {
    let (a, b) = (Hasher::new(b"key a"), Hasher::new(b"key b"));
    assert_ne!(a.mobile("9000000001"), b.mobile("9000000001"));
    assert_ne!(a.mobile("9000000001"), a.mobile("9000000002"));
    assert_ne!(a.mobile("9000000001")[2..], a.record("9000000001")[2..]);
    assert!(!format!("{a:?}").contains("key a"));
}

#[test]
fn an_invalid_number_is_still_hashed_not_echoed() {
    let h = Hasher::new(b"k");
    let t = h.mobile("12345");
    assert!(t.starts_with("m:") && !t.contains("12345"), "{t}");
}

proptest! {
    #[test]
    fn a_token_never_shows_the_number(n in 6_000_000_000u64..=9_999_999_999, key in proptest::collection::vec(any::<u8>(), 0..64)) {
        let h = Hasher::new(&key);
        let digits = n.to_string();
        for t in [h.mobile(&digits), h.mobile(&format!("+91{digits}")), h.record(&digits)] {
            prop_assert_eq!(t.len(), 34);
            prop_assert!(t.starts_with("m:") || t.starts_with("r:"));
            prop_assert!(t[2..].bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
            prop_assert!(!t.contains(&digits), "{} in {}", digits, t);
        }
    }
}
