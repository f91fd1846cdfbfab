//! Check 6: Session Manager can reach the node.

use crate::app::doctor::context::Subject;
use crate::app::doctor::report::{Check, CheckId};
use crate::app::regions::RegionalClients;
use crate::config::Config;
use crate::domain::ids::InstanceId;
use crate::error::Error;
use crate::ports::PingStatus;
use crate::ports::{InRegion, ManagedNode, ManagedNodes};

/// What check 6 found about the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReachabilityFinding {
    /// Systems Manager knows the node; `about` is its agent, platform and last ping, in words.
    Managed {
        instance: InstanceId,
        status: PingStatus,
        about: String,
    },
    /// Systems Manager does not know the node in this region.
    NotManaged { instance: InstanceId },
    /// The node could not be read: why, and whether the caller was refused.
    Unread { why: String, access_denied: bool },
}

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

/// Judge Systems Manager's answer about the node.
pub(crate) fn reachability_finding(
    found: Result<Option<ManagedNode>, Error>,
    instance: &InstanceId,
) -> ReachabilityFinding {
    match found {
        Ok(Some(node)) => ReachabilityFinding::Managed {
            instance: instance.clone(),
            about: [
                node.agent_version.as_ref().map(|v| format!("agent {v}")),
                node.platform.clone(),
                node.last_ping.as_ref().map(|t| format!("last ping {t}")),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", "),
            status: node.ping_status,
        },
        Ok(None) => ReachabilityFinding::NotManaged {
            instance: instance.clone(),
        },
        Err(err) => ReachabilityFinding::Unread {
            why: err.in_words(),
            access_denied: err.is_access_denied(),
        },
    }
}

/// Check 6's line for Systems Manager's answer.
pub(crate) fn reachability(
    found: Result<Option<ManagedNode>, Error>,
    instance: &InstanceId,
) -> Check {
    reachability_finding(found, instance).into()
}

/// The wording of check 6.
impl From<ReachabilityFinding> for Check {
    fn from(finding: ReachabilityFinding) -> Self {
        let connect = "make sure the instance has a profile with AmazonSSMManagedInstanceCore (or Default Host Management Configuration), the SSM agent runs, and it reaches the ssm, ssmmessages and ec2messages endpoints (VPC endpoints or a NAT)";
        match finding {
            ReachabilityFinding::Managed {
                instance,
                status: PingStatus::Online,
                about,
            } => Check::pass(
                CheckId::Reachability,
                format!("{instance} is a managed node, Online ({about})"),
            ),
            ReachabilityFinding::Managed {
                instance,
                status,
                about,
            } => Check::fail(
                CheckId::Reachability,
                format!("{instance} is a managed node, but {status} ({about})"),
                connect,
            ),
            ReachabilityFinding::NotManaged { instance } => Check::fail(
                CheckId::Reachability,
                format!(
                    "{instance} is not a managed node in this region: Session Manager cannot reach it"
                ),
                connect,
            ),
            ReachabilityFinding::Unread { why, access_denied } => Check::not_run(
                CheckId::Reachability,
                format!("not checked: {why}"),
                access_denied
                    .then(|| "allow ssm:DescribeInstanceInformation to whoever runs the doctor".into()),
            ),
        }
    }
}
