//! Check 1: the user and the role.

use crate::app::doctor::context::Subject;
use crate::app::doctor::report::{Check, CheckId};
use crate::config::Config;

/// What check 1 found: who the user is to IAM, and whether the deployment agrees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserFinding {
    pub(crate) user: String,
    pub(crate) role: String,
    pub(crate) role_id: String,
    pub(crate) permission_set: Option<String>,
    pub(crate) user_id: String,
    /// `SESSION_ROLE_ID` when it differs from the role's id (the role was re-created).
    pub(crate) stale_role_id: Option<String>,
    /// The role's `MaxSessionDuration`, in seconds.
    pub(crate) max_session_seconds: Option<i32>,
}

/// The user and the role as IAM has them, against the configured role id.
pub(crate) fn check_user(config: &Config, subject: &Subject) -> UserFinding {
    let role = &subject.facts.role;
    UserFinding {
        user: subject.name.to_string(),
        role: role.name.clone(),
        role_id: role.id.to_string(),
        permission_set: config.users_role.permission_set().map(str::to_owned),
        user_id: subject.user_id.to_string(),
        stale_role_id: config
            .session_role_id
            .as_ref()
            .filter(|configured| configured.as_str() != role.id.as_str())
            .map(ToString::to_string),
        max_session_seconds: subject.facts.max_session_seconds,
    }
}

/// The wording of check 1.
impl From<UserFinding> for Check {
    fn from(finding: UserFinding) -> Self {
        let permission_set = finding
            .permission_set
            .map(|set| format!(", the role of permission set {set}"))
            .unwrap_or_default();
        // Federated sessions carry no aws:MultiFactorAuthPresent: how long credentials last is
        // the control the role itself has.
        let lasting = finding
            .max_session_seconds
            .map(|seconds| {
                let length = if seconds % 3600 == 0 {
                    format!("{} h", seconds / 3600)
                } else {
                    format!("{} min", seconds / 60)
                };
                format!("; its sessions last at most {length} (MaxSessionDuration; MFA is the identity provider's)")
            })
            .unwrap_or_default();
        let found = format!(
            "{} is a valid role-session name; the users' role is {} ({}{permission_set}); \
             their aws:userid is {}{lasting}",
            finding.user, finding.role, finding.role_id, finding.user_id
        );
        match finding.stale_role_id {
            Some(configured) => Check::fail(
                CheckId::User,
                format!(
                    "{found}; but SESSION_ROLE_ID is {configured} (the role was re-created), so the functions write user-id tags no session can match"
                ),
                format!(
                    "set SESSION_ROLE_ID (template UsersRoleId) to {}, or leave it empty to have it resolved",
                    finding.role_id
                ),
            ),
            None => Check::pass(CheckId::User, found),
        }
    }
}
