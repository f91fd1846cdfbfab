//! One file per check, in the order the diagnosis prints them (`CheckId`): each reads what it
//! needs beyond the shared context and returns its line.

pub(crate) mod end_user_policy;
pub(crate) mod instance;
pub(crate) mod launch_events;
pub(crate) mod logging;
pub(crate) mod ownership;
pub(crate) mod reachability;
pub(crate) mod rights;
pub(crate) mod run_as;
pub(crate) mod session_kinds;
pub(crate) mod simulator;
pub(crate) mod trust;
pub(crate) mod user;
