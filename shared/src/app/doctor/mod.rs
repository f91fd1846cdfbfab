//! The access doctor: why a user can or cannot open, terminate or resume a session on an
//! instance. It reads the role, the instance, its tags, the role's policies, the session-rights
//! store, the managed-node record and IAM's own policy simulator, and writes nothing.
//!
//! Seven checks, in order: the user and the role; the instance; the ownership tags; the
//! end-user policy; session rights; reachability; IAM's confirmation. Each gives a verdict
//! line and, when it fails, the fix. The overall verdict is whether a session would start:
//! IAM allows `ssm:StartSession` (IAM's simulator where it answers, the product's own evaluation
//! where it does not), the instance is running, and the node is not known to be unreachable.

mod checks;
pub mod verify;

use std::fmt;

use serde::Serialize;

use super::managed_store::ManagedStore;
use super::regions::RegionalClients;
use super::role_resolver::ResolvedRole;
use crate::config::{is_region_name, Config, SessionRights};
use crate::domain::evaluation::{
    evaluate, Decision, Evaluation, NamedPolicy, Request, Unevaluable,
};
use crate::domain::ids::{InstanceId, InstanceState, Partition, UserId};
use crate::domain::session_name::SessionName;
use crate::domain::statements::SESSION_ID_TAG;
use crate::error::Error;
use crate::ports::{
    EnabledRegions, InRegion, InstanceDirectory, ManagedNodes, ManagedPolicies, PolicySimulator,
    RoleDirectory, RoleEvaluationInputs, RolePolicies, RolePolicyDocument, Simulation,
};

pub const START_SESSION: &str = "ssm:StartSession";
pub const TERMINATE_SESSION: &str = "ssm:TerminateSession";
pub const RESUME_SESSION: &str = "ssm:ResumeSession";
/// The document a plain `aws ssm start-session` opens; StartSession is authorized on it too.
const SHELL_DOCUMENT: &str = "SSM-SessionManagerRunShell";
/// A session id of today's shape (`<session-name>-<26 characters>`); the statements never
/// depend on it, the session-id tag decides.
const EXAMPLE_SESSION_SUFFIX: &str = "0a1b2c3d4e5f6a7b8c9d0e1f2a";

/// Why the doctor could not diagnose: exit status 2.
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    /// A USER, INSTANCE_ID or region that can never be valid.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Aws(#[from] Error),
}

/// The overall answer: would a session start?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allowed,
    Denied,
}

/// One action's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionVerdict {
    Allowed,
    Denied,
    /// Neither IAM's simulator nor the product's evaluation could answer.
    Unknown,
}

impl ActionVerdict {
    fn of(decision: Option<Decision>) -> Self {
        match decision {
            Some(Decision::Allowed) => ActionVerdict::Allowed,
            Some(_) => ActionVerdict::Denied,
            None => ActionVerdict::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ActionVerdict::Allowed => "allowed",
            ActionVerdict::Denied => "denied",
            ActionVerdict::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Actions {
    #[serde(rename = "StartSession")]
    pub start_session: ActionVerdict,
    #[serde(rename = "TerminateSession")]
    pub terminate_session: ActionVerdict,
    #[serde(rename = "ResumeSession")]
    pub resume_session: ActionVerdict,
}

/// One check's line: passed (`ok: true`), failed (`false`), or could not be run (`null`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub ok: Option<bool>,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn pass(check: &'static str, detail: impl Into<String>) -> Self {
        Self {
            check,
            ok: Some(true),
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            check,
            ok: Some(false),
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn unknown(check: &'static str, detail: impl Into<String>, fix: Option<String>) -> Self {
        Self {
            check,
            ok: None,
            detail: detail.into(),
            fix,
        }
    }
}

pub const CHECK_USER: &str = "user and role";
pub const CHECK_INSTANCE: &str = "instance";
pub const CHECK_OWNERSHIP: &str = "ownership tags";
pub const CHECK_POLICY: &str = "end-user policy";
pub const CHECK_RIGHTS: &str = "session rights";
pub const CHECK_REACHABILITY: &str = "reachability";
pub const CHECK_IAM: &str = "IAM simulator";

/// The doctor's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    pub user: String,
    pub instance: String,
    pub region: String,
    pub verdict: Verdict,
    pub actions: Actions,
    pub checks: Vec<Check>,
}

impl Diagnosis {
    /// The check of that name.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.check == name)
    }
}

/// What the doctor needs from IAM: the role, its policies, the shards, the simulator.
pub trait DoctorIam:
    RoleDirectory
    + RoleEvaluationInputs
    + RolePolicies
    + ManagedPolicies
    + PolicySimulator
    + Clone
    + Send
    + Sync
{
}

impl<T> DoctorIam for T where
    T: RoleDirectory
        + RoleEvaluationInputs
        + RolePolicies
        + ManagedPolicies
        + PolicySimulator
        + Clone
        + Send
        + Sync
{
}

/// The role as the doctor needs it: name, id, ARN and account.
struct RoleFacts {
    role: ResolvedRole,
    arn: String,
    account: String,
    partition: Partition,
}

/// The users' role as IAM has it now: by name, or by permission set (`ListRoles`), then one
/// `GetRole` for its id and ARN. A configured `SESSION_ROLE_ID` is not trusted here: check 1
/// compares it with the real one.
async fn role_facts<I>(config: &Config, iam: &I) -> Result<RoleFacts, Error>
where
    I: RoleDirectory + RoleEvaluationInputs + Sync,
{
    let name = match &config.permission_set_name {
        Some(set) => iam.role_for_permission_set(set).await?.0,
        None => config.session_role_name.clone(),
    };
    let (id, arn) = iam.role_id_and_arn(&name).await?;
    let role = ResolvedRole {
        name,
        id: id.in_partition(config.partition),
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
    })
}

