//! End-to-end tests: the real `tollgate` binary, started on port 0, driven over real HTTP by
//! reqwest and by the official OpenAI and Anthropic Python SDKs, in front of the in-process
//! mock provider.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod admins;
mod audit;
mod budgets;
mod cli;
mod incident;
mod prompts;
mod providers;
mod remote;
mod report;
mod review;
mod scaleout;
mod scan;
mod sdk;
mod serve;
mod server;
mod traces;
