//! Fuzz target for the streaming redaction walker: the input is a JSON document (or not); its
//! first byte picks a chunk split. Invariant (see `otpgate::redact::fuzzing`): split and unsplit
//! runs agree, `Ok` only for valid JSON and always with valid JSON output, dry runs pass the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = otpgate::redact::fuzzing::check(data) {
        panic!("{violation}");
    }
});
