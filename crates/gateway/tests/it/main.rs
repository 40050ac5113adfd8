//! Integration tests of the gateway: the real router on 127.0.0.1, a real SQLite store, and
//! the in-process mock provider from `tollgate-testkit`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod admin;
mod admin_governance;
mod admission_redis;
mod audit;
mod auth;
mod bad_input;
mod budgets;
mod budgets_redis;
mod completions;
mod datasets;
mod guards;
mod harness;
mod killswitch;
mod limits;
mod policy;
mod prompts;
mod resilience;
mod review;
mod rotation;
mod routing;
mod secret_servers;
mod secrets_aws;
mod secrets_gateway;
mod secrets_vault;
mod stream_guards;
mod streaming;
mod telemetry;
