//! otpgate: an OTP-gated personal-data API gateway.
//!
//! The request path is one fixed sequence of typed stages (see [`pipeline`]); every other module
//! owns one piece of that sequence or the state it reads.
#![forbid(unsafe_code)]

pub mod demo;
