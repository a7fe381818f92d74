//! Content decoding: round trips for every supported encoding at any chunking, refusal of the
//! rest, truncation and corruption, the bomb guard, and decode → redact end to end.

use std::io::Write;

use flate2::Compression;
use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};

use super::*;

fn sample() -> Vec<u8> {
    let rec = r#"{"name":"Asha","photo_id_number":"123456789012","mobile":"9000000001","dose1_date":"01-06-2021"}"#;
    format!("{{\"beneficiaries\":[{}],\"ttl\":5}}", vec![rec; 2000].join(",")).into_bytes()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).expect("compress");
    e.finish().expect("compress")
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).expect("compress");
    e.finish().expect("compress")
}

fn raw_deflate(data: &[u8]) -> Vec<u8> {
    let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).expect("compress");
    e.finish().expect("compress")
}

/// A valid brotli stream of uncompressed meta-blocks (RFC 7932 §9.2, ISUNCOMPRESSED).
fn brotli_stored(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut n) = (0u64, 0u32);
    let mut bits = |out: &mut Vec<u8>, v: u64, width: u32, align: bool| {
        acc |= v << n;
        n += width;
        if align {
            n = n.div_ceil(8) * 8;
        }
        while n >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            n -= 8;
        }
    };
    bits(&mut out, 0, 1, false); // WBITS = 16
    for block in data.chunks(30_000) {
        // ISLAST = 0, MNIBBLES = 4, MLEN - 1, ISUNCOMPRESSED = 1, then byte-aligned raw bytes.
        bits(&mut out, ((block.len() as u64 - 1) << 3) | (1 << 19), 20, true);
        out.extend_from_slice(block);
    }
    bits(&mut out, 0b11, 2, true); // ISLAST, ISLASTEMPTY
    out
}

/// "The quick brown fox jumps over the lazy dog" × 4096: 58 bytes of real brotli expanding to
/// 176,128 (from the brotli-decompressor test suite).
const QUICKFOX: [u8; 58] = [
    0x5B, 0xFF, 0xAF, 0x02, 0xC0, 0x22, 0x79, 0x5C, 0xFB, 0x5A, 0x8C, 0x42, 0x3B, 0xF4, 0x25, 0x55, 0x19, 0x5A, 0x92,
    0x99, 0xB1, 0x35, 0xC8, 0x19, 0x9E, 0x9E, 0x0A, 0x7B, 0x4B, 0x90, 0xB9, 0x3C, 0x98, 0xC8, 0x09, 0x40, 0xF3, 0xE6,
    0xD9, 0x4D, 0xE4, 0x6D, 0x65, 0x1B, 0x27, 0x87, 0x13, 0x5F, 0xA6, 0xE9, 0x30, 0x96, 0x7B, 0x3C, 0x15, 0xD8, 0x53,
    0x1C,
];

/// Decode `encoded` fed in chunks of `n`; also checks every piece is bounded.
fn decode_all(encoding: Option<&str>, limits: DecodeLimits, encoded: &[u8], n: usize) -> Result<Vec<u8>, RedactError> {
    let mut d = decoder(encoding, limits)?;
    let mut out = Vec::new();
    let mut sink = |piece: &[u8]| {
        let identity = encoding.is_none_or(|e| matches!(e.trim().to_ascii_lowercase().as_str(), "" | "identity"));
        assert!(piece.len() <= 64 << 10 || identity, "piece of {}", piece.len());
        out.extend_from_slice(piece);
        Ok(())
    };
    for chunk in encoded.chunks(n.max(1)) {
        d.feed(chunk, &mut sink)?;
    }
    d.finish(&mut sink)?;
    Ok(out)
}

#[test]
fn every_encoding_round_trips_at_any_chunking() {
    let plain = sample();
    let cases: Vec<(Option<&str>, Vec<u8>)> = vec![
        (None, plain.clone()),
        (Some(""), plain.clone()),
        (Some(" Identity "), plain.clone()),
        (Some("gzip"), gzip(&plain)),
        (Some("X-GZIP"), gzip(&plain)),
        (Some("deflate"), zlib(&plain)),
        (Some("deflate"), raw_deflate(&plain)),
        (Some("br"), brotli_stored(&plain)),
    ];
    for (enc, encoded) in &cases {
        for n in [1, 2, 7, 4096, usize::MAX] {
            let got = decode_all(*enc, DecodeLimits::default(), encoded, n);
            assert_eq!(got.as_deref(), Ok(plain.as_slice()), "{enc:?} in chunks of {n}");
        }
    }
    assert_eq!(decode_all(Some("br"), DecodeLimits::default(), &brotli_stored(b""), 1), Ok(Vec::new()));
}

