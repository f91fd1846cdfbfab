//! Test support for the whole workspace, split by concern: a real local AWS (`moto`: moto in
//! server mode on a free loopback port, stopped on drop), counted clients (`counted`), seeding
//! and reading back moto (`seed`, `inspect`), the shipped templates and the project's scripts
//! (`template`), the sample events (`events`), the users (`users`) and the command-line tools
//! (`cli`). Everything is re-exported at the top, so a test says `testkit::Moto`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: a set-up that fails panics the test that asked for it"
)]

pub mod cli;
pub mod counted;
pub mod events;
pub mod fault_proxy;
pub mod inspect;
pub mod moto;
pub mod seed;
pub mod template;
pub mod users;

pub use cli::*;
pub use counted::*;
pub use events::*;
pub use inspect::*;
pub use moto::*;
pub use seed::*;
pub use template::*;
pub use users::*;
