//! End-to-end tests of the real `otpgate` binary. One test binary, one module per area.

// These tests drive a real process over real sockets and measure real time; the clock and lock
// rules of .clippy.toml are for the gateway's own code.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod harness;

mod abuse;
mod adversarial;
mod booking;
mod citizen_flow;
mod citizen_ownership;
mod citizen_tokens;
mod cowin_client;
mod faults;
mod foundation;
mod foundation_routing;
mod monitoring;
mod operator;
mod partner;
mod ratelimit;
mod redaction;
mod resumption;
mod scaleout;
mod telemetry;
mod trail;
mod waiting_room;
