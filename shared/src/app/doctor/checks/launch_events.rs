//! Check 12: a logging trail delivers the region's launches to EventBridge.

use crate::app::doctor::report::{Check, CheckId};
use crate::app::regions::RegionalClients;
use crate::ports::{InRegion, TrailDirectory};

/// Check 12: whether a logging trail delivers the region's management events (RunInstances) to
/// EventBridge, so that a launch there is tagged within seconds rather than by the next sweep.
pub(crate) async fn launch_events<T>(trails: &RegionalClients<T>, region: &str) -> Check
where
    T: TrailDirectory + InRegion + Clone + Send + Sync,
{
    match crate::app::trails::regions_without_trail(trails, &[region.to_owned()]).await {
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
