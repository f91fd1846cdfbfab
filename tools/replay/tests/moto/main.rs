//! Every test of `replay` that starts moto, in one binary (the SDK is linked once). `cli` was
//! `replay_cli.rs`, `faults` was `faults.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "a test fails by panicking, and reads as one scenario"
)]

mod cli;
mod faults;
