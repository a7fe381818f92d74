//! End-to-end tests of the real `otpgate` binary. One test binary, one module per area.

mod harness;

mod foundation;
mod foundation_routing;
