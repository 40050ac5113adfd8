//! Integration tests of the scanner: property tests that every parser of untrusted bytes
//! returns (a result or an error) on any input, never panics, and stays within its limits.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod props;
