use http::{HeaderMap, HeaderValue};

use super::{incoming, start};

fn with(traceparent: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("traceparent", HeaderValue::from_str(traceparent).expect("header value"));
    h
}

#[test]
fn traceparent_is_continued_only_when_valid() {
    let good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let (_, t) = start(&with(good), &http::Method::GET);
    assert_eq!(t.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_ne!(t.span_id, "b7ad6b7169203331", "a new span for our hop");
    for bad in [
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
        "garbage",
    ] {
        let (_, t) = start(&with(bad), &http::Method::GET);
        assert_ne!(t.trace_id, "0af7651916cd43dd8448eb211c80319c", "{bad}");
        assert_eq!(t.trace_id.len(), 32);
    }
    let (_, ours) = start(&HeaderMap::new(), &http::Method::GET);
    assert!(incoming(&with(&ours.header())).is_some(), "our own header is valid: {}", ours.header());
}

#[test]
fn ids_are_lowercase_hex_as_the_hex_crate_writes_them() {
    for bytes in [&[0u8, 1, 0x7f, 0x80, 0xab, 0xff][..], &[][..], &[0x0f; 16][..]] {
        assert_eq!(super::hex(bytes), hex::encode(bytes));
    }
}
