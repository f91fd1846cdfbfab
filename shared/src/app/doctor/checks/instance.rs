//! Check 2: the instance.

use crate::app::doctor::context::Subject;
use crate::app::doctor::report::{Check, CheckId};
use crate::app::regions::RegionalClients;
use crate::config::Config;
use crate::domain::ids::{InstanceId, InstanceState};
use crate::error::Error;
use crate::ports::{DescribedInstance, EnabledRegions, InRegion, InstanceDirectory};

/// What check 2 found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InstanceFinding {
    /// Not in the asked region; `elsewhere` is the covered region that has it, if any.
    NotFound {
        instance: InstanceId,
        region: String,
        elsewhere: Option<String>,
    },
    /// Terminated or shutting down: Session Manager cannot reach it.
    Gone {
        instance: InstanceId,
        region: String,
        state: InstanceState,
    },
    /// Live but not running (pending, stopping, stopped).
    NotRunning {
        instance: InstanceId,
        region: String,
        state: InstanceState,
    },
    Running {
        instance: InstanceId,
        region: String,
    },
}

/// Check 2: the instance. With the finding, the live instance, or why the checks that need one
/// cannot run.
pub(crate) async fn check_instance<E>(
    config: &Config,
    ec2: &E,
    subject: &Subject,
) -> Result<(InstanceFinding, Result<DescribedInstance, String>), Error>
where
    E: InstanceDirectory + InRegion + EnabledRegions + Clone + Send + Sync,
{
    let (instance, region) = (subject.instance_id.clone(), subject.region.clone());
    let regional = RegionalClients::new(ec2.clone(), config);
    let described = regional
        .get(Some(&region))
        .describe_instances(std::slice::from_ref(&instance))
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
                .describe_instances(std::slice::from_ref(&instance))
                .await?;
            if !found.is_empty() {
                elsewhere = Some(other);
                break;
            }
        }
        return Ok((
            InstanceFinding::NotFound {
                instance,
                region,
                elsewhere,
            },
            Err("the instance does not exist".into()),
        ));
    };
    let state = described.state;
    Ok(match state {
        InstanceState::Running => (InstanceFinding::Running { instance, region }, Ok(described)),
        state if !state.is_live() => (
            InstanceFinding::Gone {
                instance,
                region,
                state,
            },
            Err(format!("the instance is {}", state.as_str())),
        ),
        state => (
            InstanceFinding::NotRunning {
                instance,
                region,
                state,
            },
            Ok(described),
        ),
    })
}

/// The wording of check 2.
impl From<InstanceFinding> for Check {
    fn from(finding: InstanceFinding) -> Self {
        match finding {
            InstanceFinding::NotFound {
                instance,
                region,
                elsewhere: Some(other),
            } => Check::fail(
                CheckId::Instance,
                format!("{instance} is not in {region}; it is in {other}"),
                format!("run the doctor with --region {other}"),
            ),
            InstanceFinding::NotFound {
                instance, region, ..
            } => Check::fail(
                CheckId::Instance,
                format!("no instance {instance} in {region} or any covered region"),
                "check the instance id and the region (--region)",
            ),
            InstanceFinding::Gone {
                instance,
                region,
                state,
            } => Check::fail(
                CheckId::Instance,
                format!(
                    "{instance} is {} in {region}: Session Manager cannot reach it",
                    state.as_str()
                ),
                "launch a new instance through the portal",
            ),
            InstanceFinding::NotRunning {
                instance,
                region,
                state,
            } => Check::fail(
                CheckId::Instance,
                format!("{instance} is {} in {region}", state.as_str()),
                match state {
                    InstanceState::Pending => "wait until it is running",
                    _ => "start it (aws ec2 start-instances), then try again",
                },
            ),
            InstanceFinding::Running { instance, region } => Check::pass(
                CheckId::Instance,
                format!("{instance} is running in {region}"),
            ),
        }
    }
}
