//! otpgate: an OTP-gated personal-data API gateway.
//!
//! The request path is one fixed sequence of typed phases (see [`pipeline`]); every other module
//! owns one piece of that sequence or the state it reads. ARCHITECTURE.md (in the repository) is
//! the map: the stage order, the one-way order of the modules (checked by `tests`), where state
//! lives and the invariants.
#![forbid(unsafe_code)]
// No panics on request paths: `unwrap`/`expect` only in tests (see .clippy.toml).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod audit;
pub mod auth;
pub mod authz;
pub mod body;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod demo;
pub mod devcerts;
pub mod error;
pub mod metrics;
pub mod ownership;
pub mod pipeline;
pub mod policy;
pub mod ratelimit;
pub mod redact;
pub mod runtime;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod upstream;
pub mod waitroom;

#[cfg(test)]
mod tests;
