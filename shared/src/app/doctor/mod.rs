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
//!
//! Layout: `report` (the diagnosis and its lines), `context` (what the checks share, read
//! once), `checks/<name>.rs` (one file per check, in `CheckId`'s order), `audit` and `verify`.
//! Adding a check is one file in `checks/`, one `CheckId` variant and one line below.

pub mod audit;
mod checks;
mod context;
mod node;
mod report;
pub mod verify;

pub use crate::ports::DoctorIam;
pub use checks::session_kinds::KindQuestion;
pub use context::{Question, Services};
pub use report::{ActionVerdict, Actions, Check, CheckId, CheckOutcome, Diagnosis, Verdict};

use crate::app::regions::RegionalClients;
use crate::config::{is_region_name, Config};
use crate::domain::ids::InstanceState;
use crate::error::Error;
use crate::ports::{
    EnabledRegions, InRegion, InstanceDirectory, LoggingTargets, ManagedNodes,
    SessionDocumentReader, TrailDirectory,
};
use checks::{
    end_user_policy, instance, launch_events, logging, ownership, reachability, rights, run_as,
    session_kinds, simulator, trust, user,
};
use context::OwnEvaluations;

/// Why the doctor could not diagnose: exit status 2.
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    /// A USER, INSTANCE_ID or region that can never be valid.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Aws(#[from] Error),
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

/// Diagnose the question. Reads only.
pub async fn diagnose<E, I, S, L, T>(
    config: &Config,
    question: &Question<'_>,
    services: Services<'_, E, I, S, L, T>,
) -> Result<Diagnosis, DoctorError>
where
    E: InstanceDirectory + InRegion + EnabledRegions + Clone + Send + Sync,
    I: DoctorIam,
    S: ManagedNodes
        + crate::ports::HybridNodes
        + crate::ports::ActivationTier
        + SessionDocumentReader
        + InRegion
        + Clone
        + Send
        + Sync,
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
    // A managed node outside EC2 has checks of its own.
    if let Ok(node) = crate::domain::ids::ManagedNodeId::parse(question.instance) {
        return node::diagnose_node(config, question, &node, iam, ssm).await;
    }
    let subject = context::subject(config, question, ec2, iam).await?;
    let mut report = Diagnosis::new(question.user, question.instance, &subject.region);
    report.push(user::check_user(config, &subject).into());
    // Needs no instance; printed last, so that the first seven keep their numbers.
    let trust = Check::from(trust::trust(&subject.facts));

    let (instance_check, described) = instance::check_instance(config, ec2, &subject).await?;
    report.push(instance_check.into());
    let ssm_here = RegionalClients::new(ssm.clone(), config).get(Some(&subject.region));
    let logging_here = RegionalClients::new(logging.clone(), config).get(Some(&subject.region));
    let shell = logging::shell_preferences(config, &ssm_here).await?;
    let session_logging =
        Check::from(logging::logging(&logging_here, &subject.region, &shell).await);
    let run_as = Check::from(run_as::run_as(
        &shell,
        subject.facts.trust_policy.as_deref(),
    ));
    let trails_here = RegionalClients::new(trails.clone(), config);
    let launch_events =
        Check::from(launch_events::launch_events(&trails_here, &subject.region).await);
    let described = match described {
        Ok(described) => described,
        Err(why) => {
            let last = [trust, session_logging, run_as, launch_events];
            return Ok(without_instance(report, &why, last));
        }
    };

    report.push(ownership::ownership(&described.tags, &subject, config).into());
    let documents = iam.identity_policies(&subject.facts.role.name).await?;
    let own = OwnEvaluations::new(config, &documents, &subject, &described.tags);
    report.push(end_user_policy::end_user_policy(config, &documents, &subject, &own).into());
    report.push(
        rights::check_rights(config, iam, &subject, &documents, &own)
            .await?
            .into(),
    );
    let reachability = reachability::check_reachability(config, ssm, &subject).await;
    let unreachable = reachability.ok() == Some(false);
    report.push(reachability);
    let (simulator, actions) =
        simulator::check_simulator(config, iam, &subject, &described, &own).await;
    report.push(simulator);
    report.push(trust);
    report.push(
        session_kinds::session_kinds(
            config,
            &ssm_here,
            &subject,
            &described.tags,
            &documents,
            &question.kinds,
        )
        .await?
        .into(),
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

/// No live instance: the checks that need one are not run; trust, logging, run-as and launch
/// events (in that order) still are.
fn without_instance(report: Diagnosis, why: &str, last: [Check; 4]) -> Diagnosis {
    let [trust, session_logging, run_as, launch_events] = last;
    let mut report = report.without_instance(why);
    report.push(trust);
    report.push(Check::not_run(
        CheckId::Kinds,
        format!("not checked: {why}"),
        None,
    ));
    report.push(session_logging);
    report.push(run_as);
    report.push(launch_events);
    report
}

#[cfg(test)]
mod tests;
