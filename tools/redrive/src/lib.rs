//! `redrive`: the events parked in `FailureQueue`, listed, and on request sent back to the
//! function they failed in. `parked` reads a message (pure), `run` is the use case against two
//! small ports, `aws` the SQS and Lambda adapters.

pub mod aws;
pub mod parked;
pub mod run;
