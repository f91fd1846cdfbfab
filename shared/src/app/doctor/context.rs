//! What the checks share, read once: the role as IAM has it, who asks about what, and the
//! product's own evaluation of the role's policies.

use std::collections::BTreeMap;

use crate::config::{Config, UsersRole};
use crate::domain::evaluation::{
    evaluate, Decision, Evaluation, NamedPolicy, Request, Unevaluable,
};
use crate::domain::ids::{InstanceId, Partition, ResolvedRole, RoleIdentity, UserId};
use crate::domain::session_iam::{self, Arns, SessionKind, RESUME_SESSION, TERMINATE_SESSION};
use crate::domain::session_name::SessionName;
use crate::error::Error;
use crate::ports::{InRegion, RoleDirectory, RoleEvaluationInputs, RolePolicyDocument};

use super::checks::session_kinds::KindQuestion;
use super::{checked_region, DoctorError};

/// A session id of today's shape (`<session-name>-<26 characters>`); the statements never
/// depend on it, the session-id tag decides.
pub(crate) const EXAMPLE_SESSION_SUFFIX: &str = "0a1b2c3d4e5f6a7b8c9d0e1f2a";

/// The role as the doctor needs it: name, id, ARN and account.
pub(crate) struct RoleFacts {
    pub(crate) role: ResolvedRole,
    pub(crate) arn: String,
    pub(crate) account: String,
    pub(crate) partition: Partition,
    pub(crate) trust_policy: Option<String>,
    pub(crate) permissions_boundary: Option<String>,
    /// `MaxSessionDuration`, in seconds: how long a user's credentials last at most.
    pub(crate) max_session_seconds: Option<i32>,
}

impl RoleFacts {
    /// ARNs in the role's partition and account, in `region`.
    pub(crate) fn arns(&self, region: &str) -> Arns {
        Arns {
            partition: self.partition,
            region: region.to_owned(),
            account: self.account.clone(),
        }
    }
}

/// The users' role as IAM has it now: by name, or by permission set (`ListRoles`), then one
/// `GetRole` for its id and ARN. A configured `SESSION_ROLE_ID` is not trusted here: check 1
/// compares it with the real one.
pub(crate) async fn role_facts<I>(config: &Config, iam: &I) -> Result<RoleFacts, Error>
where
    I: RoleDirectory + RoleEvaluationInputs + Sync,
{
    let name = match &config.users_role {
        UsersRole::PermissionSet(set) => iam.role_for_permission_set(set).await?.name,
        UsersRole::Named(name) => name.clone(),
    };
    let RoleIdentity {
        id,
        arn,
        trust_policy,
        permissions_boundary,
        max_session_seconds,
    } = iam.role_identity(&name).await?;
    let role = ResolvedRole {
        name,
        id: id.in_partition(config.regions.partition),
    };
    let account = arn
        .split(':')
        .nth(4)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| Error::unreadable("iam:GetRole", "an account id in the role ARN"))?;
    Ok(RoleFacts {
        partition: role.id.partition(),
        role,
        arn,
        account,
        trust_policy,
        permissions_boundary,
        max_session_seconds,
    })
}

/// The question, parsed, and the role as IAM has it now.
/// The question's USER as a session name, and its region (`--region`, else the client's):
/// usage errors when either can never be valid.
pub(crate) fn user_and_region(
    question: &Question<'_>,
    client: &impl InRegion,
) -> Result<(SessionName, String), DoctorError> {
    let user = question.user;
    let name = SessionName::parse(user).map_err(|e| {
        DoctorError::Usage(format!(
            "USER {user:?} can never be a user of the role: {e}"
        ))
    })?;
    let region = match question.region {
        Some(r) => r.to_owned(),
        None => client.region_name().ok_or_else(|| {
            DoctorError::Usage("no region: set AWS_REGION or pass --region".into())
        })?,
    };
    checked_region(&region)?;
    Ok((name, region))
}

pub(crate) async fn subject<E: InRegion, I>(
    config: &Config,
    question: &Question<'_>,
    ec2: &E,
    iam: &I,
) -> Result<Subject, DoctorError>
where
    I: RoleDirectory + RoleEvaluationInputs + Sync,
{
    let (name, region) = user_and_region(question, ec2)?;
    let instance_id =
        InstanceId::parse(question.instance).map_err(|r| DoctorError::Usage(r.text))?;
    let facts = role_facts(config, iam).await?;
    Ok(Subject {
        user_id: UserId::new(facts.role.id.clone(), name.clone()),
        arns: facts.arns(&region),
        name,
        instance_id,
        region,
        facts,
    })
}

