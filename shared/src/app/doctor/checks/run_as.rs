//! Check 11: whether shell sessions run as the user.

use super::logging::ShellPreferences;
use crate::app::doctor::report::{Check, CheckId};
use crate::domain::session_documents::trust_allows_session_tags;

/// Check 11: whether shell sessions run as the user, and whether per-user run-as can work for
/// this role (the identity provider must pass `SSMSessionRunAs`, which needs `sts:TagSession`
/// in the trust policy).
pub(crate) fn run_as(shell: &ShellPreferences, trust_policy: Option<&str>) -> Check {
    let ShellPreferences::Read {
        document,
        preferences,
        ..
    } = shell
    else {
        return Check::not_run(CheckId::RunAs, "no shell document to read", None);
    };
    if !preferences.run_as_enabled {
        return Check::pass(
            CheckId::RunAs,
            format!("{document} runs shells as ssm-user (run-as is off; ShellSessions=product with RunAsEnabled=true turns it on)"),
        );
    }
    let fallback = match &preferences.run_as_default_user {
        Some(user) => format!("as {user}"),
        None => "nowhere: with no default user, sessions fail to start".to_owned(),
    };
    let Some(trust) = trust_policy else {
        return Check::not_run(
            CheckId::RunAs,
            "the role's trust policy could not be read",
            None,
        );
    };
    match trust_allows_session_tags(trust) {
        Err(why) => Check::not_run(CheckId::RunAs, why, None),
        Ok(true) => Check::pass(
            CheckId::RunAs,
            format!(
                "{document} runs each shell as the user's SSMSessionRunAs session tag, else {fallback}; the trust policy lets the identity provider pass it (sts:TagSession)"
            ),
        ),
        Ok(false) => Check::fail(
            CheckId::RunAs,
            format!(
                "{document} runs shells as the user's SSMSessionRunAs session tag, but the trust policy does not allow sts:TagSession for the identity provider, so nobody carries one: every shell runs {fallback}"
            ),
            "add sts:TagSession to the trust policy's statement for the SAML provider, and have the identity provider pass the attribute https://aws.amazon.com/SAML/Attributes/PrincipalTag:SSMSessionRunAs (Identity Center: an attribute for access control named SSMSessionRunAs)",
        ),
    }
}
