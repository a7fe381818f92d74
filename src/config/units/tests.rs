use super::*;

#[test]
fn sizes() {
    assert_eq!(parse_bytes("64KiB"), Ok(65_536));
    assert_eq!(parse_bytes("1MiB"), Ok(1_048_576));
    assert_eq!(parse_bytes("10KB"), Ok(10_000));
    assert_eq!(parse_bytes("512"), Ok(512));
    assert!(parse_bytes("12 parsecs").is_err());
    assert!(parse_bytes("KiB").is_err());
    assert!(parse_bytes("99999999999999999999GiB").is_err());
}

#[test]
fn durations() {
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
    assert_eq!(parse_duration("3m"), Ok(Duration::from_secs(180)));
    assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
    assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
    assert!(parse_duration("10").is_err(), "a unit is required");
    assert!(parse_duration("10 fortnights").is_err());
}
