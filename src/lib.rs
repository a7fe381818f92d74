//! otpgate: an OTP-gated personal-data API gateway.
//!
//! The request path is one fixed sequence of typed stages (see [`pipeline`]); every other module
//! owns one piece of that sequence or the state it reads:
//!
//! - [`config`]: policy files → raw structs with file/field provenance;
//! - [`policy`]: the compiled, immutable policy and its route trie;
//! - [`server`]: listeners, TLS, connection limits, draining, the admin listener;
//! - [`auth`] and [`authz`]: who is calling, and the `Permit` that says they may;
//! - [`upstream`]: header hygiene and the pooled client;
//! - [`demo`]: the synthetic CoWIN-shaped registry.
#![forbid(unsafe_code)]

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
