//! Check 11: whether shell sessions run as the user, and whether per-user run-as can work for
//! this role (the identity provider must pass `SSMSessionRunAs`, which needs `sts:TagSession`
//! in the trust policy).

use super::logging::ShellPreferences;
use crate::app::doctor::report::{Check, CheckId};
use crate::domain::session_documents::trust_allows_session_tags;

/// What check 11 found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RunAsFinding {
    /// No shell document could be read.
    NoShell,
    /// Run-as is off: shells run as ssm-user.
    Off { document: String },
    /// The trust policy could not be read, or judged (why).
    TrustUnread { why: String },
    /// Run-as is on; `fallback` is where a session without the tag runs, in words;
    /// `tag_passed` is whether the trust policy lets the identity provider pass the tag.
    On {
        document: String,
        fallback: String,
        tag_passed: bool,
    },
}

/// Judge the shell's run-as preferences against the role's trust policy.
pub(crate) fn run_as(shell: &ShellPreferences, trust_policy: Option<&str>) -> RunAsFinding {
    let ShellPreferences::Read {
        document,
        preferences,
        ..
    } = shell
    else {
        return RunAsFinding::NoShell;
    };
    if !preferences.run_as_enabled {
        return RunAsFinding::Off {
            document: document.clone(),
        };
    }
    let fallback = match &preferences.run_as_default_user {
        Some(user) => format!("as {user}"),
        None => "nowhere: with no default user, sessions fail to start".to_owned(),
    };
    let Some(trust) = trust_policy else {
        return RunAsFinding::TrustUnread {
            why: "the role's trust policy could not be read".into(),
        };
    };
    match trust_allows_session_tags(trust) {
        Err(why) => RunAsFinding::TrustUnread { why },
        Ok(tag_passed) => RunAsFinding::On {
            document: document.clone(),
            fallback,
            tag_passed,
        },
    }
}

/// The wording of check 11.
impl From<RunAsFinding> for Check {
    fn from(finding: RunAsFinding) -> Self {
        match finding {
            RunAsFinding::NoShell => Check::not_run(CheckId::RunAs, "no shell document to read", None),
            RunAsFinding::Off { document } => Check::pass(
                CheckId::RunAs,
                format!("{document} runs shells as ssm-user (run-as is off; ShellSessions=product with RunAsEnabled=true turns it on)"),
            ),
            RunAsFinding::TrustUnread { why } => Check::not_run(CheckId::RunAs, why, None),
            RunAsFinding::On {
                document,
                fallback,
                tag_passed: true,
            } => Check::pass(
                CheckId::RunAs,
                format!(
                    "{document} runs each shell as the user's SSMSessionRunAs session tag, else {fallback}; the trust policy lets the identity provider pass it (sts:TagSession)"
                ),
            ),
            RunAsFinding::On {
                document,
                fallback,
                tag_passed: false,
            } => Check::fail(
                CheckId::RunAs,
                format!(
                    "{document} runs shells as the user's SSMSessionRunAs session tag, but the trust policy does not allow sts:TagSession for the identity provider, so nobody carries one: every shell runs {fallback}"
                ),
                "add sts:TagSession to the trust policy's statement for the SAML provider, and have the identity provider pass the attribute https://aws.amazon.com/SAML/Attributes/PrincipalTag:SSMSessionRunAs (Identity Center: an attribute for access control named SSMSessionRunAs)",
            ),
        }
    }
}
