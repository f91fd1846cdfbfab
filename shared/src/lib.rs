//! ssm-session-owner: let each federated user open Session Manager sessions on the EC2
//! instances they launched, and on no other.
//!
//! Layers, and the only direction the arrows point:
//!
//! ```text
//! functions/*, tools/*  ──▶  edge  ──▶  app  ──▶  ports  ──▶  domain
//!                              │          │                      ▲
//!                              └──▶ aws ──┴──▶ (implements ports)┘
//! ```
//!
//! - [`domain`]: pure. Events in, decisions and plans out; no SDK types, no Lambda runtime.
//! - [`ports`]: every small trait the use cases depend on, the policy store's included.
//! - [`app`]: the use cases, written against the ports.
//! - [`aws`]: one adapter module per service, the SDK set-up and the call counter.
//! - [`edge`]: the Lambda finish step and the metric line.
//! - [`config`] and [`error`] are leaves every layer may use.

#[cfg(test)]
#[macro_use]
mod fixtures;
pub mod app;
pub mod aws;
pub mod config;
pub mod domain;
pub mod edge;
pub mod error;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod ports;

pub use config::Config;
pub use domain::outcome::{Outcome, Status};
pub use error::Error;
