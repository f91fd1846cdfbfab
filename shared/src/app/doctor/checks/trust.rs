//! Check 8: nobody can assume the users' role with a session name of their choosing.

use crate::app::doctor::context::RoleFacts;
use crate::app::doctor::report::{Check, CheckId};
use crate::domain::trust::name_choosers;

/// Check 8: nobody can assume the users' role with a session name of their choosing. With
/// `sts:AssumeRole` a caller picks `--role-session-name alice` and IAM calls them
/// `<role-id>:alice`: alice's instances and sessions are then theirs.
pub(crate) fn trust(facts: &RoleFacts) -> Check {
    let role = &facts.role.name;
    let read = facts
        .trust_policy
        .as_deref()
        .ok_or_else(|| "IAM's GetRole answer carried no trust policy".to_owned())
        .and_then(name_choosers);
    match read {
        Err(why) => Check::fail(
            CheckId::Trust,
            format!("{role}'s trust policy cannot be read: {why}"),
            format!("read it with: aws iam get-role --role-name {role}"),
        ),
        Ok(choosers) if choosers.is_empty() => Check::pass(
            CheckId::Trust,
            format!("only the identity provider or a service names the sessions of {role}: no caller chooses their aws:userid"),
        ),
        Ok(choosers) => Check::fail(
            CheckId::Trust,
            format!(
                "{role}'s trust policy lets callers choose their session name, and so their aws:userid and whose instances they reach: {}",
                choosers.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
            ),
            choosers.iter().map(|c| c.fix()).collect::<Vec<_>>().join("; "),
        ),
    }
}
