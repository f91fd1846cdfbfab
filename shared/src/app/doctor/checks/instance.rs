//! Check 2: the instance.

use crate::app::doctor::context::Subject;
use crate::app::doctor::report::{Check, CheckId};
use crate::app::regions::RegionalClients;
use crate::config::Config;
use crate::domain::ids::InstanceState;
use crate::error::Error;
use crate::ports::{DescribedInstance, EnabledRegions, InRegion, InstanceDirectory};

/// Check 2: the instance. With its line, the live instance, or why the checks that need one
/// cannot run.
pub(crate) async fn check_instance<E>(
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