/// Who asks about what: the parsed question and the role as IAM has it.
pub(crate) struct Subject {
    pub(crate) name: SessionName,
    pub(crate) user_id: UserId,
    pub(crate) instance_id: InstanceId,
    pub(crate) region: String,
    pub(crate) facts: RoleFacts,
    pub(crate) arns: Arns,
}

impl Subject {
    pub(crate) fn caller(&self) -> String {
        self.user_id.to_string()
    }

    /// The user ending or resuming their own session (tagged with their `aws:userid`).
    pub(crate) fn own_session(&self, action: &str) -> Request {
        let caller = self.caller();
        let arn = self
            .arns
            .session(self.name.as_str(), EXAMPLE_SESSION_SUFFIX);
        session_iam::on_session(action, &arn, &caller, Some(&caller))
    }
}

/// The product's own evaluation of the role's policies, for the questions the checks share.
pub(crate) struct OwnEvaluations {
    pub(crate) start_instance: Result<Evaluation, Unevaluable>,
    /// The document a plain session starts with: the shell's, or the first kind that is on.
    pub(crate) document: String,
    pub(crate) start_document: Result<Evaluation, Unevaluable>,
    pub(crate) terminate: Result<Evaluation, Unevaluable>,
    pub(crate) resume: Result<Evaluation, Unevaluable>,
}

impl OwnEvaluations {
    pub(crate) fn new(
        config: &Config,
        documents: &[RolePolicyDocument],
        subject: &Subject,
        tags: &BTreeMap<String, String>,
    ) -> Self {
        let policies: Vec<NamedPolicy> = documents.iter().map(RolePolicyDocument::named).collect();
        let caller = subject.caller();
        let instance = subject.arns.instance(&subject.instance_id);
        let document = first_document(config);
        Self {
            start_instance: evaluate(
                &policies,
                &session_iam::start_session(&instance, &caller, tags),
            ),
            start_document: evaluate(
                &policies,
                &session_iam::start_session(
                    &subject.arns.document(&document),
                    &caller,
                    &BTreeMap::new(),
                ),
            ),
            document,
            terminate: evaluate(&policies, &subject.own_session(TERMINATE_SESSION)),
            resume: evaluate(&policies, &subject.own_session(RESUME_SESSION)),
        }
    }

    pub(crate) fn answers(&self) -> OwnAnswers {
        OwnAnswers {
            start: combine(&self.start_instance, &self.start_document),
            terminate: self.terminate.as_ref().ok().map(|e| e.decision),
            resume: self.resume.as_ref().ok().map(|e| e.decision),
        }
    }
}

/// The document a plain session starts with: the shell's, else the first kind that is on.
pub(crate) fn first_document(config: &Config) -> String {
    SessionKind::ALL
        .into_iter()
        .find_map(|kind| config.session_kinds.document(kind))
        .unwrap_or_else(|| session_iam::SHELL_DOCUMENT.to_owned())
}

/// What the doctor is asked: may `user` reach `instance` (in `region`, the home region when
/// None), and with the session kinds, this port and this OS user?
#[derive(Debug, Clone, Default)]
pub struct Question<'a> {
    pub user: &'a str,
    pub instance: &'a str,
    pub region: Option<&'a str>,
    pub kinds: KindQuestion,
}

/// The services the doctor reads.
pub struct Services<'a, E, I, S, L, T = crate::app::trails::NoTrails> {
    pub ec2: &'a E,
    pub iam: &'a I,
    pub ssm: &'a S,
    pub logging: &'a L,
    /// CloudTrail, for the launch-events check.
    pub trails: &'a T,
}

/// The product's own answers, where it could give them.
pub(crate) struct OwnAnswers {
    pub start: Option<Decision>,
    pub terminate: Option<Decision>,
    pub resume: Option<Decision>,
}

/// StartSession needs both the instance and the document: the instance's answer unless it
/// allows, then the document's.
pub(crate) fn start_decision(instance: Decision, document: Decision) -> Decision {
    if instance.is_allowed() {
        document
    } else {
        instance
    }
}

/// [`start_decision`] on the product's evaluations; None where they cannot tell.
pub(crate) fn combine(
    instance: &Result<Evaluation, Unevaluable>,
    document: &Result<Evaluation, Unevaluable>,
) -> Option<Decision> {
    match (instance, document) {
        (Ok(i), Ok(d)) => Some(start_decision(i.decision, d.decision)),
        (Ok(i), Err(_)) if !i.decision.is_allowed() => Some(i.decision),
        _ => None,
    }
}
