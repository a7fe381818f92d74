//! Fuzz target `token`: the invariant is `otpgate::auth::jwt::fuzzing` (its module documentation says
//! what the input means and what is checked).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use otpgate::auth::jwt::fuzzing::Fixture;

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
