//! Every test of the shared crate that starts moto, in one binary (the SDK is linked once). Each
//! module was a test file of its own (`<name>_moto.rs`; `session_ending` was
//! `session_ending_mocked.rs`); `common` holds what they share.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "a test fails by panicking, and reads as one scenario"
)]

mod common;
mod hybrid_nodes;
mod identity_center;
mod managed_store;
mod owner_tagging;
mod regions;
mod session_ending;
mod session_policies;
mod sharing;
mod tag_sweep;
