//! The access doctor: why a user can or cannot open, terminate or resume a session on an
//! instance. It reads the role, the instance, its tags, the role's policies, the session-rights
//! store, the managed-node record and IAM's own policy simulator, and writes nothing.
//!
//! Eleven checks, in order: the user and the role; the instance; the ownership tags; the
//! end-user policy; session rights; reachability; IAM's confirmation; the trust policy (who may
//! choose their session name); each session kind (shell, port forwarding, SSH); where shell
//! sessions are logged; run-as. Each gives a verdict
//! line and, when it fails, the fix. The overall verdict is whether a session would start:
//! IAM allows `ssm:StartSession` (IAM's simulator where it answers, the product's own evaluation
//! where it does not), the instance is running, and the node is not known to be unreachable.

pub mod audit;
mod checks;
mod kinds;
pub mod verify;

pub use kinds::KindQuestion;

use std::collections::BTreeMap;
use std::fmt;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use super::managed_store::{Attachments, ManagedStore};
use super::regions::RegionalClients;
use crate::config::{is_region_name, Config, SessionRights, UsersRole};
use crate::domain::evaluation::{
    evaluate, Decision, Evaluation, NamedPolicy, Request, Unevaluable,
};
use crate::domain::ids::{
    InstanceId, InstanceState, Partition, ResolvedRole, RoleIdentity, UserId,
};
use crate::domain::session_iam::{
    self, Arns, SessionKind, RESUME_SESSION, START_SESSION, TERMINATE_SESSION, USER_ID_KEY,
};
use crate::domain::session_name::SessionName;
use crate::error::Error;
use crate::ports::{
    DescribedInstance, EnabledRegions, InRegion, InstanceDirectory, LoggingTargets, ManagedNodes,
    ManagedPolicies, PolicySimulator, RoleDirectory, RoleEvaluationInputs, RolePolicies,
    RolePolicyDocument, SessionDocumentReader, Simulation, TrailDirectory,
};

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

/// The doctor's checks, in the order they run and are numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckId {
    User,
    Instance,
    Ownership,
    Policy,
    Rights,
    Reachability,
    Simulator,
    /// Whether a caller can choose their own session name (and so their `aws:userid`).
    Trust,
    /// Each session kind the deployment turns on, on this instance.
    Kinds,
    /// Where shell sessions are logged, and the key that encrypts them.
    Logging,
    /// Whether per-user run-as can work for the role.
    RunAs,
    /// Whether a logging trail delivers the region's launches to EventBridge.
    LaunchEvents,
}

impl CheckId {
    /// The checks that need a live instance, which are not run without one.
    const NEED_INSTANCE: [CheckId; 5] = [
        CheckId::Ownership,
        CheckId::Policy,
        CheckId::Rights,
        CheckId::Reachability,
        CheckId::Simulator,
    ];

    /// The name printed and given in `--json`'s `check`.
    pub fn label(self) -> &'static str {
        match self {
            CheckId::User => "user and role",
            CheckId::Instance => "instance",
            CheckId::Ownership => "ownership tags",
            CheckId::Policy => "end-user policy",
            CheckId::Rights => "session rights",
            CheckId::Reachability => "reachability",
            CheckId::Simulator => "IAM simulator",
            CheckId::Trust => "trust policy",
            CheckId::Kinds => "session kinds",
            CheckId::Logging => "session logging",
            CheckId::RunAs => "run as",
            CheckId::LaunchEvents => "launch events",
        }
    }
}

/// How a check came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    Pass,
    /// Failed, and what to do about it.
    Fail {
        fix: String,
    },
    /// Could not be run (the detail says why), and sometimes what would let it run.
    NotRun {
        fix: Option<String>,
    },
}

/// One check's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub id: CheckId,
    pub outcome: CheckOutcome,
    pub detail: String,
}

impl Check {
    fn pass(id: CheckId, detail: impl Into<String>) -> Self {
        Self {
            id,
            outcome: CheckOutcome::Pass,
            detail: detail.into(),
        }
    }

    fn fail(id: CheckId, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            id,
            outcome: CheckOutcome::Fail { fix: fix.into() },
            detail: detail.into(),
        }
    }

    fn not_run(id: CheckId, detail: impl Into<String>, fix: Option<String>) -> Self {
        Self {
            id,
            outcome: CheckOutcome::NotRun { fix },
            detail: detail.into(),
        }
    }

    /// Passed (`Some(true)`), failed (`Some(false)`), or not run (`None`): `--json`'s `ok`.
    pub fn ok(&self) -> Option<bool> {
        match self.outcome {
            CheckOutcome::Pass => Some(true),
            CheckOutcome::Fail { .. } => Some(false),
            CheckOutcome::NotRun { .. } => None,
        }
    }

    pub fn fix(&self) -> Option<&str> {
        match &self.outcome {
            CheckOutcome::Pass => None,
            CheckOutcome::Fail { fix } => Some(fix),
            CheckOutcome::NotRun { fix } => fix.as_deref(),
        }
    }
}

