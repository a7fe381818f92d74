//! Fuzz target `normalize`: the invariant is `otpgate::pipeline::normalize::fuzzing` (its module documentation says
//! what the input means and what is checked).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = otpgate::pipeline::normalize::fuzzing::check(data) {
        panic!("{violation}");
    }
});
