//! Check 4: the end-user policy is on the role, and it lets the user start a session here.

use crate::app::doctor::context::{OwnEvaluations, Subject};
use crate::app::doctor::report::{Check, CheckId};
use crate::config::Config;
use crate::domain::evaluation::Decision;
use crate::ports::RolePolicyDocument;

/// What check 4 found. `name` is the end-user policy's name throughout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EndUserPolicyFinding {
    /// The policy is not on the role; `attach` says where to attach it.
    NotAttached {
        name: String,
        role: String,
        attach: AttachTo,
    },
    /// The product's own evaluation cannot answer (why).
    Unevaluable { name: String, why: String },
    /// Allowed on the instance (`by_instance`) and on the document (`by_document`).
    Allowed {
        name: String,
        user_id: String,
        by_instance: Vec<String>,
        document: String,
        by_document: Vec<String>,
    },
    /// A Deny applies; `guard_only` when it is only the policy's own guards (the tags decide).
    ExplicitlyDenied {
        user_id: String,
        by: Vec<String>,
        guard_only: bool,
    },
    /// No statement allows the instance: its user-id tag is not the caller's.
    NotAllowedOnInstance {
        name: String,
        user_id: String,
        tag_key: String,
    },
    /// No statement allows the session document.
    NotAllowedOnDocument { name: String, document: String },
}

/// Where the end-user policy is attached: a permission set, or the role itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AttachTo {
    PermissionSet(String),
    Role { partition: String, account: String },
}

/// Judge the role's policies for a session on this instance.
pub(crate) fn end_user_policy(
    config: &Config,
    documents: &[RolePolicyDocument],
    subject: &Subject,
    own: &OwnEvaluations,
) -> EndUserPolicyFinding {
    let (facts, user_id) = (&subject.facts, subject.user_id.to_string());
    let name = config.rights.end_user_policy_name.clone();
    if !documents.iter().any(|p| p.arn.is_some() && p.name == name) {
        let attach = match config.users_role.permission_set() {
            Some(set) => AttachTo::PermissionSet(set.to_owned()),
            None => AttachTo::Role {
                partition: facts.partition.as_str().to_owned(),
                account: facts.account.clone(),
            },
        };
        return EndUserPolicyFinding::NotAttached {
            name,
            role: facts.role.name.clone(),
            attach,
        };
    }
    let (start, document) = match (&own.start_instance, &own.start_document) {
        (Err(why), _) | (Ok(_), Err(why)) => {
            return EndUserPolicyFinding::Unevaluable {
                name,
                why: why.to_string(),
            }
        }
        (Ok(start), Ok(document)) => (start, document),
    };
    match (start.decision, document.decision) {
        (Decision::Allowed, Decision::Allowed) => EndUserPolicyFinding::Allowed {
            name,
            user_id,
            by_instance: start.by.clone(),
            document: own.document.clone(),
            by_document: document.by.clone(),
        },
        (Decision::ExplicitDeny, _) | (_, Decision::ExplicitDeny) => {
            let by = if start.decision == Decision::ExplicitDeny {
                start.by.clone()
            } else {
                document.by.clone()
            };
            // The end-user and sharing policies' own guards deny exactly the instances that
            // are neither the caller's nor shared with them: the tags are the thing to look at,
            // not the Deny.
            let guards = [
                format!("{name}/Guard"),
                format!("{}/Guard", config.sharing.policy_name),
            ];
            EndUserPolicyFinding::ExplicitlyDenied {
                guard_only: by
                    .iter()
                    .all(|statement| guards.iter().any(|g| statement.starts_with(g))),
                user_id,
                by,
            }
        }
        (Decision::ImplicitDeny, _) => EndUserPolicyFinding::NotAllowedOnInstance {
            name,
            user_id,
            tag_key: config.ownership.user_id_tag_key.clone(),
        },
        (Decision::Allowed, Decision::ImplicitDeny) => EndUserPolicyFinding::NotAllowedOnDocument {
            name,
            document: own.document.clone(),
        },
    }
}

/// The wording of check 4.
impl From<EndUserPolicyFinding> for Check {
    fn from(finding: EndUserPolicyFinding) -> Self {
        match finding {
            EndUserPolicyFinding::NotAttached { name, role, attach } => {
                let fix = match attach {
                    AttachTo::PermissionSet(set) => format!(
                        "add the customer managed policy {name} (path /) to permission set {set}, and re-provision it to this account"
                    ),
                    AttachTo::Role { partition, account } => format!(
                        "deploy with AttachEndUserPolicy=true, or: aws iam attach-role-policy --role-name {role} --policy-arn arn:{partition}:iam::{account}:policy/{name}"
                    ),
                };
                Check::fail(
                    CheckId::Policy,
                    format!("{name} is not attached to {role}"),
                    fix,
                )
            }
            EndUserPolicyFinding::Unevaluable { name, why } => Check::not_run(
                CheckId::Policy,
                format!("{name} is attached; the product cannot evaluate ssm:StartSession here: {why}"),
                None,
            ),
            EndUserPolicyFinding::Allowed {
                name,
                user_id,
                by_instance,
                document,
                by_document,
            } => Check::pass(
                CheckId::Policy,
                format!(
                    "{name} is attached; ssm:StartSession for {user_id} is allowed on the instance by {} and on {document} by {}",
                    by_instance.join(", "),
                    by_document.join(", ")
                ),
            ),
            EndUserPolicyFinding::ExplicitlyDenied {
                user_id,
                by,
                guard_only,
            } => Check::fail(
                CheckId::Policy,
                format!("ssm:StartSession for {user_id} is explicitly denied by {}", by.join(", ")),
                if guard_only {
                    "see check 3: the guard denies every instance whose user-id tag is not exactly the caller's aws:userid"
                } else {
                    "remove or narrow that Deny statement"
                },
            ),
            EndUserPolicyFinding::NotAllowedOnInstance {
                name,
                user_id,
                tag_key,
            } => Check::fail(
                CheckId::Policy,
                format!(
                    "{name} is attached, but no statement allows {user_id} ssm:StartSession on this instance: it allows the instances whose {tag_key} tag is exactly the caller's aws:userid"
                ),
                "see check 3: the instance's user-id tag decides who may connect",
            ),
            EndUserPolicyFinding::NotAllowedOnDocument { name, document } => Check::fail(
                CheckId::Policy,
                format!("no statement allows ssm:StartSession on the document {document}"),
                format!("restore {name}'s StartSessionWithAllowedDocuments statement (redeploy the template), or set the doctor's SHELL_SESSIONS, PORT_FORWARDING and SSH_SESSIONS to what the stack has"),
            ),
        }
    }
}
