//! Check 12: whether a logging trail delivers the region's management events (RunInstances) to
//! EventBridge, so that a launch there is tagged within seconds rather than by the next sweep.

use crate::app::doctor::report::{Check, CheckId};
use crate::app::regions::RegionalClients;
use crate::ports::{InRegion, TrailDirectory};

/// What check 12 found in the instance's region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LaunchEventsFinding {
    /// A logging trail takes the region's write management events.
    Delivered { region: String },
    /// No trail does: launches there wait for the sweep.
    NoTrail { region: String },
    /// The trails could not be read.
    Unreadable { why: String },
}

/// Read the region's trails.
pub(crate) async fn launch_events<T>(
    trails: &RegionalClients<T>,
    region: &str,
) -> LaunchEventsFinding
where
    T: TrailDirectory + InRegion + Clone + Send + Sync,
{
    let region = region.to_owned();
    match crate::app::trails::regions_without_trail(trails, std::slice::from_ref(&region)).await {
        Ok(left) if left.is_empty() => LaunchEventsFinding::Delivered { region },
        Ok(_) => LaunchEventsFinding::NoTrail { region },
        Err(err) => LaunchEventsFinding::Unreadable {
            why: err.to_string(),
        },
    }
}

/// The wording of check 12.
impl From<LaunchEventsFinding> for Check {
    fn from(finding: LaunchEventsFinding) -> Self {
        match finding {
            LaunchEventsFinding::Delivered { region } => Check::pass(
                CheckId::LaunchEvents,
                format!("a logging trail delivers {region}'s management events (RunInstances) to EventBridge: launches are tagged within seconds"),
            ),
            LaunchEventsFinding::NoTrail { region } => Check::fail(
                CheckId::LaunchEvents,
                format!("no logging trail delivers {region}'s write management events to EventBridge: a launch there is tagged only by the next tag sweep (TagSweepSchedule), and its user waits until then"),
                "deploy with CreateTrail=true, or have a multi-region trail log write management events (aws cloudtrail create-trail --is-multi-region-trail, then start-logging)",
            ),
            LaunchEventsFinding::Unreadable { why } => Check::not_run(
                CheckId::LaunchEvents,
                format!("the trails could not be read: {why}"),
                Some("grant cloudtrail:DescribeTrails, GetTrailStatus and GetEventSelectors (the template's DoctorPolicy does)".into()),
            ),
        }
    }
}
