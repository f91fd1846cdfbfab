//! `doctor --audit`: for a security reviewer, every way the users' role, with every policy on
//! it, could escape isolation. It asks about synthetic users (a caller and an owner of the
//! users' role), so it needs no real user, instance or session, and it writes nothing:
//!
//! - each path to an instance the guards cover, on another user's instance and on an untagged
//!   one, and terminate or resume of another user's session;
//! - writing the ownership keys through EC2 and through services that tag on the caller's
//!   behalf;
//! - starting a session with a document the deployment does not allow, or with none;
//! - changing the users' role, the product's policies, its session documents or the account's
//!   session preferences;
//! - identity administration: every well-known privilege-escalation primitive (policy versions,
//!   attaching or putting policies, boundaries, trust policies, PassRole, new roles and users,
//!   access keys, login profiles, assuming another role). A role that holds one can make an
//!   identity no guard on the users' role constrains, so the report then says plainly that
//!   isolation cannot be guaranteed for it;
//! - the trust policy: whether a caller can choose their session name.
//!
//! IAM's policy simulator answers where it may (it also sees permissions boundaries); where it
//! is refused or unavailable, the product's own evaluation does, and the report says which.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::context::role_facts;
use crate::config::Config;
use crate::domain::evaluation::{evaluate, NamedPolicy, Request};
use crate::domain::ids::UserId;
use crate::domain::session_iam::{
    self, on_session, GUARDED_INSTANCE_ACTIONS, RESOURCE_TAG_PREFIXES, RESUME_SESSION,
    TERMINATE_SESSION, USER_ID_KEY,
};
use crate::domain::session_name::SessionName;
use crate::domain::shard_packing::shard_arn;
use crate::domain::trust::name_choosers;
use crate::error::Error;
use crate::ports::DoctorIam;
use crate::ports::{RolePolicyDocument, Simulation};

/// The synthetic caller, and the owner of the instances and sessions asked about.
const CALLER: &str = "audit-caller";
const OWNER: &str = "audit-owner";
const INSTANCE: &str = "i-0a0d17a0000000001";
const SESSION_SUFFIX: &str = "0a1b2c3d4e5f6a7b8c9d0e1f2a";
const GUARDS: &str = "deploy with GuardDenies=true (the end-user policy then denies it whatever else the role is granted)";

/// The path of the findings that make isolation impossible to guarantee.
const IDENTITY: &str = "identity administration";
const NO_GUARANTEE: &str = "only a permissions boundary (or an SCP) can constrain an identity this creates or changes: remove it from the users' role";

/// Privilege-escalation primitives, each on a resource outside the product (the product's own
/// are asked about under "the product"): `(action, resource kind, resource name)`.
const ESCALATION: [(&str, &str, &str); 22] = [
    ("iam:CreatePolicyVersion", "policy", "AnyCustomerPolicy"),
    ("iam:SetDefaultPolicyVersion", "policy", "AnyCustomerPolicy"),
    ("iam:AttachRolePolicy", "role", "AnyOtherRole"),
    ("iam:PutRolePolicy", "role", "AnyOtherRole"),
    ("iam:UpdateAssumeRolePolicy", "role", "AnyOtherRole"),
    ("iam:PutRolePermissionsBoundary", "role", "AnyOtherRole"),
    ("iam:DeleteRolePermissionsBoundary", "role", "AnyOtherRole"),
    ("iam:CreateRole", "role", "AnyNewRole"),
    ("iam:PassRole", "role", "AnyOtherRole"),
    ("sts:AssumeRole", "role", "AnyOtherRole"),
    ("iam:AttachUserPolicy", "user", "any-user"),
    ("iam:PutUserPolicy", "user", "any-user"),
    ("iam:PutUserPermissionsBoundary", "user", "any-user"),
    ("iam:DeleteUserPermissionsBoundary", "user", "any-user"),
    ("iam:CreateUser", "user", "any-new-user"),
    ("iam:CreateAccessKey", "user", "any-user"),
    ("iam:CreateLoginProfile", "user", "any-user"),
    ("iam:UpdateLoginProfile", "user", "any-user"),
    ("iam:AddUserToGroup", "group", "AnyGroup"),
    ("iam:AttachGroupPolicy", "group", "AnyGroup"),
    ("iam:PutGroupPolicy", "group", "AnyGroup"),
    ("iam:CreatePolicy", "policy", "AnyNewPolicy"),
];

