//! Sharing, applied: the owner-tagger writes and removes one instance's guest slots and expiry
//! as `domain::sharing` plans them, one `CreateTags` and one `DeleteTags` at most, and reports
//! each share, end and refusal (logged with a metric name, counted in the outcome).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::domain::ids::{ResolvedRole, RoleId, TagTarget};
use crate::domain::outcome::{Outcome, Skipped, Status};
use crate::domain::sharing::{
    plan_share, session_user, ShareOutcome, SharePlan, ShareRules, Trigger,
};
use crate::error::Error;
use crate::ports::{
    DescribedInstance, GuestSessions, InRegion, InstanceTagger, OpenSession, ShareExpiries,
};

/// No Session Manager client: a share's end removes the slots but ends no session (replay, and
/// the tests that do not look at sessions).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSessions;

impl GuestSessions for NoSessions {
    async fn open_sessions_on(
        &self,
        _instance_id: &crate::domain::ids::InstanceId,
    ) -> Result<Vec<OpenSession>, Error> {
        Ok(Vec::new())
    }

    async fn end_session(&self, _session_id: &str) -> Result<(), Error> {
        Ok(())
    }
}

impl InRegion for NoSessions {
    fn region_name(&self) -> Option<String> {
        None
    }

    fn in_region(&self, _region: &str) -> Self {
        Self
    }
}

/// No schedules: a share ends at the first sweep after its time (replay, the tests that do not
/// look at schedules, and a deployment without the expiry schedule group).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoExpiries;

impl ShareExpiries for NoExpiries {
    async fn schedule_expiry(
        &self,
        _instance: &crate::domain::ids::InstanceId,
        _region: &str,
        _at: DateTime<Utc>,
    ) -> Result<(), Error> {
        Ok(())
    }
}

/// A deployment's schedules when it has them (`SHARE_EXPIRY_*` set), none otherwise.
impl<X: ShareExpiries + Sync> ShareExpiries for Option<X> {
    async fn schedule_expiry(
        &self,
        instance: &crate::domain::ids::InstanceId,
        region: &str,
        at: DateTime<Utc>,
    ) -> Result<(), Error> {
        match self {
            Some(expiries) => expiries.schedule_expiry(instance, region, at).await,
            None => Ok(()),
        }
    }
}

/// Where a share is applied: EC2 for the tags and Session Manager for the guests' sessions, in
/// the instance's region (`region`); the expiry schedules, the users' role and the deployment's
/// sharing rules.
pub(crate) struct Applied<'a, E, S, X> {
    pub ec2: &'a E,
    pub sessions: &'a S,
    pub expiries: &'a X,
    pub region: &'a str,
    pub role: &'a ResolvedRole,
    pub rules: &'a ShareRules,
}

/// A schedule must lie in the future when it is made: a share ending sooner is scheduled this
/// long from now (and ends that much late, or at the sweep).
const SOONEST_SCHEDULE: chrono::Duration = chrono::Duration::minutes(1);

/// Plan one instance's share and apply it, adding what was done to `outcome`. On a converge
/// (the sweep) a refusal is not reported again: the owner's request event reported it.
pub(crate) async fn converge_share<E: InstanceTagger, S: GuestSessions, X: ShareExpiries>(
    at: &Applied<'_, E, S, X>,
    event_id: Option<&str>,
    instance: &DescribedInstance,
    (now, trigger): (DateTime<Utc>, Trigger),
    outcome: &mut Outcome,
) -> Result<(), Error> {
    let plan = plan_share(&instance.tags, &at.role.id, now, trigger, at.rules);
    if trigger == Trigger::Converge && matches!(plan.outcome, ShareOutcome::Refused(_)) {
        return Ok(());
    }
    apply(at, event_id, instance, plan, now, outcome).await
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

async fn apply<E: InstanceTagger, S: GuestSessions, X: ShareExpiries>(
    at: &Applied<'_, E, S, X>,
    event_id: Option<&str>,
    instance: &DescribedInstance,
    plan: SharePlan,
    now: DateTime<Utc>,
    outcome: &mut Outcome,
) -> Result<(), Error> {
    let ec2 = at.ec2;
    let id = &instance.instance_id;
    let target = TagTarget::Instance(id.clone());
    // The schedule first: if writing the tags then fails, the event is delivered again and the
    // schedule is moved; a schedule whose share was never written finds nothing to end.
    if let ShareOutcome::Shared { until, .. } = &plan.outcome {
        at.expiries
            .schedule_expiry(id, at.region, (*until).max(now + SOONEST_SCHEDULE))
            .await?;
    }
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
            end_guest_sessions(at, event_id, instance, &guests, outcome).await?;
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

/// End the sessions the share's guests still have open on the instance: a session of the users'
/// role whose user id held a slot and is not the owner's. Everybody else's stay.
async fn end_guest_sessions<E, S: GuestSessions, X>(
    at: &Applied<'_, E, S, X>,
    event_id: Option<&str>,
    instance: &DescribedInstance,
    guests: &[String],
    outcome: &mut Outcome,
) -> Result<(), Error> {
    if guests.is_empty() {
        return Ok(());
    }
    let owner = instance.tags.get(&at.rules.user_id_key);
    let id = &instance.instance_id;
    for session in at.sessions.open_sessions_on(id).await? {
        let Some(user) = session_user(&session.owner, at.role) else {
            continue;
        };
        let user = user.to_string();
        if guests.contains(&user) && owner != Some(&user) {
            at.sessions.end_session(&session.id).await?;
            info!(event_id, instance_id = %id, session_id = %session.id, user = %user, decision = "ended a guest's session");
            outcome
                .changed
                .push(format!("{id}: ended {user}'s session {}", session.id));
        }
    }
    Ok(())
}
