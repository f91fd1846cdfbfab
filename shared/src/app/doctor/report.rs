//! The diagnosis: each check's line (`Check`, `CheckId`, whose number is its position in
//! `CheckId::ALL`), the overall verdict, and how it is printed.

use std::fmt;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::domain::evaluation::Decision;

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
    pub(crate) fn of(decision: Option<Decision>) -> Self {
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
    /// Every check in the order the diagnosis prints them: a check's number is its position
    /// here, plus one.
    pub const ALL: [CheckId; 12] = [
        CheckId::User,
        CheckId::Instance,
        CheckId::Ownership,
        CheckId::Policy,
        CheckId::Rights,
        CheckId::Reachability,
        CheckId::Simulator,
        CheckId::Trust,
        CheckId::Kinds,
        CheckId::Logging,
        CheckId::RunAs,
        CheckId::LaunchEvents,
    ];

    /// The number the diagnosis prints beside it.
    pub fn number(self) -> usize {
        CheckId::ALL
            .iter()
            .position(|id| *id == self)
            .map_or(0, |at| at + 1)
    }

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
    pub(crate) fn pass(id: CheckId, detail: impl Into<String>) -> Self {
        Self {
            id,
            outcome: CheckOutcome::Pass,
            detail: detail.into(),
        }
    }

    pub(crate) fn fail(id: CheckId, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            id,
            outcome: CheckOutcome::Fail { fix: fix.into() },
            detail: detail.into(),
        }
    }

    pub(crate) fn not_run(id: CheckId, detail: impl Into<String>, fix: Option<String>) -> Self {
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

impl Diagnosis {
    pub(crate) fn new(user: &str, instance: &str, region: &str) -> Self {
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

    pub(crate) fn push(&mut self, check: Check) {
        self.checks.push(check);
    }

    /// Denied: the remaining checks need a live instance.
    pub(crate) fn without_instance(mut self, why: &str) -> Self {
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

    pub(crate) fn finish(mut self, verdict: Verdict, actions: Actions) -> Self {
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
        for check in &self.checks {
            let mark = match check.outcome {
                CheckOutcome::Pass => "✓",
                CheckOutcome::Fail { .. } => "✗",
                CheckOutcome::NotRun { .. } => "?",
            };
            writeln!(
                f,
                "{mark} {}. {:<16} {}",
                check.id.number(),
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
