//! ssm-session-owner: let each federated user open Session Manager sessions on the EC2
//! instances they launched, and on no other.
//!
//! The domain modules (`session_name`, `owner_tag`, `event`) are pure; `ports` are the small
//! traits the functions depend on; `aws` implements them on the SDK clients.

pub mod aws;
pub mod capacity;
pub mod config;
pub mod error;
pub mod event;
pub mod lambda;
pub mod metrics;
pub mod outcome;
pub mod owner_tag;
pub mod owner_tagger;
pub mod policy_store;
pub mod ports;
pub mod role_id;
pub mod samples;
pub mod session_name;
pub mod session_policies;
pub mod session_policy;
pub mod shard_plan;

pub use config::Config;
pub use error::Error;
pub use outcome::{Outcome, Status};
