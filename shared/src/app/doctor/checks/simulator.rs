//! Check 7: IAM's own answers, compared with the product's.

use std::collections::BTreeMap;

use crate::app::doctor::context::{start_decision, OwnAnswers, OwnEvaluations, Subject};
use crate::app::doctor::report::{ActionVerdict, Actions, Check, CheckId};
use crate::config::Config;
use crate::domain::evaluation::{Decision, Request};
use crate::domain::session_iam::{
    self, RESUME_SESSION, START_SESSION, TERMINATE_SESSION, USER_ID_KEY,
};
use crate::error::Error;
use crate::ports::DoctorIam;
use crate::ports::{DescribedInstance, Simulated, Simulation};

/// Check 7: IAM's own simulator, asked the questions the product answered itself. With its
/// line, the verdict for each action (IAM's where it answered).
pub(crate) async fn check_simulator<I: DoctorIam>(
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
    if let Some(value) = described.tags.get(&config.ownership.user_id_tag_key) {
        instance_question = instance_question.with(
            format!("ssm:resourceTag/{}", config.ownership.user_id_tag_key),
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
    confirmation(&subject.facts.arn, unavailable, &answers, &own.answers())
}

/// What check 7 found: IAM's own answers against the product's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SimulatorFinding {
    /// The simulator did not answer (why; whether the caller was refused).
    NoAnswer {
        role_arn: String,
        why: String,
        access_denied: bool,
    },
    /// IAM agrees with the product; `missing` is context IAM did not have.
    Agrees { iam: Actions, missing: Vec<String> },
    /// IAM disagrees: its answer is the verdict; `matched` are the statements IAM matched.
    Disagrees {
        iam: Actions,
        own: Actions,
        missing: Vec<String>,
        matched: Vec<String>,
    },
}

/// Check 7's line and the verdict for each action (IAM's where it answered).
pub(crate) fn confirmation(
    role_arn: &str,
    unavailable: Option<Error>,
    answers: &[Simulated],
    own: &OwnAnswers,
) -> (Check, Actions) {
    let (finding, actions) = confirmation_finding(role_arn, unavailable, answers, own);
    (finding.into(), actions)
}

/// Check 7: IAM's own answers (StartSession on the instance, on the document, TerminateSession,
/// ResumeSession, in that order), compared with the product's. IAM's answer is the verdict.
pub(crate) fn confirmation_finding(
    role_arn: &str,
    unavailable: Option<Error>,
    answers: &[Simulated],
    own: &OwnAnswers,
) -> (SimulatorFinding, Actions) {
    let own_actions = Actions {
        start_session: ActionVerdict::of(own.start),
        terminate_session: ActionVerdict::of(own.terminate),
        resume_session: ActionVerdict::of(own.resume),
    };
    let decisions: Vec<Decision> = answers.iter().map(|a| a.decision).collect();
    let [instance, document, terminate, resume] = decisions.as_slice() else {
        let (why, access_denied) = match &unavailable {
            Some(err) => (err.in_words(), err.is_access_denied()),
            None => (
                format!("{} answers where 4 were asked", answers.len()),
                false,
            ),
        };
        let finding = SimulatorFinding::NoAnswer {
            role_arn: role_arn.to_owned(),
            why,
            access_denied,
        };
        return (finding, own_actions);
    };
    let iam = Actions {
        start_session: ActionVerdict::of(Some(start_decision(*instance, *document))),
        terminate_session: ActionVerdict::of(Some(*terminate)),
        resume_session: ActionVerdict::of(Some(*resume)),
    };
    let disagree = [
        (own_actions.start_session, iam.start_session),
        (own_actions.terminate_session, iam.terminate_session),
        (own_actions.resume_session, iam.resume_session),
    ]
    .iter()
    .any(|(own, iam)| *own != ActionVerdict::Unknown && own != iam);
    let gather = |field: fn(&Simulated) -> &Vec<String>| -> Vec<String> {
        answers
            .iter()
            .flat_map(|a| field(a).iter().cloned())
            .collect()
    };
    let missing = gather(|a| &a.missing_context);
    let finding = if disagree {
        SimulatorFinding::Disagrees {
            iam,
            own: own_actions,
            missing,
            matched: gather(|a| &a.matched),
        }
    } else {
        SimulatorFinding::Agrees { iam, missing }
    };
    (finding, iam)
}

/// The wording of check 7.
impl From<SimulatorFinding> for Check {
    fn from(finding: SimulatorFinding) -> Self {
        let said = |a: &Actions| {
            format!(
                "StartSession {}, TerminateSession {}, ResumeSession {}",
                a.start_session.as_str(),
                a.terminate_session.as_str(),
                a.resume_session.as_str()
            )
        };
        let context = |missing: &[String]| {
            if missing.is_empty() {
                String::new()
            } else {
                format!(" (context IAM missed: {})", missing.join(", "))
            }
        };
        match finding {
            SimulatorFinding::NoAnswer {
                role_arn,
                why,
                access_denied,
            } => Check::not_run(
                CheckId::Simulator,
                format!("IAM's policy simulator did not answer ({why}); the verdicts are the product's own evaluation"),
                access_denied.then(|| format!("for IAM's own answer, allow iam:SimulatePrincipalPolicy on {role_arn} to whoever runs the doctor")),
            ),
            SimulatorFinding::Agrees { iam, missing } => Check::pass(
                CheckId::Simulator,
                format!(
                    "IAM's policy simulator agrees: {}{}",
                    said(&iam),
                    context(&missing)
                ),
            ),
            SimulatorFinding::Disagrees {
                iam,
                own,
                missing,
                matched,
            } => Check::fail(
                CheckId::Simulator,
                format!(
                    "IAM's policy simulator says {}, where the product's evaluation says {}; IAM's answer is the verdict{}",
                    said(&iam),
                    said(&own),
                    context(&missing)
                ),
                format!(
                    "IAM sees what the product does not model (a permissions boundary, an organisation SCP); the statements IAM matched: {}",
                    if matched.is_empty() { "none".to_owned() } else { matched.join(", ") }
                ),
            ),
        }
    }
}
