//! Fuzz target `params`: the invariant is `otpgate::pipeline::params::fuzzing` (its module documentation says
//! what the input means and what is checked).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = otpgate::pipeline::params::fuzzing::check(data) {
        panic!("{violation}");
    }
});
