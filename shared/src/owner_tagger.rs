//! The owner-tagging function: CloudTrail `RunInstances` in, `AwsUserId` tags out.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::{info, warn};

use crate::config::Config;
use crate::error::Error;
use crate::event::{parse_envelope, CloudTrailDetail};
use crate::outcome::{Outcome, Status};
use crate::owner_tag::{self, Decision, Skipped};
use crate::ports::{InstanceDirectory, InstanceTagger, RoleDirectory};
use crate::role_id::RoleIdCache;

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
            Err(reason) => return Ok(log_ignored(None, reason)),
        };
        let event_id = envelope.id.clone();
        let detail: CloudTrailDetail = match serde_json::from_value(envelope.detail) {
            Ok(detail) => detail,
            Err(e) => {
                return Ok(log_ignored(
                    event_id.as_deref(),
                    format!("malformed CloudTrail detail: {e}"),
                ))
            }
        };
        if envelope.source != "aws.ec2"
            || detail.event_source.as_deref() != Some("ec2.amazonaws.com")
        {
            return Ok(log_ignored(
                event_id.as_deref(),
                format!(
                    "not an EC2 API call (source {:?}, eventSource {:?})",
                    envelope.source, detail.event_source
                ),
            ));
        }
        let launch = match owner_tag::screen(&detail, &self.config) {
            Ok(launch) => launch,
            Err(reason) => return Ok(log_ignored(event_id.as_deref(), reason)),
        };
        let role_id = self.role_id.get(&self.iam).await?;

        let launcher = launch.users_role_session.as_ref();
        let mut decisions: BTreeMap<String, Decision> = launch
            .instances
            .iter()
            .map(|i| {
                (
                    i.instance_id.clone(),
                    owner_tag::decide(&i.tags, launcher, role_id, &self.config, false),
                )
            })
            .collect();
        let mut skipped = launch.rejected.clone();

        let lookups: Vec<String> = decisions
            .iter()
            .filter(|(_, d)| **d == Decision::Lookup)
            .map(|(id, _)| id.clone())
            .collect();
        if !lookups.is_empty() {
            let found = self.ec2.describe_instances(&lookups).await?;
            let mut missing = Vec::new();
            for id in lookups {
                let decision = match found.iter().find(|i| i.instance_id == id) {
                    Some(i) if i.state == "terminated" || i.state == "shutting-down" => {
                        Decision::Skip {
                            reason: format!("instance is {}", i.state),
                        }
                    }
                    Some(i) => owner_tag::decide(&i.tags, launcher, role_id, &self.config, true),
                    None => {
                        missing.push(id.clone());
                        Decision::Skip {
                            reason: "instance no longer exists in EC2".into(),
                        }
                    }
                };
                decisions.insert(id, decision);
            }
            if !missing.is_empty() && owner_tag::within_consistency_window(envelope.time, now) {
                return Err(Error::InstancesNotYetVisible {
                    instance_ids: missing,
                });
            }
        }

        let writes = owner_tag::group_writes(decisions.iter().map(|(id, d)| (id.as_str(), d)));
        for (value, ids) in &writes {
            let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
            self.ec2
                .create_tag(&ids, &self.config.user_id_tag_key, value)
                .await?;
        }

        let mut outcome = Outcome::ignored(String::new());
        for (id, decision) in decisions {
            match decision {
                Decision::Tag { value } => {
                    info!(event_id, instance_id = %id, decision = "tagged", value = %value);
                    outcome.changed.push(id);
                }
                Decision::AlreadyTagged { value } => {
                    info!(event_id, instance_id = %id, decision = "unchanged", value = %value);
                    outcome.unchanged.push(id);
                }
                Decision::Skip { reason } => skipped.push(Skipped {
                    instance_id: id,
                    reason,
                }),
                // Every lookup was decided above; never write for an undecided instance.
                Decision::Lookup => skipped.push(Skipped {
                    instance_id: id,
                    reason: "owner could not be determined".into(),
                }),
            }
        }
        for skip in &skipped {
            warn!(event_id, instance_id = %skip.instance_id, decision = "skipped", reason = %skip.reason);
        }
        outcome.skipped = skipped;
        outcome.counts.instances_tagged = outcome.changed.len();
        outcome.status = if !outcome.changed.is_empty() {
            Status::Changed
        } else if !outcome.unchanged.is_empty() {
            Status::Unchanged
        } else {
            Status::Ignored
        };
        outcome.reason = summary(&outcome, &self.config.user_id_tag_key);
        Ok(outcome)
    }
}

fn log_ignored(event_id: Option<&str>, reason: String) -> Outcome {
    info!(event_id, decision = "ignored", reason = %reason);
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
