//! CloudTrail: which trails deliver launches to EventBridge in a region (moto has
//! `DescribeTrails`, `GetTrailStatus` and `GetEventSelectors`).

use tracing::instrument;

use super::sdk_error::from_sdk;
use crate::domain::trails::{BasicSelector, FieldSelector, Selectors, Trail};
use crate::error::Error;
use crate::ports::TrailDirectory;

const DESCRIBE: &str = "cloudtrail:DescribeTrails";
const STATUS: &str = "cloudtrail:GetTrailStatus";
const SELECTORS: &str = "cloudtrail:GetEventSelectors";

impl TrailDirectory for aws_sdk_cloudtrail::Client {
    /// The trails this region sees: its own and the shadows of multi-region trails (an
    /// organisation's trail included), each with its status and selectors: 1 + 2 per trail calls.
    #[instrument(skip(self))]
    async fn trails(&self) -> Result<Vec<Trail>, Error> {
        let listed = self
            .describe_trails()
            .include_shadow_trails(true)
            .send()
            .await
            .map_err(|e| from_sdk(DESCRIBE, e))?;
        let mut trails = Vec::new();
        for trail in listed.trail_list() {
            let arn = trail
                .trail_arn()
                .ok_or_else(|| Error::unreadable(DESCRIBE, "a trail's ARN"))?;
            let home_region = trail
                .home_region()
                .ok_or_else(|| Error::unreadable(DESCRIBE, "a trail's home region"))?;
            let status = self
                .get_trail_status()
                .name(arn)
                .send()
                .await
                .map_err(|e| from_sdk(STATUS, e))?;
            let logging = status
                .is_logging()
                .ok_or_else(|| Error::unreadable(STATUS, "IsLogging"))?;
            let selected = self
                .get_event_selectors()
                .trail_name(arn)
                .send()
                .await
                .map_err(|e| from_sdk(SELECTORS, e))?;
            let own = !selected.event_selectors().is_empty()
                || !selected.advanced_event_selectors().is_empty();
            // A trail made without selectors of its own logs every management event, reads and
            // writes (CloudTrail's default), and DescribeTrails says so. AWS then answers the
            // default selector; moto answers none (and always says HasCustomEventSelectors
            // false), so the default is taken only when both say there is nothing of its own.
            let selectors = if own || trail.has_custom_event_selectors() != Some(false) {
                selectors(&selected)
            } else {
                Selectors::cloudtrail_default()
            };
            trails.push(Trail {
                arn: arn.to_owned(),
                home_region: home_region.to_owned(),
                multi_region: trail.is_multi_region_trail().unwrap_or(false),
                logging,
                selectors,
            });
        }
        Ok(trails)
    }
}

fn selectors(
    answer: &aws_sdk_cloudtrail::operation::get_event_selectors::GetEventSelectorsOutput,
) -> Selectors {
    if !answer.advanced_event_selectors().is_empty() {
        return Selectors::Advanced(
            answer
                .advanced_event_selectors()
                .iter()
                .map(|s| {
                    s.field_selectors()
                        .iter()
                        .map(|f| FieldSelector {
                            field: f.field().to_owned(),
                            equals: f.equals().to_vec(),
                            not_equals: f.not_equals().to_vec(),
                        })
                        .collect()
                })
                .collect(),
        );
    }
    Selectors::Basic(
        answer
            .event_selectors()
            .iter()
            .map(|s| BasicSelector {
                // CloudTrail's default for a selector that does not say is true, All
                include_management_events: s.include_management_events().unwrap_or(true),
                read_write_type: s.read_write_type().map_or("All", |t| t.as_str()).to_owned(),
                exclude_sources: s.exclude_management_event_sources().to_vec(),
            })
            .collect(),
    )
}