/// Actions that write tags on the caller's behalf, by service.
const TAG_WRITES: [&str; 6] = [
    "ec2:CreateTags",
    "autoscaling:CreateAutoScalingGroup",
    "autoscaling:CreateOrUpdateTags",
    "cloudformation:CreateStack",
    "servicecatalog:ProvisionProduct",
    "tag:TagResources",
];

/// One way out of isolation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Which kind of path: `instance`, `session`, `session documents`, `ownership tags`, `the
    /// product`, `trust`.
    pub path: &'static str,
    /// What a user could do.
    pub what: String,
    /// The policies and statements that allow it (`policy/sid`), as the evaluator names them.
    pub allowed_by: Vec<String>,
    pub fix: String,
}

/// The audit's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Audit {
    pub role: String,
    pub role_id: String,
    /// `IAM's policy simulator`, or why the product's own evaluation answered instead.
    pub evaluated_by: String,
    /// Questions asked (the trust policy's statements not included).
    pub questions: usize,
    pub findings: Vec<Finding>,
    /// False when the role holds an identity-administration primitive: no guard on the users'
    /// role constrains an identity it creates or changes.
    pub isolation_can_be_guaranteed: bool,
    /// The role's permissions boundary (an ARN), if it has one.
    pub permissions_boundary: Option<String>,
}

/// One question: could a user do `what`?
struct Question {
    path: &'static str,
    what: String,
    request: Request,
}

/// Ask every question about the users' role. Reads only.
pub async fn audit<I: DoctorIam>(config: &Config, region: &str, iam: &I) -> Result<Audit, Error> {
    let facts = role_facts(config, iam).await?;
    let synthetic = |name: &str| {
        SessionName::parse(name)
            .map(|n| UserId::new(facts.role.id.clone(), n).to_string())
            .map_err(|e| Error::Unsupported {
                message: format!("a synthetic user is not a session name: {e}"),
            })
    };
    let (caller, owner) = (synthetic(CALLER)?, synthetic(OWNER)?);
    let arns = facts.arns(region);
    let questions = questions(config, &facts.arn, &arns, &caller, &owner);

    let documents = iam.identity_policies(&facts.role.name).await?;
    let policies: Vec<NamedPolicy> = documents.iter().map(RolePolicyDocument::named).collect();
    let (answers, evaluated_by) = match simulated(iam, &facts.arn, &questions).await {
        Ok(answers) => (answers, "IAM's policy simulator".to_owned()),
        Err(err) => (
            questions
                .iter()
                .map(|q| match evaluate(&policies, &q.request) {
                    Ok(found) => (found.decision.is_allowed(), found.by),
                    // Not known to be denied: reported, never assumed safe.
                    Err(why) => (true, vec![format!("cannot be evaluated: {why}")]),
                })
                .collect(),
            format!(
                "the product's own evaluation (IAM's policy simulator did not answer: {})",
                err.in_words()
            ),
        ),
    };

    let mut findings: Vec<Finding> = questions
        .iter()
        .zip(answers)
        .filter(|(_, (allowed, _))| *allowed)
        .map(|(q, (_, by))| Finding {
            path: q.path,
            what: q.what.clone(),
            fix: match (q.path == IDENTITY, by.is_empty()) {
                (true, true) => NO_GUARANTEE.to_owned(),
                (true, false) => format!("{NO_GUARANTEE} (remove or narrow {})", by.join(", ")),
                (false, true) => GUARDS.to_owned(),
                (false, false) => format!("{GUARDS}, or remove or narrow {}", by.join(", ")),
            },
            allowed_by: by,
        })
        .collect();
    let isolation_can_be_guaranteed = !findings.iter().any(|f| f.path == IDENTITY);
    match facts.trust_policy.as_deref().map(name_choosers) {
        Some(Ok(choosers)) => findings.extend(choosers.into_iter().map(|c| Finding {
            path: "trust",
            what: c.to_string(),
            allowed_by: vec![format!("{}'s trust policy", facts.role.name)],
            fix: c.fix(),
        })),
        Some(Err(why)) => findings.push(unreadable_trust(&facts.role.name, &why)),
        None => findings.push(unreadable_trust(
            &facts.role.name,
            "IAM's GetRole answer carried no trust policy",
        )),
    }
    Ok(Audit {
        role: facts.role.name.clone(),
        role_id: facts.role.id.to_string(),
        evaluated_by,
        questions: questions.len(),
        findings,
        isolation_can_be_guaranteed,
        permissions_boundary: facts.permissions_boundary.clone(),
    })
}

