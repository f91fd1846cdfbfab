//! Check 6: Session Manager can reach the node.

use crate::app::doctor::context::Subject;
use crate::app::doctor::report::{Check, CheckId};
use crate::app::regions::RegionalClients;
use crate::config::Config;
use crate::domain::ids::InstanceId;
use crate::error::Error;
use crate::ports::PingStatus;
use crate::ports::{InRegion, ManagedNode, ManagedNodes};

/// Check 6: Session Manager can reach the node.
pub(crate) async fn check_reachability<S>(config: &Config, ssm: &S, subject: &Subject) -> Check
where
    S: ManagedNodes + InRegion + Clone + Send + Sync,
{
    let ssm_here = RegionalClients::new(ssm.clone(), config).get(Some(&subject.region));
    reachability(
        ssm_here.managed_node(&subject.instance_id).await,
        &subject.instance_id,
    )
}

/// Check 6: Session Manager can reach the node.
pub(crate) fn reachability(
    found: Result<Option<ManagedNode>, Error>,
    instance: &InstanceId,
) -> Check {
    let connect = "make sure the instance has a profile with AmazonSSMManagedInstanceCore (or Default Host Management Configuration), the SSM agent runs, and it reaches the ssm, ssmmessages and ec2messages endpoints (VPC endpoints or a NAT)";
    match found {
        Ok(Some(node)) => {
            let about = [
                node.agent_version.as_ref().map(|v| format!("agent {v}")),
                node.platform.clone(),
                node.last_ping.as_ref().map(|t| format!("last ping {t}")),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
            if node.ping_status == PingStatus::Online {
                Check::pass(
                    CheckId::Reachability,
                    format!("{instance} is a managed node, Online ({about})"),
                )
            } else {
                Check::fail(
                    CheckId::Reachability,
                    format!(
                        "{instance} is a managed node, but {} ({about})",
                        node.ping_status
                    ),
                    connect,
                )
            }
        }
        Ok(None) => Check::fail(
            CheckId::Reachability,
            format!(
                "{instance} is not a managed node in this region: Session Manager cannot reach it"
            ),
            connect,
        ),
        Err(err) => Check::not_run(
            CheckId::Reachability,
            format!("not checked: {}", err.in_words()),
            err.is_access_denied()
                .then(|| "allow ssm:DescribeInstanceInformation to whoever runs the doctor".into()),
        ),
    }
}