/// `{check, ok, detail, fix?}`: the shape `doctor --json` has always printed.
impl Serialize for Check {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fix = self.fix();
        let mut line = serializer.serialize_struct("Check", 3 + usize::from(fix.is_some()))?;
        line.serialize_field("check", self.id.label())?;
        line.serialize_field("ok", &self.ok())?;
        line.serialize_field("detail", &self.detail)?;
        if let Some(fix) = fix {
            line.serialize_field("fix", fix)?;
        }
        line.end()
    }
}

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
    /// The line of that check, once it ran (or was found unable to run).
    pub fn check(&self, id: CheckId) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
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
    trust_policy: Option<String>,
    permissions_boundary: Option<String>,
}

impl RoleFacts {
    /// ARNs in the role's partition and account, in `region`.
    fn arns(&self, region: &str) -> Arns {
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
async fn role_facts<I>(config: &Config, iam: &I) -> Result<RoleFacts, Error>
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
    } = iam.role_identity(&name).await?;
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
        trust_policy,
        permissions_boundary,
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

/// Who asks about what: the parsed question and the role as IAM has it.
struct Subject {
    name: SessionName,
    user_id: UserId,
    instance_id: InstanceId,
    region: String,
    facts: RoleFacts,
    arns: Arns,
}

impl Subject {
    fn caller(&self) -> String {
        self.user_id.to_string()
    }

