use std::time::Duration;

use super::*;

#[test]
fn formats_known_instants() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    assert_eq!(rfc3339(1_795_403_952_345), "2026-11-23T03:19:12.345Z");
}

#[test]
fn parses_what_it_formats_and_offsets() {
    assert_eq!(parse_rfc3339_ms("2026-11-23T03:19:12.345Z"), Some(1_795_403_952_345));
    assert_eq!(parse_rfc3339_ms("2026-11-23T08:49:12.345+05:30"), Some(1_795_403_952_345));
    assert_eq!(parse_rfc3339_ms("yesterday"), None);
}

#[test]
fn a_manual_clock_moves_only_when_told() {
    let clock = Clock::manual(1_000);
    assert_eq!(clock.now_ms(), 1_000);
    clock.advance(Duration::from_secs(2));
    assert_eq!(clock.now_ms(), 3_000);
    assert!(Clock::system().now_ms() > 1_700_000_000_000);
}