/// A region name as AWS spells them, or a usage error.
pub fn checked_region(region: &str) -> Result<(), DoctorError> {
    if is_region_name(region) {
        Ok(())
    } else {
        Err(DoctorError::Usage(format!(
            "{region:?} is not a region name (e.g. us-east-1)"
        )))
    }
}

/// Diagnose `user` on `instance` in `region` (the home region when None). Reads only.
pub async fn diagnose<E, I, S>(
    config: &Config,
    user: &str,
    instance: &str,
    region: Option<&str>,
    ec2: &E,
    iam: &I,
    ssm: &S,
) -> Result<Diagnosis, DoctorError>
where
    E: InstanceDirectory + InRegion + EnabledRegions + Clone + Send + Sync,
    I: DoctorIam,
    S: ManagedNodes + InRegion + Clone + Send + Sync,
{
    let name = SessionName::parse(user).map_err(|e| {
        DoctorError::Usage(format!(
            "USER {user:?} can never be a user of the role: {e}"
        ))
    })?;
    let instance_id = InstanceId::parse(instance).map_err(|r| DoctorError::Usage(r.text))?;
    let region = match region {
        Some(r) => r.to_owned(),
        None => ec2.region_name().ok_or_else(|| {
            DoctorError::Usage("no region: set AWS_REGION or pass --region".into())
        })?,
    };
    checked_region(&region)?;

    let mut report = Diagnosis::new(user, instance, &region);

    // 1. The user and the role.
    let facts = role_facts(config, iam).await?;
    let user_id = UserId::new(facts.role.id.clone(), name.clone());
    let permission_set = config
        .permission_set_name
        .as_ref()
        .map(|set| format!(", the role of permission set {set}"))
        .unwrap_or_default();
    let found = format!(
        "{name} is a valid role-session name; the users' role is {} ({}{permission_set}); \
         their aws:userid is {user_id}",
        facts.role.name, facts.role.id
    );
    report.push(match &config.session_role_id {
        Some(configured) if configured.as_str() != facts.role.id.as_str() => Check::fail(
            CHECK_USER,
            format!(
                "{found}; but SESSION_ROLE_ID is {configured} (the role was re-created), so the functions write user-id tags no session can match"
            ),
            format!(
                "set SESSION_ROLE_ID (template UsersRoleId) to {}, or leave it empty to have it resolved",
                facts.role.id
            ),
        ),
        _ => Check::pass(CHECK_USER, found),
    });

    // 2. The instance.
    let regional = RegionalClients::new(ec2.clone(), config);
    let described = regional
        .get(Some(&region))
        .describe_instances(std::slice::from_ref(&instance_id))
        .await?
        .into_iter()
        .next();
    let Some(described) = described else {
        let mut elsewhere = None;
        for other in regional.covered().await?.to_vec() {
            if other == region {
                continue;
            }
            let found = regional
                .get(Some(&other))
                .describe_instances(std::slice::from_ref(&instance_id))
                .await?;
            if !found.is_empty() {
                elsewhere = Some(other);
                break;
            }
        }
        let (detail, fix) = match elsewhere {
            Some(other) => (
                format!("{instance_id} is not in {region}; it is in {other}"),
                format!("run the doctor with --region {other}"),
            ),
            None => (
                format!("no instance {instance_id} in {region} or any covered region"),
                "check the instance id and the region (--region)".to_owned(),
            ),
        };
        report.push(Check::fail(CHECK_INSTANCE, detail, fix));
        return Ok(report.without_instance("the instance does not exist"));
    };
    let state = described.state;
    if !state.is_live() {
        report.push(Check::fail(
            CHECK_INSTANCE,
            format!(
                "{instance_id} is {} in {region}: Session Manager cannot reach it",
                state.as_str()
            ),
            "launch a new instance through the portal",
        ));
        return Ok(report.without_instance(&format!("the instance is {}", state.as_str())));
    }
    report.push(match state {
        InstanceState::Running => Check::pass(
            CHECK_INSTANCE,
            format!("{instance_id} is running in {region}"),
        ),
        other => Check::fail(
            CHECK_INSTANCE,
            format!("{instance_id} is {} in {region}", other.as_str()),
            match other {
                InstanceState::Pending => "wait until it is running",
                _ => "start it (aws ec2 start-instances), then try again",
            },
        ),
    });

    // 3. Ownership tags.
    report.push(checks::ownership(
        &described.tags,
        &user_id,
        &facts.role,
        config,
    ));

    // 4. The end-user policy.
    let documents = iam.identity_policies(&facts.role.name).await?;
    let policies: Vec<NamedPolicy> = documents
        .iter()
        .map(|p| NamedPolicy {
            name: p.name.clone(),
            document: p.document.clone(),
        })
        .collect();
    let arns = Arns::new(&facts, &region, &instance_id, &name);
    let start_request = |resource: &str| {
        let mut request =
            Request::new(START_SESSION, resource).with("aws:userid", user_id.to_string());
        for (key, value) in &described.tags {
            for prefix in ["ssm:resourceTag", "aws:ResourceTag", "ec2:ResourceTag"] {
                request = request.with(format!("{prefix}/{key}"), value.clone());
            }
        }
        request
    };
    let own_start = evaluate(&policies, &start_request(&arns.instance));
    let own_document = evaluate(&policies, &start_request(&arns.document));
    report.push(checks::end_user_policy(
        config,
        &documents,
        &facts,
        config.permission_set_name.as_deref(),
        &own_start,
        &own_document,
        &user_id,
    ));

    // 5. Session rights.
    let session_request = |action: &str| {
        Request::new(action, &arns.session)
            .with("aws:userid", user_id.to_string())
            .with(
                format!("ssm:resourceTag/{SESSION_ID_TAG}"),
                user_id.to_string(),
            )
    };
    let own_terminate = evaluate(&policies, &session_request(TERMINATE_SESSION));
    let own_resume = evaluate(&policies, &session_request(RESUME_SESSION));
    report.push(
        session_rights(
            config,
            iam,
            &facts,
            &name,
            &documents,
            [&own_terminate, &own_resume],
        )
        .await?,
    );

    // 6. Reachability.
    let ssm_here = RegionalClients::new(ssm.clone(), config).get(Some(&region));
    let reachability =
        checks::reachability(ssm_here.managed_node(&instance_id).await, &instance_id);
    let unreachable = reachability.ok == Some(false);
    report.push(reachability);

    // 7. IAM's own simulator.
    let tag_value = described.tags.get(&config.user_id_tag_key);
    let mut instance_question =
        Request::new(START_SESSION, &arns.instance).with("aws:userid", user_id.to_string());
    if let Some(value) = tag_value {
        instance_question = instance_question.with(
            format!("ssm:resourceTag/{}", config.user_id_tag_key),
            value.clone(),
        );
    }
    let questions = [
        (vec![START_SESSION], instance_question),
        (
            vec![START_SESSION],
            Request::new(START_SESSION, &arns.document).with("aws:userid", user_id.to_string()),
        ),
        (
            vec![TERMINATE_SESSION, RESUME_SESSION],
            session_request(TERMINATE_SESSION),
        ),
    ];
    let mut answers = Vec::new();
    let mut unavailable = None;
    for (actions, request) in questions {
        let simulation = Simulation {
            role_arn: facts.arn.clone(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
            request,
            extra_policies: Vec::new(),
        };
        match iam.simulate(&simulation).await {
            Ok(found) => answers.extend(found),
            Err(err) => {
                unavailable = Some(err);
                break;
            }
        }
    }
    let own = OwnAnswers {
        start: combine(&own_start, &own_document),
        terminate: own_terminate.as_ref().ok().map(|e| e.decision),
        resume: own_resume.as_ref().ok().map(|e| e.decision),
    };
    let (iam_check, actions) = checks::confirmation(&facts.arn, unavailable, &answers, &own);
    report.push(iam_check);

    let startable = actions.start_session == ActionVerdict::Allowed
        && state == InstanceState::Running
        && !unreachable;
    Ok(report.finish(
        if startable {
            Verdict::Allowed
        } else {
            Verdict::Denied
        },
        actions,
    ))
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
fn combine(
    instance: &Result<Evaluation, Unevaluable>,
    document: &Result<Evaluation, Unevaluable>,
) -> Option<Decision> {
    match (instance, document) {
        (Ok(i), Ok(d)) => Some(start_decision(i.decision, d.decision)),
        (Ok(i), Err(_)) if !i.decision.is_allowed() => Some(i.decision),
        _ => None,
    }
}

/// The resources the doctor asks about.
struct Arns {
    instance: String,
    document: String,
    session: String,
}

impl Arns {
    fn new(facts: &RoleFacts, region: &str, instance: &InstanceId, user: &SessionName) -> Self {
        let (p, account) = (facts.partition.as_str(), &facts.account);
        Self {
            instance: format!("arn:{p}:ec2:{region}:{account}:instance/{instance}"),
            document: format!("arn:{p}:ssm:{region}:{account}:document/{SHELL_DOCUMENT}"),
            session: format!(
                "arn:{p}:ssm:{region}:{account}:session/{user}-{EXAMPLE_SESSION_SUFFIX}"
            ),
        }
    }
}

/// Check 5: where the user's rights to end and resume their own sessions come from.
async fn session_rights<I: DoctorIam>(
    config: &Config,
    iam: &I,
    facts: &RoleFacts,
    user: &SessionName,
    documents: &[RolePolicyDocument],
    own: [&Result<Evaluation, Unevaluable>; 2],
) -> Result<Check, Error> {
    let identity_center = config.permission_set_name.is_some();
    match config.session_rights {
        SessionRights::Static => Ok(checks::static_rights(own)),
        SessionRights::PerUser if identity_center => Ok(Check::fail(
            CHECK_RIGHTS,
            "per-user mode cannot write to an Identity Center role (IAM: UnmodifiableEntity)",
            "use static session rights: SESSION_RIGHTS=static (template SessionRights=static)",
        )),
        SessionRights::PerUser => {
            let store = ManagedStore::new(
                iam.clone(),
                &facts.role.name,
                &config.policy_name_prefix,
                config.max_policy_shards,
                config.role_managed_policy_limit,
            );
            let inventory = store.inventory(&facts.role.id, true).await?;
            Ok(checks::per_user_rights(
                config, facts, user, documents, &inventory, own,
            ))
        }
    }
}

impl Diagnosis {
    fn new(user: &str, instance: &str, region: &str) -> Self {
        Self {
            user: user.to_owned(),
            instance: instance.to_owned(),
            region: region.to_owned(),
            verdict: Verdict::Denied,
            actions: Actions {
                start_session: ActionVerdict::Unknown,
                terminate_session: ActionVerdict::Unknown,
                resume_session: ActionVerdict::Unknown,
            },
            checks: Vec::new(),
        }
    }

    fn push(&mut self, check: Check) {
        self.checks.push(check);
    }

    /// Denied: the remaining checks need a live instance.
    fn without_instance(mut self, why: &str) -> Self {
        for check in [
            CHECK_OWNERSHIP,
            CHECK_POLICY,
            CHECK_RIGHTS,
            CHECK_REACHABILITY,
            CHECK_IAM,
        ] {
            self.push(Check::unknown(check, format!("not checked: {why}"), None));
        }
        self.finish(
            Verdict::Denied,
            Actions {
                start_session: ActionVerdict::Denied,
                terminate_session: ActionVerdict::Unknown,
                resume_session: ActionVerdict::Unknown,
            },
        )
    }

    fn finish(mut self, verdict: Verdict, actions: Actions) -> Self {
        self.verdict = verdict;
        self.actions = actions;
        self
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Can {} open, terminate and resume sessions on {} ({})?",
            self.user, self.instance, self.region
        )?;
        for (number, check) in self.checks.iter().enumerate() {
            let mark = match check.ok {
                Some(true) => "✓",
                Some(false) => "✗",
                None => "?",
            };
            writeln!(
                f,
                "{mark} {}. {:<16} {}",
                number + 1,
                check.check,
                check.detail
            )?;
            if let Some(fix) = &check.fix {
                writeln!(f, "     {:<16} fix: {fix}", "")?;
            }
        }
        let verdict = match self.verdict {
            Verdict::Allowed => "allowed",
            Verdict::Denied => "denied",
        };
        writeln!(
            f,
            "verdict: {verdict} (StartSession on this instance: {}; TerminateSession and ResumeSession of their own sessions: {} and {})",
            self.actions.start_session.as_str(),
            self.actions.terminate_session.as_str(),
            self.actions.resume_session.as_str()
        )
    }
}

#[cfg(test)]
mod tests;
