//! `ShareExpiries` on EventBridge Scheduler: one one-time schedule per shared instance, named
//! after the instance and its region, that puts the product's "Share Expiry" event on the home
//! region's bus at the share's end and then deletes itself. A later share of the same instance
//! moves the schedule (Update when Create finds it).

use aws_sdk_scheduler::types::{
    ActionAfterCompletion, EventBridgeParameters, FlexibleTimeWindow, FlexibleTimeWindowMode,
    Target,
};
use chrono::{DateTime, Utc};
use tracing::instrument;

use super::sdk_error::from_sdk;
use crate::config::ExpirySchedule;
use crate::domain::events::{ShareExpiryDetail, SHARE_EXPIRY, SHARE_EXPIRY_SOURCE};
use crate::domain::ids::{InstanceId, Region};
use crate::error::Error;
use crate::ports::ShareExpiries;

/// The schedules of one deployment: its group, the role they run as, the bus they send to.
#[derive(Debug, Clone)]
pub struct ExpirySchedules {
    client: aws_sdk_scheduler::Client,
    at: ExpirySchedule,
}

impl ExpirySchedules {
    pub fn new(client: aws_sdk_scheduler::Client, at: ExpirySchedule) -> Self {
        Self { client, at }
    }
}

/// `share-<region>-<instance id>`: at most 46 characters of Scheduler's 64.
pub fn schedule_name(instance: &InstanceId, region: &Region) -> String {
    format!("share-{region}-{instance}")
}

/// Scheduler's one-time expression, in UTC to the second.
pub fn at_expression(at: DateTime<Utc>) -> String {
    format!("at({})", at.format("%Y-%m-%dT%H:%M:%S"))
}

fn permanent(message: String) -> Error {
    Error::Unsupported { message }
}

impl ExpirySchedules {
    fn parts(
        &self,
        instance: &InstanceId,
        region: &Region,
    ) -> Result<(FlexibleTimeWindow, Target), Error> {
        let detail = ShareExpiryDetail {
            instance_id: instance.to_string(),
            region: region.to_string(),
        };
        let input = serde_json::to_string(&detail)
            .map_err(|e| permanent(format!("share expiry detail: {e}")))?;
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| permanent(format!("schedule window: {e}")))?;
        let target = Target::builder()
            .arn(&self.at.bus_arn)
            .role_arn(&self.at.role_arn)
            .input(input)
            .event_bridge_parameters(
                EventBridgeParameters::builder()
                    .source(SHARE_EXPIRY_SOURCE)
                    .detail_type(SHARE_EXPIRY)
                    .build()
                    .map_err(|e| permanent(format!("schedule target: {e}")))?,
            )
            .build()
            .map_err(|e| permanent(format!("schedule target: {e}")))?;
        Ok((window, target))
    }
}

impl ShareExpiries for ExpirySchedules {
    #[instrument(skip(self))]
    async fn schedule_expiry(
        &self,
        instance: &InstanceId,
        region: &str,
        at: DateTime<Utc>,
    ) -> Result<(), Error> {
        let region = Region::parse(region).map_err(|problem| {
            permanent(format!("no region for {instance}'s schedule: {problem}"))
        })?;
        let name = schedule_name(instance, &region);
        let (window, target) = self.parts(instance, &region)?;
        let created = self
            .client
            .create_schedule()
            .name(&name)
            .group_name(&self.at.group)
            .schedule_expression(at_expression(at))
            .schedule_expression_timezone("UTC")
            .flexible_time_window(window.clone())
            .target(target.clone())
            .action_after_completion(ActionAfterCompletion::Delete)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            // The instance was shared before: move its schedule.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conflict_exception()) =>
            {
                self.client
                    .update_schedule()
                    .name(&name)
                    .group_name(&self.at.group)
                    .schedule_expression(at_expression(at))
                    .schedule_expression_timezone("UTC")
                    .flexible_time_window(window)
                    .target(target)
                    .action_after_completion(ActionAfterCompletion::Delete)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| from_sdk("scheduler:UpdateSchedule", e))
            }
            Err(err) => Err(from_sdk("scheduler:CreateSchedule", err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_and_expression_are_what_scheduler_accepts() {
        let instance = InstanceId::parse("i-0a1b2c3d4e5f60008").unwrap();
        let region = Region::parse("ap-southeast-4").unwrap();
        let name = schedule_name(&instance, &region);
        assert_eq!(name, "share-ap-southeast-4-i-0a1b2c3d4e5f60008");
        assert!(name.len() <= 64);
        let at = DateTime::parse_from_rfc3339("2026-12-07T03:00:09Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(at_expression(at), "at(2026-12-07T03:00:09)");
    }
}
