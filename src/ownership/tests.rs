//! Tests of the ownership checks: one file per side, plus property tests.

mod appointments;
mod helpers;
mod keys;
mod mobile_strict;
mod props;
mod request_body;
mod request_path;
mod request_query;
mod response;
