//! Fuzz target for the streaming redaction walker: the input is a JSON document (or not); its
//! first byte picks a chunk split. Invariant (see `otpgate::redact::fuzzing`): split and unsplit
//! runs agree, `Ok` only for valid JSON and always with valid JSON output, dry runs pass the input.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use otpgate::redact::fuzzing::Fixture;

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let fixture = FIXTURE.get_or_init(|| match Fixture::new() {
        Ok(fixture) => fixture,
        Err(e) => panic!("fixture: {e}"),
    });
    if let Err(violation) = fixture.check(data) {
        panic!("{violation}");
    }
});
