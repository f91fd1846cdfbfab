//! The pure domain: no SDK types, no Lambda runtime. Events in, plans and decisions out.
//!
//! - `session_name`, `ids`: validated usernames and typed identifiers;
//! - `events`: the EventBridge events the product reads, and which function handles each;
//! - `ownership`: who owns a launched instance, and the tag it needs;
//! - `statements`: the per-user session-rights statements and their sizes;
//! - `inline_plan`: the inline store's plan (one policy per user);
//! - `shard_packing`: statements packed into managed-policy shards;
//! - `capacity`: a grant that does not fit, and headroom in users;
//! - `session_iam`: the IAM vocabulary of Session Manager (actions, tags, ARNs, requests);
//! - `evaluation`: the product's own IAM evaluation of identity policies (the doctor);
//! - `sharing`: an owner's share request, the guest slots and the expiry it leads to;
//! - `trust`: who may assume the users' role with a session name of their choosing;
//! - `reason`, `outcome`: why something was left alone, and what handling an event did.

pub mod capacity;
pub mod evaluation;
pub mod events;
pub mod ids;
pub mod inline_plan;
pub mod outcome;
pub mod ownership;
pub mod reason;
pub mod session_documents;
pub mod session_iam;
pub mod session_name;
pub mod settings;
pub mod shard_packing;
pub mod sharing;
pub mod statements;
pub mod trails;
pub mod trust;
