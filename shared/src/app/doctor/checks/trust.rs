//! Check 8: nobody can assume the users' role with a session name of their choosing. With
//! `sts:AssumeRole` a caller picks `--role-session-name alice` and IAM calls them
//! `<role-id>:alice`: alice's instances and sessions are then theirs.

use crate::app::doctor::context::RoleFacts;
use crate::app::doctor::report::{Check, CheckId};
use crate::domain::trust::{name_choosers, NameChooser};

/// What check 8 found about the users' role's trust policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TrustFinding {
    /// The trust policy cannot be read (missing, or not a policy document).
    Unreadable { role: String, why: String },
    /// Only the identity provider or a service names the role's sessions.
    NobodyChooses { role: String },
    /// These statements let a caller choose their session name.
    Choosers {
        role: String,
        choosers: Vec<NameChooser>,
    },
}

/// Judge the role's trust policy.
pub(crate) fn trust(facts: &RoleFacts) -> TrustFinding {
    let role = facts.role.name.clone();
    let read = facts
        .trust_policy
        .as_deref()
        .ok_or_else(|| "IAM's GetRole answer carried no trust policy".to_owned())
        .and_then(name_choosers);
    match read {
        Err(why) => TrustFinding::Unreadable { role, why },
        Ok(choosers) if choosers.is_empty() => TrustFinding::NobodyChooses { role },
        Ok(choosers) => TrustFinding::Choosers { role, choosers },
    }
}

/// The wording of check 8.
impl From<TrustFinding> for Check {
    fn from(finding: TrustFinding) -> Self {
        match finding {
            TrustFinding::Unreadable { role, why } => Check::fail(
                CheckId::Trust,
                format!("{role}'s trust policy cannot be read: {why}"),
                format!("read it with: aws iam get-role --role-name {role}"),
            ),
            TrustFinding::NobodyChooses { role } => Check::pass(
                CheckId::Trust,
                format!("only the identity provider or a service names the sessions of {role}: no caller chooses their aws:userid"),
            ),
            TrustFinding::Choosers { role, choosers } => Check::fail(
                CheckId::Trust,
                format!(
                    "{role}'s trust policy lets callers choose their session name, and so their aws:userid and whose instances they reach: {}",
                    choosers.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
                ),
                choosers.iter().map(NameChooser::fix).collect::<Vec<_>>().join("; "),
            ),
        }
    }
}
