use super::*;

#[test]
fn subjects_normalize() {
    assert_eq!(normalize_subject("cn=icmr,O= ICMR "), "CN=icmr, O=ICMR");
    assert_eq!(normalize_subject("CN=icmr, O=ICMR"), "CN=icmr, O=ICMR");
}

#[test]
fn ist_day_boundaries() {
    // 2026-11-23T18:29:59.999Z is 23:59:59.999 IST.
    let before = 1_795_458_599_999;
    assert_eq!(until_ist_midnight(before), Duration::from_millis(1));
    assert_eq!(ist_day(before) + 1, ist_day(before + 1));
}