fn unreadable_trust(role: &str, why: &str) -> Finding {
    Finding {
        path: "trust",
        what: format!(
            "who may assume {role} with a session name of their choosing is unknown: {why}"
        ),
        allowed_by: Vec::new(),
        fix: format!("read it with: aws iam get-role --role-name {role}"),
    }
}

/// Every question, in the order reported.
#[expect(
    clippy::too_many_lines,
    reason = "the audit's questions, one block per kind of question, in the order reported"
)]
fn questions(
    config: &Config,
    role_arn: &str,
    arns: &session_iam::Arns,
    caller: &str,
    owner: &str,
) -> Vec<Question> {
    let mut questions = Vec::new();
    let instance = arns.instance_named(INSTANCE);
    for action in GUARDED_INSTANCE_ACTIONS {
        for (whose, tag) in [("another user's", Some(owner)), ("an untagged", None)] {
            let mut request = Request::new(action, &instance).with(USER_ID_KEY, caller);
            if let Some(tag) = tag {
                for prefix in RESOURCE_TAG_PREFIXES {
                    request = request.with(
                        format!("{prefix}/{}", config.ownership.user_id_tag_key),
                        tag,
                    );
                }
            }
            questions.push(Question {
                path: "instance",
                what: format!("{action} on {whose} instance"),
                request,
            });
        }
    }
    let session = arns.session(OWNER, SESSION_SUFFIX);
    for action in [TERMINATE_SESSION, RESUME_SESSION] {
        questions.push(Question {
            path: "session",
            what: format!("{action} on another user's session"),
            request: on_session(action, &session, caller, Some(owner)),
        });
    }
    for action in TAG_WRITES {
        for key in [
            &config.ownership.user_id_tag_key,
            &config.ownership.owner_tag_key,
        ] {
            let resource = if action.starts_with("ec2:") {
                instance.clone()
            } else {
                "*".to_owned()
            };
            questions.push(Question {
                path: "ownership tags",
                what: format!("{action} writing {key}"),
                request: Request::new(action, resource)
                    .with(USER_ID_KEY, caller)
                    .with_list("aws:TagKeys", &[key.as_str()])
                    .with(format!("aws:RequestTag/{key}"), caller),
            });
        }
    }
    // Session documents: a document the deployment does not allow (the remote-host one reaches
    // any host the instance can, another user's included), or none at all on the caller's own
    // instance (the account's default shell, whatever the documents allowed).
    for document in [
        session_iam::REMOTE_HOST_DOCUMENT,
        "AWS-StartInteractiveCommand",
    ] {
        questions.push(Question {
            path: "session documents",
            what: format!("ssm:StartSession with {document}"),
            request: session_iam::start_session(&arns.document(document), caller, &BTreeMap::new())
                .with(session_iam::DOCUMENT_ACCESS_CHECK_KEY, "true"),
        });
    }
    let own_tags = BTreeMap::from([(config.ownership.user_id_tag_key.clone(), caller.to_owned())]);
    questions.push(Question {
        path: "session documents",
        what: "ssm:StartSession with no document name on their own instance".into(),
        request: session_iam::start_session_with(&instance, None, caller, &own_tags).remove(0),
    });
    let account = &arns.account;
    let partition = arns.partition.as_str();
    let policy = |name: &str| format!("arn:{partition}:iam::{account}:policy/{name}");
    let prefix = &config.rights.policy_name_prefix;
    let product: Vec<(&str, String, String)> = vec![
        (
            "iam:PutRolePolicy",
            role_arn.to_owned(),
            "the users' role".into(),
        ),
        (
            "iam:AttachRolePolicy",
            role_arn.to_owned(),
            "the users' role".into(),
        ),
        (
            "iam:UpdateAssumeRolePolicy",
            role_arn.to_owned(),
            "the users' role".into(),
        ),
        (
            "iam:CreatePolicyVersion",
            policy(&config.rights.end_user_policy_name),
            "the end-user policy".into(),
        ),
        (
            "iam:CreatePolicyVersion",
            shard_arn(partition, account, prefix, 1),
            "a session-rights shard".into(),
        ),
        (
            "ssm:UpdateDocument",
            arns.document(session_iam::SHELL_DOCUMENT),
            "the account's session preferences".into(),
        ),
        (
            "ssm:DeleteDocument",
            arns.document(session_iam::SHELL_DOCUMENT),
            "the account's session preferences".into(),
        ),
        (
            "ssm:UpdateDocument",
            arns.document(&format!(
                "{}{}",
                config.session_kinds.document_prefix,
                session_iam::SessionKind::PortForwarding.document_suffix()
            )),
            "the product's port forwarding document".into(),
        ),
    ];
    for (action, resource, what) in product {
        questions.push(Question {
            path: "the product",
            what: format!("{action} on {what}"),
            request: Request::new(action, resource).with(USER_ID_KEY, caller),
        });
    }
    for (action, kind, name) in ESCALATION {
        let resource = format!("arn:{partition}:iam::{account}:{kind}/{name}");
        questions.push(Question {
            path: IDENTITY,
            what: format!("{action} on {resource}"),
            request: Request::new(action, &resource).with(USER_ID_KEY, caller),
        });
    }
    questions
}

