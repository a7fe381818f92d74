//! Fuzz target `policy`: the invariant is `otpgate::policy::fuzzing` (its module documentation says
//! what the input means and what is checked).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = otpgate::policy::fuzzing::check(data) {
        panic!("{violation}");
    }
});