    /// The user ending or resuming their own session (tagged with their `aws:userid`).
    fn own_session(&self, action: &str) -> Request {
        let caller = self.caller();
        let arn = self
            .arns
            .session(self.name.as_str(), EXAMPLE_SESSION_SUFFIX);
        session_iam::on_session(action, &arn, &caller, Some(&caller))
    }
}

/// The product's own evaluation of the role's policies, for the questions the checks share.
struct OwnEvaluations {
    start_instance: Result<Evaluation, Unevaluable>,
    /// The document a plain session starts with: the shell's, or the first kind that is on.
    document: String,
    start_document: Result<Evaluation, Unevaluable>,
    terminate: Result<Evaluation, Unevaluable>,
    resume: Result<Evaluation, Unevaluable>,
}

impl OwnEvaluations {
    fn new(
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

    fn answers(&self) -> OwnAnswers {
        OwnAnswers {
            start: combine(&self.start_instance, &self.start_document),
            terminate: self.terminate.as_ref().ok().map(|e| e.decision),
            resume: self.resume.as_ref().ok().map(|e| e.decision),
        }
    }
}

/// The document a plain session starts with: the shell's, else the first kind that is on.
fn first_document(config: &Config) -> String {
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
pub struct Services<'a, E, I, S, L, T = super::trails::NoTrails> {
    pub ec2: &'a E,
    pub iam: &'a I,
    pub ssm: &'a S,
    pub logging: &'a L,
    /// CloudTrail, for the launch-events check.
    pub trails: &'a T,
}

/// Diagnose the question. Reads only.
pub async fn diagnose<E, I, S, L, T>(
    config: &Config,
    question: &Question<'_>,
    services: Services<'_, E, I, S, L, T>,
) -> Result<Diagnosis, DoctorError>
where
    E: InstanceDirectory + InRegion + EnabledRegions + Clone + Send + Sync,
    I: DoctorIam,
    S: ManagedNodes + SessionDocumentReader + InRegion + Clone + Send + Sync,
    L: LoggingTargets + InRegion + Clone + Send + Sync,
    T: TrailDirectory + InRegion + Clone + Send + Sync,
{
    let Services {
        ec2,
        iam,
        ssm,
        logging,
        trails,
    } = services;
    let (user, instance, region) = (question.user, question.instance, question.region);
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

    let facts = role_facts(config, iam).await?;
    let subject = Subject {
        user_id: UserId::new(facts.role.id.clone(), name.clone()),
        arns: facts.arns(&region),
        name,
        instance_id,
        region,
        facts,
    };
    report.push(check_user(config, &subject));
    // Needs no instance; printed last, so that the first seven keep their numbers.
    let trust = checks::trust(&subject.facts);

    let (instance_check, described) = check_instance(config, ec2, &subject).await?;
    report.push(instance_check);
    let ssm_here = RegionalClients::new(ssm.clone(), config).get(Some(&subject.region));
    let logging_here = RegionalClients::new(logging.clone(), config).get(Some(&subject.region));
    let shell = kinds::shell_preferences(config, &ssm_here).await?;
    let session_logging = kinds::logging(&logging_here, &subject.region, &shell).await;
    let run_as = kinds::run_as(&shell, subject.facts.trust_policy.as_deref());
    let launch_events = launch_events(
        &RegionalClients::new(trails.clone(), config),
        &subject.region,
    )
    .await;
    let described = match described {
        Ok(described) => described,
        Err(why) => {
            let mut report = report.without_instance(&why);
            report.push(trust);
            report.push(Check::not_run(
                CheckId::Kinds,
                format!("not checked: {why}"),
                None,
            ));
            report.push(session_logging);
            report.push(run_as);
            report.push(launch_events);
            return Ok(report);
        }
    };

    report.push(checks::ownership(
        &described.tags,
        &subject.user_id,
        &subject.facts.role,
        config,
    ));
    let documents = iam.identity_policies(&subject.facts.role.name).await?;
    let own = OwnEvaluations::new(config, &documents, &subject, &described.tags);
    report.push(checks::end_user_policy(config, &documents, &subject, &own));
    report.push(check_rights(config, iam, &subject, &documents, &own).await?);
    let reachability = check_reachability(config, ssm, &subject).await;
    let unreachable = reachability.ok() == Some(false);
    report.push(reachability);
    let (simulator, actions) = check_simulator(config, iam, &subject, &described, &own).await;
    report.push(simulator);
    report.push(trust);
    report.push(
        kinds::session_kinds(
            config,
            &ssm_here,
            &subject,
            &described.tags,
            &documents,
            &question.kinds,
        )
        .await?,
    );
    report.push(session_logging);
    report.push(run_as);
    report.push(launch_events);

    let startable = actions.start_session == ActionVerdict::Allowed
        && described.state == InstanceState::Running
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

/// Check 12: whether a logging trail delivers the region's management events (RunInstances) to
/// EventBridge, so that a launch there is tagged within seconds rather than by the next sweep.
async fn launch_events<T>(trails: &RegionalClients<T>, region: &str) -> Check
where
    T: TrailDirectory + InRegion + Clone + Send + Sync,
{
    match super::trails::regions_without_trail(trails, &[region.to_owned()]).await {
        Ok(left) if left.is_empty() => Check::pass(
            CheckId::LaunchEvents,
            format!("a logging trail delivers {region}'s management events (RunInstances) to EventBridge: launches are tagged within seconds"),
        ),
        Ok(_) => Check::fail(
            CheckId::LaunchEvents,
            format!("no logging trail delivers {region}'s write management events to EventBridge: a launch there is tagged only by the next tag sweep (TagSweepSchedule), and its user waits until then"),
            "deploy with CreateTrail=true, or have a multi-region trail log write management events (aws cloudtrail create-trail --is-multi-region-trail, then start-logging)",
        ),
        Err(err) => Check::not_run(
            CheckId::LaunchEvents,
            format!("the trails could not be read: {err}"),
            Some("grant cloudtrail:DescribeTrails, GetTrailStatus and GetEventSelectors (the template's DoctorPolicy does)".into()),
        ),
    }
}

/// Check 1: the user and the role.
fn check_user(config: &Config, subject: &Subject) -> Check {
    let role = &subject.facts.role;
    let permission_set = config
        .users_role
        .permission_set()
        .map(|set| format!(", the role of permission set {set}"))
        .unwrap_or_default();
    let found = format!(
        "{} is a valid role-session name; the users' role is {} ({}{permission_set}); \
         their aws:userid is {}",
        subject.name, role.name, role.id, subject.user_id
    );
    match &config.session_role_id {
        Some(configured) if configured.as_str() != role.id.as_str() => Check::fail(
            CheckId::User,
            format!(
                "{found}; but SESSION_ROLE_ID is {configured} (the role was re-created), so the functions write user-id tags no session can match"
            ),
            format!(
                "set SESSION_ROLE_ID (template UsersRoleId) to {}, or leave it empty to have it resolved",
                role.id
            ),
        ),
        _ => Check::pass(CheckId::User, found),
    }
}

/// Check 2: the instance. With its line, the live instance, or why the checks that need one
/// cannot run.
async fn check_instance<E>(
    config: &Config,
    ec2: &E,
    subject: &Subject,
) -> Result<(Check, Result<DescribedInstance, String>), Error>
where
    E: InstanceDirectory + InRegion + EnabledRegions + Clone + Send + Sync,
{
    let (instance_id, region) = (&subject.instance_id, &subject.region);
    let regional = RegionalClients::new(ec2.clone(), config);
    let described = regional
        .get(Some(region))
        .describe_instances(std::slice::from_ref(instance_id))
        .await?
        .into_iter()
        .next();
    let Some(described) = described else {
        let mut elsewhere = None;
        for other in regional.covered().await?.to_vec() {
            if other == *region {
                continue;
            }
            let found = regional
                .get(Some(&other))
                .describe_instances(std::slice::from_ref(instance_id))
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
        return Ok((
            Check::fail(CheckId::Instance, detail, fix),
            Err("the instance does not exist".into()),
        ));
    };
    let state = described.state;
    let check = match state {
        InstanceState::Running => Check::pass(
            CheckId::Instance,
            format!("{instance_id} is running in {region}"),
        ),
        other if !other.is_live() => {
            return Ok((
                Check::fail(
                    CheckId::Instance,
                    format!(
                        "{instance_id} is {} in {region}: Session Manager cannot reach it",
                        other.as_str()
                    ),
                    "launch a new instance through the portal",
                ),
                Err(format!("the instance is {}", other.as_str())),
            ))
        }
        other => Check::fail(
            CheckId::Instance,
            format!("{instance_id} is {} in {region}", other.as_str()),
            match other {
                InstanceState::Pending => "wait until it is running",
                _ => "start it (aws ec2 start-instances), then try again",
            },
        ),
    };
    Ok((check, Ok(described)))
}

/// Check 5: where the user's rights to end and resume their own sessions come from.
async fn check_rights<I: DoctorIam>(
    config: &Config,
    iam: &I,
    subject: &Subject,
    documents: &[RolePolicyDocument],
    own: &OwnEvaluations,
) -> Result<Check, Error> {
    if let Some(text) = session_iam::untaggable_reason(&subject.caller()) {
        return Ok(Check::fail(
            CheckId::Rights,
            text,
            "use a role-session name of letters, digits and _ . = + - @ only (no comma): the identity provider sets it",
        ));
    }
    let own = [&own.terminate, &own.resume];
    match (config.session_rights, &config.users_role) {
        (SessionRights::Static, _) => Ok(checks::static_rights(own)),
        (SessionRights::PerUser, UsersRole::PermissionSet(_)) => Ok(Check::fail(
            CheckId::Rights,
            "per-user mode cannot write to an Identity Center role (IAM: UnmodifiableEntity)",
            "use static session rights: SESSION_RIGHTS=static (template SessionRights=static)",
        )),
        (SessionRights::PerUser, UsersRole::Named(_)) => {
            let store = ManagedStore::new(
                iam.clone(),
                &config.policy_name_prefix,
                config.max_policy_shards,
                config.role_managed_policy_limit,
            );
            let inventory = store
                .inventory(&subject.facts.role, Attachments::Fresh)
                .await?;
            Ok(checks::per_user_rights(
                config,
                &subject.facts,
                &subject.name,
                documents,
                &inventory,
                own,
            ))
        }
    }
}

/// Check 6: Session Manager can reach the node.
async fn check_reachability<S>(config: &Config, ssm: &S, subject: &Subject) -> Check
where
    S: ManagedNodes + InRegion + Clone + Send + Sync,
{
    let ssm_here = RegionalClients::new(ssm.clone(), config).get(Some(&subject.region));
    checks::reachability(
        ssm_here.managed_node(&subject.instance_id).await,
        &subject.instance_id,
    )
}

/// Check 7: IAM's own simulator, asked the questions the product answered itself. With its
/// line, the verdict for each action (IAM's where it answered).
async fn check_simulator<I: DoctorIam>(
    config: &Config,
    iam: &I,
    subject: &Subject,
    described: &DescribedInstance,
    own: &OwnEvaluations,
) -> (Check, Actions) {
    let caller = subject.caller();
    let mut instance_question =
        Request::new(START_SESSION, subject.arns.instance(&subject.instance_id))
            .with(USER_ID_KEY, caller.clone());
    if let Some(value) = described.tags.get(&config.user_id_tag_key) {
        instance_question = instance_question.with(
            format!("ssm:resourceTag/{}", config.user_id_tag_key),
            value.clone(),
        );
    }
    let questions = [
        (vec![START_SESSION], instance_question),
        (
            vec![START_SESSION],
            session_iam::start_session(
                &subject.arns.document(&own.document),
                &caller,
                &BTreeMap::new(),
            ),
        ),
        (
            vec![TERMINATE_SESSION, RESUME_SESSION],
            subject.own_session(TERMINATE_SESSION),
        ),
    ];
    let mut answers = Vec::new();
    let mut unavailable = None;
    for (actions, request) in questions {
        let simulation = Simulation {
            role_arn: subject.facts.arn.clone(),
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
    checks::confirmation(&subject.facts.arn, unavailable, &answers, &own.answers())
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
        for id in CheckId::NEED_INSTANCE {
            self.push(Check::not_run(id, format!("not checked: {why}"), None));
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
            let mark = match check.outcome {
                CheckOutcome::Pass => "✓",
                CheckOutcome::Fail { .. } => "✗",
                CheckOutcome::NotRun { .. } => "?",
            };
            writeln!(
                f,
                "{mark} {}. {:<16} {}",
                number + 1,
                check.id.label(),
                check.detail
            )?;
            if let Some(fix) = check.fix() {
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