/// IAM's answer to every question, or the first error (then nobody's answer is IAM's).
async fn simulated<I: DoctorIam>(
    iam: &I,
    role_arn: &str,
    questions: &[Question],
) -> Result<Vec<(bool, Vec<String>)>, Error> {
    let mut answers = Vec::with_capacity(questions.len());
    for question in questions {
        let simulation = Simulation {
            role_arn: role_arn.to_owned(),
            actions: vec![question.request.action.clone()],
            request: question.request.clone(),
            extra_policies: Vec::new(),
        };
        let answer = iam
            .simulate(&simulation)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::unreadable("iam:SimulatePrincipalPolicy", "an answer"))?;
        answers.push((answer.decision.is_allowed(), answer.matched));
    }
    Ok(answers)
}

impl fmt::Display for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Could a user of {} ({}) escape isolation? {} questions, answered by {}.",
            self.role, self.role_id, self.questions, self.evaluated_by
        )?;
        match &self.permissions_boundary {
            Some(arn) => writeln!(f, "permissions boundary: {arn}")?,
            None => writeln!(
                f,
                "permissions boundary: none (set the stack's UsersBoundaryArn on the role to close identity administration)"
            )?,
        }
        if self.findings.is_empty() {
            return writeln!(f, "✓ no way out found");
        }
        if !self.isolation_can_be_guaranteed {
            writeln!(
                f,
                "✗ isolation cannot be guaranteed for this role: it can create or change identities that no guard on it constrains (see identity administration below)"
            )?;
        }
        let mut by_path: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
        for finding in &self.findings {
            by_path.entry(finding.path).or_default().push(finding);
        }
        for (path, findings) in by_path {
            writeln!(f, "✗ {path}: {} finding(s)", findings.len())?;
            for finding in findings {
                writeln!(f, "  - {}", finding.what)?;
                if !finding.allowed_by.is_empty() {
                    writeln!(f, "    allowed by: {}", finding.allowed_by.join(", "))?;
                }
                writeln!(f, "    fix: {}", finding.fix)?;
            }
        }
        writeln!(f, "{} finding(s)", self.findings.len())
    }
}