#[test]
fn real_brotli_vector_decodes() {
    let out = decode_all(Some("br"), DecodeLimits::default(), &QUICKFOX, 5).expect("decodes");
    assert_eq!(out.len(), 176_128);
    assert!(out.chunks(43).all(|c| b"The quick brown fox jumps over the lazy dog".starts_with(c)));
}

#[test]
fn unsupported_and_stacked_encodings_are_refused() {
    for enc in ["compress", "zstd", "gzip, br", "gzip,gzip", "identity, gzip", "br;q=1", "x-compress", "*"] {
        assert_eq!(decoder(Some(enc), DecodeLimits::default()).map(|_| ()), Err(RedactError::UnsupportedEncoding));
    }
}

#[test]
fn truncated_corrupt_and_trailing_bodies_fail() {
    let plain = sample();
    let lim = DecodeLimits::default();
    for (enc, encoded) in [
        ("gzip", gzip(&plain)),
        ("deflate", zlib(&plain)),
        ("deflate", raw_deflate(&plain)),
        ("br", brotli_stored(&plain)),
    ] {
        for cut in [0, 1, 2, 10, encoded.len() / 2, encoded.len() - 1] {
            assert!(decode_all(Some(enc), lim, &encoded[..cut], 1000).is_err(), "{enc} cut at {cut}");
        }
        let mut trailing = encoded.clone();
        trailing.extend_from_slice(b"{}");
        assert_eq!(decode_all(Some(enc), lim, &trailing, 1000), Err(RedactError::Corrupt), "{enc} trailing");
    }
    // A flipped byte inside the gzip payload: the CRC (or the inflater) catches it.
    let mut bad = gzip(&plain);
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    assert!(decode_all(Some("gzip"), lim, &bad, 1000).is_err());
    let mut bad_crc = gzip(&plain);
    let crc_at = bad_crc.len() - 8;
    bad_crc[crc_at] ^= 1;
    assert_eq!(decode_all(Some("gzip"), lim, &bad_crc, 1000), Err(RedactError::Corrupt));
    assert!(decode_all(Some("br"), lim, b"\xff\xff\xff\xff", 1).is_err());
}

#[test]
fn bomb_guard_stops_high_expansion() {
    let zeros = vec![b' '; 16 << 20];
    let bomb = gzip(&zeros);
    assert!(bomb.len() < 64 << 10);
    assert_eq!(decode_all(Some("gzip"), DecodeLimits::default(), &bomb, 4096), Err(RedactError::TooLarge));
    let lim = DecodeLimits { max_ratio: 2000, ratio_grace: 0, max_output: 1 << 30 };
    assert_eq!(decode_all(Some("br"), lim, &QUICKFOX, 58).map(|o| o.len()), Err(RedactError::TooLarge));
    let lim = DecodeLimits { max_ratio: 10_000, ratio_grace: 0, max_output: 1 << 30 };
    assert_eq!(decode_all(Some("br"), lim, &QUICKFOX, 58).map(|o| o.len()), Ok(176_128));
    let lim = DecodeLimits { max_output: 100, ..DecodeLimits::default() };
    assert_eq!(decode_all(None, lim, &sample(), 50), Err(RedactError::TooLarge));
    assert_eq!(decode_all(Some("deflate"), lim, &zlib(&sample()), 50), Err(RedactError::TooLarge));
}

#[test]
fn decode_then_redact_equals_redacting_the_plain_body() {
    let p = profile(CITIZEN);
    let plain = sample();
    let (want, _) = redact(&p, &plain).expect("ok");
    for (enc, encoded) in [("gzip", gzip(&plain)), ("br", brotli_stored(&plain)), ("deflate", zlib(&plain))] {
        let mut d = decoder(Some(enc), DecodeLimits::default()).expect("supported");
        let mut r = Redactor::new(&p, Limits::default());
        let mut out = Vec::new();
        for chunk in encoded.chunks(1500) {
            d.feed(chunk, |piece| r.feed(piece, &mut out)).expect("feed");
        }
        d.finish(|piece| r.feed(piece, &mut out)).expect("finish decoder");
        r.finish(&mut out).expect("finish redactor");
        assert_eq!(out, want, "{enc}");
    }
}
