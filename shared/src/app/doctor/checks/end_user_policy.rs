//! Check 4: the end-user policy.

use crate::app::doctor::context::{OwnEvaluations, Subject};
use crate::app::doctor::report::{Check, CheckId};
use crate::config::Config;
use crate::domain::evaluation::Decision;
use crate::ports::RolePolicyDocument;

/// Check 4: the end-user policy is on the role, and it lets the user start a session here.
pub(crate) fn end_user_policy(
    config: &Config,
    documents: &[RolePolicyDocument],
    subject: &Subject,
    own: &OwnEvaluations,
) -> Check {
    let (facts, user_id) = (&subject.facts, &subject.user_id);
    let permission_set = config.users_role.permission_set();
    let (own_start, own_document) = (&own.start_instance, &own.start_document);
    let name = &config.rights.end_user_policy_name;
    let role = &facts.role.name;
    let attached = documents.iter().any(|p| p.arn.is_some() && p.name == *name);
    if !attached {
        let fix = match permission_set {
            Some(set) => format!(
                "add the customer managed policy {name} (path /) to permission set {set}, and re-provision it to this account"
            ),
            None => format!(
                "deploy with AttachEndUserPolicy=true, or: aws iam attach-role-policy --role-name {role} --policy-arn arn:{}:iam::{}:policy/{name}",
                facts.partition.as_str(),
                facts.account
            ),
        };
        return Check::fail(
            CheckId::Policy,
            format!("{name} is not attached to {role}"),
            fix,
        );
    }
    match (own_start, own_document) {
        (Err(why), _) | (Ok(_), Err(why)) => Check::not_run(
            CheckId::Policy,
            format!("{name} is attached; the product cannot evaluate ssm:StartSession here: {why}"),
            None,
        ),
        (Ok(start), Ok(document)) => match (start.decision, document.decision) {
            (Decision::Allowed, Decision::Allowed) => Check::pass(
                CheckId::Policy,
                format!(
                    "{name} is attached; ssm:StartSession for {user_id} is allowed on the instance by {} and on {} by {}",
                    start.by.join(", "),
                    own.document,
                    document.by.join(", ")
                ),
            ),
            (Decision::ExplicitDeny, _) | (_, Decision::ExplicitDeny) => {
                let by = if start.decision == Decision::ExplicitDeny { &start.by } else { &document.by };
                // The end-user policy's own guards deny exactly the instances that are not the
                // caller's: the ownership tags are the thing to look at, not the Deny.
                let guard = format!("{name}/Guard");
                let fix = if by.iter().all(|statement| statement.starts_with(&guard)) {
                    "see check 3: the guard denies every instance whose user-id tag is not exactly the caller's aws:userid"
                } else {
                    "remove or narrow that Deny statement"
                };
                Check::fail(
                    CheckId::Policy,
                    format!("ssm:StartSession for {user_id} is explicitly denied by {}", by.join(", ")),
                    fix,
                )
            }
            (Decision::ImplicitDeny, _) => Check::fail(
                CheckId::Policy,
                format!(
                    "{name} is attached, but no statement allows {user_id} ssm:StartSession on this instance: it allows the instances whose {} tag is exactly the caller's aws:userid",
                    config.ownership.user_id_tag_key
                ),
                "see check 3: the instance's user-id tag decides who may connect",
            ),
            (Decision::Allowed, Decision::ImplicitDeny) => Check::fail(
                CheckId::Policy,
                format!("no statement allows ssm:StartSession on the document {}", own.document),
                format!("restore {name}'s StartSessionWithAllowedDocuments statement (redeploy the template), or set the doctor's SHELL_SESSIONS, PORT_FORWARDING and SSH_SESSIONS to what the stack has"),
            ),
        },
    }
}
