//! End-to-end tests of the real `otpgate` binary. One test binary, one module per area.

mod harness;

mod citizen_flow;
mod citizen_ownership;
mod citizen_tokens;
mod foundation;
mod foundation_routing;
mod partner;
mod ratelimit;
mod redaction;
mod telemetry;
mod trail;
