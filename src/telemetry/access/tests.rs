use tracing_subscriber::layer::SubscriberExt;

use super::{ACCESS_TARGET, Fast};
use crate::telemetry::sink::tests::Out;

/// An access line with every kind of field, under `target` (a literal: tracing needs a constant).
macro_rules! line {
    ($target:expr, $route:expr) => {
        tracing::info!(
            target: $target,
            request_id = "b4dd10c7-9190-4bfd-aece-c08ef371af97",
            route = $route,
            method = "GET",
            status = 200u16,
            caller = "anonymous",
            latency_ms = 0.438,
            ok = true,
            offset = -3i64,
        )
    };
}

fn access_line(route: &str) {
    line!(ACCESS_TARGET, route);
}

/// The same event through tracing's own formatter (target changed so `Fast` passes it on).
fn reference_line(route: &str) {
    line!("reference", route);
}

/// Both lines with the timestamp and target cut off.
fn body(line: &str, target: &str) -> String {
    let (ts, rest) = line.split_once(' ').unwrap();
    assert!(ts.len() == 27 && ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "timestamp {ts}");
    assert!(crate::clock::parse_rfc3339_ms(ts).is_some(), "timestamp {ts}");
    rest.replacen(target, "T", 1)
}

#[test]
fn text_lines_look_like_tracing_s_own_and_escape_control_characters() {
    let out = Out::default();
    let writer = out.clone();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .map_event_format(Fast::text);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        access_line("bench-pass");
        reference_line("bench-pass");
        access_line("evil\u{1b}[31m\"route\\\n");
        reference_line("evil\u{1b}[31m\"route\\\n");
    });
    let lines = out.lines();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(body(&lines[0], ACCESS_TARGET), body(&lines[1], "reference"));
    assert_eq!(body(&lines[2], ACCESS_TARGET), body(&lines[3], "reference"));
    assert!(lines[0].contains(" INFO otpgate::access: request_id=\"b4dd10c7"), "{}", lines[0]);
    assert!(lines[2].contains(r#"route="evil\u{1b}[31m\"route\\\n""#), "{}", lines[2]);
    assert!(!lines[2].contains('\u{1b}'));
}

#[test]
fn json_lines_carry_the_same_fields_as_tracing_s_and_parse() {
    let out = Out::default();
    let writer = out.clone();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(move || writer.clone())
        .json()
        .flatten_event(true)
        .map_event_format(Fast::json);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        access_line("evil\u{1b}\"route\\\n");
        reference_line("evil\u{1b}\"route\\\n");
    });
    let lines = out.lines();
    let mut ours: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let mut theirs: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(ours["target"], ACCESS_TARGET);
    assert_eq!(ours["route"], "evil\u{1b}\"route\\\n");
    for v in [&mut ours, &mut theirs] {
        let ts = v["timestamp"].as_str().unwrap();
        assert!(crate::clock::parse_rfc3339_ms(ts).is_some(), "timestamp {ts}");
        v["timestamp"] = "T".into();
        v["target"] = "T".into();
    }
    assert_eq!(ours, theirs);
    // Field order as tracing writes it: timestamp and level first, target last.
    assert!(lines[0].starts_with("{\"timestamp\":\"") && lines[0].contains("\",\"level\":\"INFO\",\"request_id\":"));
    assert!(lines[0].ends_with(",\"target\":\"otpgate::access\"}"), "{}", lines[0]);
}
