//! Check 1: the user and the role.

use crate::app::doctor::context::Subject;
use crate::app::doctor::report::{Check, CheckId};
use crate::config::Config;

/// Check 1: the user and the role.
pub(crate) fn check_user(config: &Config, subject: &Subject) -> Check {
    let role = &subject.facts.role;
    let permission_set = config
        .users_role
        .permission_set()
        .map(|set| format!(", the role of permission set {set}"))
        .unwrap_or_default();
    let found = format!(
        "{} is a valid role-session name; the users' role is {} ({}{permission_set}); \
         their aws:userid is {}",
        subject.name, role.name, role.id, subject.user_id
    );
    match &config.session_role_id {
        Some(configured) if configured.as_str() != role.id.as_str() => Check::fail(
            CheckId::User,
            format!(
                "{found}; but SESSION_ROLE_ID is {configured} (the role was re-created), so the functions write user-id tags no session can match"
            ),
            format!(
                "set SESSION_ROLE_ID (template UsersRoleId) to {}, or leave it empty to have it resolved",
                role.id
            ),
        ),
        _ => Check::pass(CheckId::User, found),
    }
}
