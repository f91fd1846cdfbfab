//! Sharing, applied: the owner-tagger writes and removes one instance's guest slots and expiry
//! as `domain::sharing` plans them, one `CreateTags` and one `DeleteTags` at most, and reports
//! each share, end and refusal (logged with a metric name, counted in the outcome).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::domain::ids::{RoleId, TagTarget};
use crate::domain::outcome::{Outcome, Skipped, Status};
use crate::domain::sharing::{plan_share, ShareOutcome, SharePlan, ShareRules, Trigger};
use crate::error::Error;
use crate::ports::{DescribedInstance, InstanceTagger};

/// Plan one instance's share and apply it, adding what was done to `outcome`. On a converge
/// (the sweep) a refusal is not reported again: the owner's request event reported it.
pub(crate) async fn converge_share<E: InstanceTagger>(
    ec2: &E,
    event_id: Option<&str>,
    instance: &DescribedInstance,
    (role, now, trigger): (&RoleId, DateTime<Utc>, Trigger),
    rules: &ShareRules,
    outcome: &mut Outcome,
) -> Result<(), Error> {
    let plan = plan_share(&instance.tags, role, now, trigger, rules);
    if trigger == Trigger::Converge && matches!(plan.outcome, ShareOutcome::Refused(_)) {
        return Ok(());
    }
    apply(ec2, event_id, instance, plan, outcome).await
}

/// Whether a share plan has anything to do on this instance (the sweep keeps only those).
pub(crate) fn needs_work(
    instance: &DescribedInstance,
    role: &RoleId,
    now: DateTime<Utc>,
    rules: &ShareRules,
) -> bool {
    let plan = plan_share(&instance.tags, role, now, Trigger::Converge, rules);
    !plan.put.is_empty() || !plan.remove.is_empty()
}

async fn apply<E: InstanceTagger>(
    ec2: &E,
    event_id: Option<&str>,
    instance: &DescribedInstance,
    plan: SharePlan,
    outcome: &mut Outcome,
) -> Result<(), Error> {
    let id = &instance.instance_id;
    let target = TagTarget::Instance(id.clone());
    // Removals carry the value read, so a tag the owner rewrote since stays.
    let remove: BTreeMap<String, String> = plan
        .remove
        .iter()
        .filter_map(|key| instance.tags.get(key).map(|v| (key.clone(), v.clone())))
        .collect();
    if !plan.put.is_empty() {
        ec2.put_tags(&target, &plan.put).await?;
    }
    if !remove.is_empty() {
        ec2.remove_tags_if_unchanged(&target, &remove).await?;
    }
    for key in &plan.tampered {
        let value = instance.tags.get(key).map_or("", String::as_str);
        warn!(event_id, instance_id = %id, key = %key, value = %value, metric = "OwnershipTagTampered", decision = "removed case variant of a sharing tag");
        outcome.counts.tags_tampered += 1;
        outcome.status = Status::Changed;
        outcome.changed.push(format!("{id}: removed {key}"));
    }
    match plan.outcome {
        ShareOutcome::Unchanged => {}
        ShareOutcome::Shared { guests, until } => {
            let guests: Vec<String> = guests.iter().map(ToString::to_string).collect();
            let until = until.to_rfc3339();
            info!(event_id, instance_id = %id, guests = ?guests, until = %until, metric = "SharesMade", decision = "shared");
            outcome.counts.shares_made += 1;
            outcome.status = Status::Changed;
            outcome.changed.push(format!(
                "{id}: shared with {} until {until}",
                guests.join(" ")
            ));
        }
        ShareOutcome::Ended { why, guests } => {
            info!(event_id, instance_id = %id, guests = ?guests, why = why.as_str(), metric = "SharesEnded", decision = "share ended");
            outcome.counts.shares_ended += 1;
            outcome.status = Status::Changed;
            outcome
                .changed
                .push(format!("{id}: share ended ({})", why.as_str()));
        }
        ShareOutcome::Refused(reason) => {
            warn!(event_id, instance_id = %id, code = %reason.code, reason = %reason, metric = "SharesRefused", decision = "share refused");
            outcome.counts.shares_refused += 1;
            outcome
                .skipped
                .push(Skipped::instance(id.to_string(), reason));
        }
    }
    Ok(())
}
