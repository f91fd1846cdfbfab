//! Owner tagging: CloudTrail `RunInstances` in, `AwsUserId` tags out.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::{info, warn};

use super::role_resolver::RoleIdCache;
use crate::config::Config;
use crate::domain::events::{parse_envelope, CloudTrailDetail};
use crate::domain::ids::{InstanceId, InstanceState};
use crate::domain::outcome::{Outcome, Skipped, Status};
use crate::domain::ownership::{self, Decision};
use crate::domain::reason::{Reason, ReasonCode};
use crate::error::Error;
use crate::ports::{InstanceDirectory, InstanceTagger, RoleDirectory};

/// Everything the function needs, built once per process.
pub struct OwnerTagger<E, R> {
    config: Config,
    ec2: E,
    iam: R,
    role_id: RoleIdCache,
}

impl<E, R> OwnerTagger<E, R>
where
    E: InstanceDirectory + InstanceTagger + Sync,
    R: RoleDirectory + Sync,
{
    pub fn new(config: Config, ec2: E, iam: R) -> Self {
        let role_id = RoleIdCache::new(&config);
        Self {
            config,
            ec2,
            iam,
            role_id,
        }
    }

    /// Handle one EventBridge event. `Err` only for failures a later delivery may fix or an
    /// operator must see (AWS errors, a missing role); invalid events are `Ok(ignored)`.
    pub async fn handle(&self, event: Value) -> Result<Outcome, Error> {
        self.handle_at(event, Utc::now()).await
    }

    pub async fn handle_at(&self, event: Value, now: DateTime<Utc>) -> Result<Outcome, Error> {
        let envelope = match parse_envelope(event) {
            Ok(envelope) => envelope,
            Err(reason) => return Ok(ignored(None, reason)),
        };
        let event_id = envelope.id.clone();
        let event_id = event_id.as_deref();
        let detail: CloudTrailDetail = match serde_json::from_value(envelope.detail) {
            Ok(detail) => detail,
            Err(e) => {
                return Ok(ignored(
                    event_id,
                    Reason::new(
                        ReasonCode::Malformed,
                        format!("malformed CloudTrail detail: {e}"),
                    ),
                ))
            }
        };
        if envelope.source != "aws.ec2"
            || detail.event_source.as_deref() != Some("ec2.amazonaws.com")
        {
            return Ok(ignored(
                event_id,
                Reason::new(
                    ReasonCode::OtherEvent,
                    format!(
                        "not an EC2 API call (source {:?}, eventSource {:?})",
                        envelope.source, detail.event_source
                    ),
                ),
            ));
        }
        let launch = match ownership::screen(&detail, &self.config) {
            Ok(launch) => launch,
            Err(reason) => return Ok(ignored(event_id, reason)),
        };
        let role_id = self.role_id.get(&self.iam).await?;

        let launcher = launch.users_role_session.as_ref();
        let mut decisions: BTreeMap<InstanceId, Decision> = launch
            .instances
            .iter()
            .map(|i| {
                (
                    i.instance_id.clone(),
                    ownership::decide(&i.tags, launcher, role_id, &self.config, false),
                )
            })
            .collect();
        let mut skipped = launch.rejected.clone();

        let lookups: Vec<InstanceId> = decisions
            .iter()
            .filter(|(_, d)| **d == Decision::Lookup)
            .map(|(id, _)| id.clone())
            .collect();
        if !lookups.is_empty() {
            let found = self.ec2.describe_instances(&lookups).await?;
            let mut missing = Vec::new();
            for id in lookups {
                let gone = |text: String| Decision::Skip {
                    reason: Reason::new(ReasonCode::InstanceGone, text),
                };
                let decision = match found.iter().find(|i| i.instance_id == id) {
                    Some(i)
                        if matches!(
                            i.state,
                            InstanceState::Terminated | InstanceState::ShuttingDown
                        ) =>
                    {
                        gone(format!("instance is {}", i.state))
                    }
                    Some(i) => ownership::decide(&i.tags, launcher, role_id, &self.config, true),
                    None => {
                        missing.push(id.to_string());
                        gone("instance no longer exists in EC2".into())
                    }
                };
                decisions.insert(id, decision);
            }
            if !missing.is_empty() && ownership::within_consistency_window(envelope.time, now) {
                return Err(Error::InstancesNotYetVisible {
                    instance_ids: missing,
                });
            }
        }

        let writes = ownership::group_writes(decisions.iter());
        for (value, ids) in &writes {
            self.ec2
                .create_tag(ids, &self.config.user_id_tag_key, &value.to_string())
                .await?;
        }

        let mut outcome = Outcome::empty(Status::Ignored);
        for (id, decision) in decisions {
            match decision {
                Decision::Tag { value } => {
                    info!(event_id, instance_id = %id, decision = "tagged", value = %value);
                    outcome.changed.push(id.to_string());
                }
                Decision::AlreadyTagged { value } => {
                    info!(event_id, instance_id = %id, decision = "unchanged", value = %value);
                    outcome.unchanged.push(id.to_string());
                }
                Decision::Skip { reason } => skipped.push(Skipped::new(id.to_string(), reason)),
                // Every lookup was decided above; never write for an undecided instance.
                Decision::Lookup => skipped.push(Skipped::new(
                    id.to_string(),
                    Reason::new(ReasonCode::NoOwnerTag, "owner could not be determined"),
                )),
            }
        }
        for skip in &skipped {
            warn!(event_id, instance_id = %skip.instance_id, decision = "skipped", code = %skip.reason.code, reason = %skip.reason);
        }
        outcome.skipped = skipped;
        outcome.counts.instances_tagged = outcome.changed.len();
        outcome.status = if !outcome.changed.is_empty() {
            Status::Changed
        } else if !outcome.unchanged.is_empty() {
            Status::Unchanged
        } else {
            // Counted under the first instance's reason: one launch, one cause in practice.
            outcome.code = outcome.skipped.first().map(|s| s.reason.code);
            Status::Ignored
        };
        outcome.reason = summary(&outcome, &self.config.user_id_tag_key);
        Ok(outcome)
    }
}

/// Log an ignored event and build its outcome.
pub(crate) fn ignored(event_id: Option<&str>, reason: Reason) -> Outcome {
    info!(event_id, decision = "ignored", code = %reason.code, reason = %reason);
    Outcome::ignored(reason)
}

fn summary(outcome: &Outcome, key: &str) -> String {
    let mut parts = Vec::new();
    if !outcome.changed.is_empty() {
        parts.push(format!(
            "tagged {} instance(s) with {key}",
            outcome.changed.len()
        ));
    }
    if !outcome.unchanged.is_empty() {
        parts.push(format!(
            "{} instance(s) already tagged",
            outcome.unchanged.len()
        ));
    }
    for skip in &outcome.skipped {
        parts.push(format!("skipped {}: {}", skip.instance_id, skip.reason));
    }
    parts.join("; ")
}
