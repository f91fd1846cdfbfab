//! The pure domain: no SDK types, no Lambda runtime. Events in, plans and decisions out.
//!
//! - `session_name`, `ids`: validated usernames and typed identifiers;
//! - `events`: the EventBridge events the product reads, and which function handles each;
//! - `ownership`: who owns a launched instance, and the tag it needs;
//! - `statements`: the per-user session-rights statements, their sizes, and the inline plan;
//! - `shard_packing`: statements packed into managed-policy shards;
//! - `evaluation`: the product's own IAM evaluation of identity policies (the doctor);
//! - `reason`, `outcome`: why something was left alone, and what handling an event did.

pub mod evaluation;
pub mod events;
pub mod ids;
pub mod outcome;
pub mod ownership;
pub mod reason;
pub mod session_name;
pub mod shard_packing;
pub mod statements;
