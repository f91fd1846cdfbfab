//! Owner tagging: CloudTrail `RunInstances` in, `AwsUserId` tags out, on the instances and on
//! the EBS volumes attached to them. Also the scheduled tag sweep, which brings every live
//! instance and its attached volumes to exactly the tags its owner implies (whatever launched
//! it, and whether or not its launch event arrived), and late owner tags: a Tag Change event for
//! the owner key.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::{info, warn};

use super::managed_nodes::{self, NoHybridNodes};
use super::regions::RegionalClients;
use super::role_resolver::RoleResolver;
use super::sharing::{self, NoExpiries, NoSessions};
use super::trails::{regions_without_trail, NoTrails};
use crate::config::{Config, UsersRole};
use crate::domain::events::{
    dispatch, CloudTrailDetail, Event, ShareExpiryDetail, TagChangeDetail,
};
use crate::domain::ids::{
    InstanceId, InstanceState, Region, ResolvedRole, RoleId, TagTarget, UserId,
};
use crate::domain::outcome::{Outcome, Skipped, Status};
use crate::domain::ownership::{self, OwnerDecision, TagsFrom};
use crate::domain::reason::{Reason, ReasonCode};
use crate::domain::sharing::Trigger;
use crate::domain::trust;
use crate::error::Error;
use crate::ports::{
    DescribedInstance, DescribedVolume, GuestSessions, HybridNodes, InRegion, RoleDirectory,
    ShareExpiries, TaggerEc2, TrailDirectory,
};

/// Everything the function needs, built once per process.
pub struct OwnerTagger<E, R, T = NoTrails, S = NoSessions, X = NoExpiries, N = NoHybridNodes> {
    config: Config,
    ec2: RegionalClients<E>,
    iam: R,
    role: RoleResolver,
    /// CloudTrail, for the sweep's check that a trail delivers launches in every covered
    /// region (`with_trails`); without it the check is not made.
    trails: Option<RegionalClients<T>>,
    /// Session Manager, to end a share's guests' sessions when it ends (`with_sessions`);
    /// without it the slots go and the sessions last until their own time-out.
    sessions: RegionalClients<S>,
    /// EventBridge Scheduler, to end each share at its time (`with_expiries`); without it a
    /// share ends at the first sweep after its time.
    expiries: X,
    /// Systems Manager, for managed nodes outside EC2 (`with_hybrid_nodes`; read only with
    /// `HYBRID_NODES` on).
    nodes: RegionalClients<N>,
}

impl<E, R> OwnerTagger<E, R>
where
    E: TaggerEc2,
    R: RoleDirectory + Sync,
{
    pub fn new(config: Config, ec2: E, iam: R) -> Self {
        let role = RoleResolver::new(&config);
        Self {
            ec2: RegionalClients::new(ec2, &config),
            sessions: RegionalClients::new(NoSessions, &config),
            nodes: RegionalClients::new(NoHybridNodes, &config),
            config,
            iam,
            role,
            trails: None,
            expiries: NoExpiries,
        }
    }

    /// The same, whose sweep also checks that a trail delivers launches in every covered region
    /// (`RegionsWithoutTrail`).
    pub fn with_trails<T>(self, trails: T) -> OwnerTagger<E, R, T>
    where
        T: TrailDirectory + InRegion + Clone + Send + Sync,
    {
        OwnerTagger {
            trails: Some(RegionalClients::new(trails, &self.config)),
            config: self.config,
            ec2: self.ec2,
            iam: self.iam,
            role: self.role,
            sessions: self.sessions,
            expiries: self.expiries,
            nodes: self.nodes,
        }
    }
}

impl<E, R, T> OwnerTagger<E, R, T> {
    /// The same, which also ends a share's guests' open sessions on the instance when the share
    /// ends (expired, withdrawn, owner changed, sharing off).
    pub fn with_sessions<S>(self, sessions: S) -> OwnerTagger<E, R, T, S>
    where
        S: GuestSessions + InRegion + Clone + Send + Sync,
    {
        OwnerTagger {
            sessions: RegionalClients::new(sessions, &self.config),
            config: self.config,
            ec2: self.ec2,
            iam: self.iam,
            role: self.role,
            trails: self.trails,
            expiries: self.expiries,
            nodes: self.nodes,
        }
    }
}

impl<E, R, T, S> OwnerTagger<E, R, T, S> {
    /// The same, which also makes a one-time schedule at each share's end, so that the share
    /// ends then and not at the next sweep.
    pub fn with_expiries<X>(self, expiries: X) -> OwnerTagger<E, R, T, S, X>
    where
        X: ShareExpiries + Sync,
    {
        OwnerTagger {
            expiries,
            config: self.config,
            ec2: self.ec2,
            iam: self.iam,
            role: self.role,
            trails: self.trails,
            sessions: self.sessions,
            nodes: self.nodes,
        }
    }
}

impl<E, R, T, S, X> OwnerTagger<E, R, T, S, X> {
    /// The same, which also owns managed nodes outside EC2 (`mi-*`) at their registration and
    /// in the sweep, when `HYBRID_NODES` is on.
    pub fn with_hybrid_nodes<N>(self, nodes: N) -> OwnerTagger<E, R, T, S, X, N>
    where
        N: HybridNodes + InRegion + Clone + Send + Sync,
    {
        OwnerTagger {
            nodes: RegionalClients::new(nodes, &self.config),
            config: self.config,
            ec2: self.ec2,
            iam: self.iam,
            role: self.role,
            trails: self.trails,
            sessions: self.sessions,
            expiries: self.expiries,
        }
    }
}

impl<E, R, T, S, X, N> OwnerTagger<E, R, T, S, X, N>
where
    E: TaggerEc2,
    R: RoleDirectory + Sync,
    T: TrailDirectory + InRegion + Clone + Send + Sync,
    S: GuestSessions + InRegion + Clone + Send + Sync,
    X: ShareExpiries + Sync,
    N: HybridNodes + InRegion + Clone + Send + Sync,
{
    /// Handle one EventBridge event. `Err` only for failures a later delivery may fix or an
    /// operator must see (AWS errors, a missing role); invalid events are `Ok(ignored)`.
    pub async fn handle(&self, event: Value) -> Result<Outcome, Error> {
        self.handle_at(event, Utc::now()).await
    }

    pub async fn handle_at(&self, event: Value, now: DateTime<Utc>) -> Result<Outcome, Error> {
        let incoming = match dispatch(event) {
            Ok(incoming) => incoming,
            Err(unhandled) => return Ok(ignored(unhandled.id.as_deref(), unhandled.reason)),
        };
        let event_id = incoming.id.as_deref();
        // Every call for this event goes to the region it names (forwarded events keep theirs).
        let ec2 = self.ec2.get(incoming.region.as_deref());
        match incoming.event {
            Event::Scheduled => self.sweep_at(event_id, now).await,
            Event::TagChange(detail) => {
                let since = incoming.time.unwrap_or(now);
                self.on_tag_change(&ec2, event_id, incoming.resources, detail, (since, now))
                    .await
            }
            Event::RunInstances(detail) => {
                self.on_launch(&ec2, event_id, incoming.time, &detail, now)
                    .await
            }
            Event::StateChange(_) | Event::ManagedNodeDeregistration(_) => Ok(ignored(
                event_id,
                Reason::new(
                    ReasonCode::OtherEvent,
                    "an instance state change or a node's deregistration is the session-policy function's event",
                ),
            )),
            Event::ShareExpiry(detail) => self.on_share_expiry(event_id, &detail, now).await,
            Event::ManagedNodeRegistration(node) => {
                if !self.config.hybrid_nodes {
                    return Ok(ignored(
                        event_id,
                        Reason::new(
                            ReasonCode::HybridNodesOff,
                            format!("{node} registered, and HYBRID_NODES is off: managed nodes outside EC2 are not owned"),
                        ),
                    ));
                }
                let role_id = self.role.get(&self.iam).await?;
                let nodes = self.nodes.get(incoming.region.as_deref());
                let rules = &self.config.ownership;
                managed_nodes::on_registration(&nodes, event_id, &node, &role_id, rules).await
            }
        }
    }

    /// A share's one-time schedule fired: converge that instance's share, in its own region. It
    /// ends only what the instance's expiry tag says has expired by the function's clock.
    async fn on_share_expiry(
        &self,
        event_id: Option<&str>,
        detail: &ShareExpiryDetail,
        now: DateTime<Utc>,
    ) -> Result<Outcome, Error> {
        let (id, region) = match (
            InstanceId::parse(&detail.instance_id),
            Region::parse(&detail.region),
        ) {
            (Ok(id), Ok(region)) => (id, region),
            (Err(reason), _) => return Ok(ignored(event_id, reason)),
            (_, Err(problem)) => {
                return Ok(ignored(
                    event_id,
                    Reason::new(ReasonCode::Malformed, format!("share expiry: {problem}")),
                ))
            }
        };
        let ec2 = self.ec2.get(Some(region.as_str()));
        let mut outcome = Outcome::empty(Status::Unchanged);
        self.on_share_request(
            &ec2,
            event_id,
            std::slice::from_ref(&id),
            (now, Trigger::Converge),
            &mut outcome,
        )
        .await?;
        Ok(outcome)
    }

    /// A launch: tag every instance it created with its owner's user id.
    #[expect(
        clippy::too_many_lines,
        reason = "one launch, in order: screen, resolve the owner, tag instances and volumes, report each skip with its reason code"
    )]
    async fn on_launch(
        &self,
        ec2: &E,
        event_id: Option<&str>,
        event_time: Option<DateTime<Utc>>,
        detail: &CloudTrailDetail,
        now: DateTime<Utc>,
    ) -> Result<Outcome, Error> {
        if detail.event_source.as_deref() != Some("ec2.amazonaws.com") {
            return Ok(ignored(
                event_id,
                Reason::new(
                    ReasonCode::OtherEvent,
                    format!(
                        "not an EC2 API call (eventSource {:?})",
                        detail.event_source
                    ),
                ),
            ));
        }
        let role_name = match self.role.users_role() {
            UsersRole::Named(name) => name.clone(),
            UsersRole::PermissionSet(_) => self.role.resolved(&self.iam).await?.name,
        };
        let launch = match ownership::screen(detail, &self.config.ownership, &role_name) {
            Ok(launch) => launch,
            Err(reason) => return Ok(ignored(event_id, reason)),
        };
        let role = &self.role.resolved(&self.iam).await?;

        let launcher = launch.users_role_session.as_ref();
        let mut decisions: BTreeMap<InstanceId, OwnerDecision> = launch
            .instances
            .iter()
            .map(|i| {
                (
                    i.instance_id.clone(),
                    ownership::decide(
                        &i.tags,
                        launcher,
                        role,
                        &self.config.ownership,
                        TagsFrom::Event,
                    ),
                )
            })
            .collect();
        let mut skipped = launch.rejected.clone();

        // The event's word is never enough to write: every instance it would tag is read first
        // (one call for the launch), so a replayed or forged event cannot re-own an instance
        // that already carries another user's id.
        let reads: Vec<InstanceId> = decisions
            .iter()
            .filter(|(_, d)| matches!(d, OwnerDecision::Lookup | OwnerDecision::Tag { .. }))
            .map(|(id, _)| id.clone())
            .collect();
        if !reads.is_empty() {
            let found = ec2.describe_instances(&reads).await?;
            let mut missing = Vec::new();
            for id in reads {
                let gone = |text: String| OwnerDecision::Skip {
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
                    Some(i) => match &decisions[&id] {
                        OwnerDecision::Tag { value } => {
                            ownership::confirm_in_ec2(value, &i.tags, &self.config.ownership)
                        }
                        _ => ownership::decide(
                            &i.tags,
                            launcher,
                            role,
                            &self.config.ownership,
                            TagsFrom::Ec2,
                        ),
                    },
                    None => {
                        missing.push(id.to_string());
                        gone("instance no longer exists in EC2".into())
                    }
                };
                decisions.insert(id, decision);
            }
            if !missing.is_empty() && ownership::within_consistency_window(event_time, now) {
                return Err(Error::InstancesNotYetVisible {
                    instance_ids: missing,
                });
            }
        }

        // The volumes of every instance about to be owned: one more read, and they are written
        // in the same call. An instance already tagged had its volumes tagged with it (by an
        // earlier delivery or the sweep), so a replay reads nothing more.
        let owners: BTreeMap<InstanceId, UserId> = decisions
            .iter()
            .filter_map(|(id, d)| match d {
                OwnerDecision::Tag { value } => Some((id.clone(), value.clone())),
                _ => None,
            })
            .collect();
        let volumes = self.volumes_of(ec2, &owners, &role.id).await?;
        let instance_writes: BTreeMap<UserId, Vec<TagTarget>> =
            ownership::group_writes(decisions.iter())
                .into_iter()
                .map(|(value, ids)| {
                    let targets = ids.into_iter().map(TagTarget::Instance).collect();
                    (value.clone(), targets)
                })
                .collect();
        let volumes = volumes
            .write_with(ec2, event_id, instance_writes, self.user_id_key())
            .await?;

        let mut outcome = Outcome::empty(Status::Ignored);
        for (id, decision) in decisions {
            match decision {
                OwnerDecision::Tag { value } => {
                    info!(event_id, instance_id = %id, decision = "tagged", value = %value);
                    outcome.changed.push(id.to_string());
                }
                OwnerDecision::AlreadyTagged { value } => {
                    info!(event_id, instance_id = %id, decision = "unchanged", value = %value);
                    outcome.unchanged.push(id.to_string());
                }
                OwnerDecision::Skip { reason } => {
                    skipped.push(Skipped::instance(id.to_string(), reason))
                }
                // Every lookup was decided above; never write for an undecided instance.
                OwnerDecision::Lookup => skipped.push(Skipped::instance(
                    id.to_string(),
                    Reason::new(ReasonCode::NoOwnerTag, "owner could not be determined"),
                )),
            }
        }
        for skip in &skipped {
            warn!(event_id, subject = %skip.subject, decision = "skipped", code = %skip.reason.code, reason = %skip.reason);
        }
        outcome.counts.instances_tagged = outcome.changed.len();
        outcome.skipped = skipped;
        volumes.merge_into(&mut outcome);
        outcome.status = if !outcome.changed.is_empty() {
            Status::Changed
        } else if !outcome.unchanged.is_empty() {
            Status::Unchanged
        } else {
            // Counted under the first instance's reason: one launch, one cause in practice.
            outcome.code = outcome.skipped.first().map(|s| s.reason.code);
            Status::Ignored
        };
        outcome.reason = summary(&outcome, &self.config.ownership.user_id_tag_key);
        Ok(outcome)
    }
}

impl<E, R, T, S, X, N> OwnerTagger<E, R, T, S, X, N>
where
    E: TaggerEc2,
    R: RoleDirectory + Sync,
    T: TrailDirectory + InRegion + Clone + Send + Sync,
    S: GuestSessions + InRegion + Clone + Send + Sync,
    X: ShareExpiries + Sync,
    N: HybridNodes + InRegion + Clone + Send + Sync,
{
    /// The scheduled sweep: every live instance in every covered region, one
    /// `DescribeInstances` page per 1,000 per region. Every region is read before anything is
    /// written, so an unreadable region fails the sweep (retryable) with nothing half done.
    /// Shares are converged too: expired ones end, lost requests are honoured.
    pub async fn sweep_at(
        &self,
        event_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Outcome, Error> {
        // Re-resolved on every sweep: a re-created role (a new Identity Center suffix) has a new
        // id, and the stale values on owned instances are rewritten below.
        let role = self.role.refresh(&self.iam).await?;
        let role_id = &role.id;
        let trust_policy_findings = self.check_trust(event_id, &role.name).await;
        let mut kept = vec![
            self.config.ownership.owner_tag_key.clone(),
            self.config.ownership.user_id_tag_key.clone(),
            self.config.sharing.share_with_key.clone(),
            self.config.sharing.share_for_key.clone(),
        ];
        kept.extend(self.config.sharing.product_keys());
        let keys: Vec<&str> = kept.iter().map(String::as_str).collect();
        let (keys, config) = (&keys[..], &self.config);
        // Each page is reduced as it arrives: an instance whose ownership tags are already right
        // is only counted, one without an owner tag too; the rest are kept for the writes. The
        // owner of each owned instance is kept (an id and a value) for its volumes, which are
        // read next and reduced the same way.
        let regions = self
            .ec2
            .read_fleet(|ec2| async move {
                let mut seen = SweepRead::default();
                let mut owners = BTreeMap::new();
                ec2.each_live_instance(keys, &mut |instance| {
                    seen.live += 1;
                    if sharing::needs_work(&instance, role_id, now, &config.sharing) {
                        seen.to_share.push(instance.clone());
                    }
                    let plan = ownership::sweep(&instance.tags, role_id, &config.ownership);
                    if let Some(owner) = owner_after(&instance, &plan, role_id, config) {
                        owners.insert(instance.instance_id.clone(), owner);
                    }
                    match &plan.skip {
                        _ if !plan.remove.is_empty() || plan.write.is_some() => {
                            seen.to_apply.push(instance)
                        }
                        Some(reason) if reason.code == ReasonCode::NoOwnerTag => seen.unowned += 1,
                        Some(_) => seen.to_apply.push(instance),
                        None => {}
                    }
                })
                .await?;
                if !owners.is_empty() {
                    ec2.each_attached_volume(&keys[1..2], &mut |volume| {
                        seen.volumes.plan(volume, &owners, role_id, config)
                    })
                    .await?;
                }
                Ok(seen)
            })
            .await?;
        let region_names: Vec<String> = regions.iter().map(|(r, _)| r.clone()).collect();
        let regions_without_trail = self.check_trails(event_id, &region_names).await;
        let mut outcome = self.apply_regions(event_id, regions, (&role, now)).await?;
        if self.config.hybrid_nodes {
            self.sweep_hybrid_nodes(event_id, &region_names, role_id, &mut outcome)
                .await?;
        }
        outcome.counts.trust_policy_findings = trust_policy_findings;
        outcome.counts.regions_without_trail = regions_without_trail;
        info!(event_id, decision = "sweep", role_id = %role_id, reason = %outcome.reason);
        Ok(outcome)
    }

    /// The sweep's second part with `HYBRID_NODES` on: the managed nodes outside EC2 of every
    /// covered region, after the instances.
    async fn sweep_hybrid_nodes(
        &self,
        event_id: Option<&str>,
        regions: &[String],
        role_id: &RoleId,
        outcome: &mut Outcome,
    ) -> Result<(), Error> {
        for region in regions {
            let nodes = self.nodes.get(Some(region));
            let rules = &self.config.ownership;
            let done = managed_nodes::sweep_region(&nodes, event_id, role_id, rules)
                .await
                .map_err(|e| Error::RegionUnreadable {
                    region: region.clone(),
                    cause: e.to_string(),
                })?;
            if done.status == Status::Changed {
                outcome.status = Status::Changed;
            }
            outcome.reason = format!("{}; {region}: {}", outcome.reason, done.reason);
            outcome.changed.extend(done.changed);
            outcome.skipped.extend(done.skipped);
            outcome.counts.instances_tagged += done.counts.instances_tagged;
            outcome.counts.tags_tampered += done.counts.tags_tampered;
        }
        Ok(())
    }

    /// Write what the sweep read in each region: ownership tags, then shares.
    async fn apply_regions(
        &self,
        event_id: Option<&str>,
        regions: Vec<(String, SweepRead)>,
        (role, now): (&ResolvedRole, DateTime<Utc>),
    ) -> Result<Outcome, Error> {
        let mut outcome = Outcome::empty(Status::Unchanged);
        let mut parts = Vec::new();
        let (mut live, mut unowned) = (0, 0);
        let covered = regions.len();
        for (region, seen) in regions {
            live += seen.live;
            unowned += seen.unowned;
            let ec2 = self.ec2.get(Some(&region));
            let mut done = self
                .apply_sweep(&ec2, event_id, &seen.to_apply, seen.volumes)
                .await?;
            let sessions = self.sessions.get(Some(&region));
            let at = sharing::Applied {
                ec2: &ec2,
                sessions: &sessions,
                expiries: &self.expiries,
                region: &region,
                role,
                rules: &self.config.sharing,
            };
            for instance in &seen.to_share {
                let when = (now, Trigger::Converge);
                sharing::converge_share(&at, event_id, instance, when, &mut done).await?;
            }
            if done.status == Status::Changed {
                outcome.status = Status::Changed;
                parts.push(format!("{region}: {}", done.reason));
            }
            if !seen.to_share.is_empty() {
                parts.push(format!("{region}: {}", share_summary(&done)));
            }
            outcome.changed.extend(done.changed);
            outcome.skipped.extend(done.skipped);
            let c = done.counts;
            outcome.counts.instances_tagged += c.instances_tagged;
            outcome.counts.volumes_tagged += c.volumes_tagged;
            outcome.counts.tags_tampered += c.tags_tampered;
            outcome.counts.shares_made += c.shares_made;
            outcome.counts.shares_ended += c.shares_ended;
            outcome.counts.shares_refused += c.shares_refused;
        }
        outcome.reason = format!(
            "sweep: {live} live instance(s) in {covered} region(s); {}",
            if parts.is_empty() {
                format!(
                    "nothing to change; {} skipped, {unowned} without an owner tag",
                    outcome.skipped.len()
                )
            } else {
                parts.join("; ")
            }
        );
        Ok(outcome)
    }

    /// Whether the users' role's trust policy lets a caller choose their session name (and so
    /// their `aws:userid`): one warning and one count per way it does. Checked on every sweep so
    /// that a change made after the deploy is noticed. It never stops the sweep: a trust policy
    /// that cannot be read is counted and logged as a finding too.
    async fn check_trust(&self, event_id: Option<&str>, role_name: &str) -> usize {
        let found = match self.iam.trust_policy(role_name).await {
            Ok(document) => trust::name_choosers(&document),
            Err(err) => Err(err.to_string()),
        };
        match found {
            Ok(choosers) => {
                for chooser in &choosers {
                    warn!(event_id, role = role_name, statement = %chooser.statement, principals = %chooser.principals.join(","), action = chooser.action, fix = %chooser.fix(), metric = "TrustPolicyFindings", decision = "the users' role's trust policy lets a caller choose their session name");
                }
                choosers.len()
            }
            Err(why) => {
                warn!(event_id, role = role_name, reason = %why, metric = "TrustPolicyFindings", decision = "the users' role's trust policy could not be checked");
                1
            }
        }
    }

    /// How many covered regions no trail delivers launches from (each is tagged only by the
    /// sweep): one warning per region. Never stops the sweep; trails that cannot be read count
    /// as one finding and are logged. `None` when the check is not made.
    async fn check_trails(&self, event_id: Option<&str>, regions: &[String]) -> Option<usize> {
        let trails = self.trails.as_ref()?;
        match regions_without_trail(trails, regions).await {
            Ok(left) => {
                for region in &left {
                    warn!(event_id, region = %region, metric = "RegionsWithoutTrail", code = "NoTrailForLaunches", decision = "no logging trail delivers this region's management events (RunInstances) to EventBridge: its launches are tagged only by the sweep");
                }
                Some(left.len())
            }
            Err(err) => {
                warn!(event_id, reason = %err, metric = "RegionsWithoutTrail", code = "TrailsUnreadable", decision = "the trails could not be checked");
                Some(1)
            }
        }
    }

    /// A tag change on an instance: the owner key (a late owner), the share request keys (an
    /// owner sharing), or both, in that order.
    async fn on_tag_change(
        &self,
        ec2: &E,
        event_id: Option<&str>,
        resources: Vec<String>,
        detail: TagChangeDetail,
        (since, now): (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<Outcome, Error> {
        let owner = detail.changed_on_instance(
            std::slice::from_ref(&self.config.ownership.owner_tag_key),
            ReasonCode::OwnerTagUnchanged,
        );
        let sharing = &self.config.sharing;
        let share = detail
            .changed_on_instance(
                &[
                    sharing.share_with_key.clone(),
                    sharing.share_for_key.clone(),
                ],
                ReasonCode::OwnerTagUnchanged,
            )
            .is_ok();
        if let (Err(reason), false) = (&owner, share) {
            return Ok(ignored(event_id, reason.clone()));
        }
        let ids = match instance_ids(&resources) {
            Ok(ids) => ids,
            Err(reason) => return Ok(ignored(event_id, reason)),
        };
        let mut outcome = match owner {
            Ok(()) => self.on_owner_tag_change(ec2, event_id, &ids).await?,
            Err(_) => Outcome::empty(Status::Unchanged),
        };
        if share {
            let trigger = Trigger::Request { since };
            self.on_share_request(ec2, event_id, &ids, (now, trigger), &mut outcome)
                .await?;
        }
        Ok(outcome)
    }

    /// The owner wrote or deleted a share request: each live instance's share, from its tags.
    async fn on_share_request(
        &self,
        ec2: &E,
        event_id: Option<&str>,
        ids: &[InstanceId],
        (now, trigger): (DateTime<Utc>, Trigger),
        outcome: &mut Outcome,
    ) -> Result<(), Error> {
        let role = self.role.resolved(&self.iam).await?;
        let found = ec2.describe_instances(ids).await?;
        let region = ec2.region_name().unwrap_or_default();
        let sessions = self
            .sessions
            .get(Some(region.as_str()).filter(|r| !r.is_empty()));
        let at = sharing::Applied {
            ec2,
            sessions: &sessions,
            expiries: &self.expiries,
            region: &region,
            role: &role,
            rules: &self.config.sharing,
        };
        let mut shared = Outcome::empty(Status::Unchanged);
        for instance in found.iter().filter(|i| i.state.is_live()) {
            sharing::converge_share(&at, event_id, instance, (now, trigger), &mut shared).await?;
        }
        if found.iter().all(|i| !i.state.is_live()) && outcome.status == Status::Unchanged {
            *outcome = ignored(
                event_id,
                Reason::new(
                    ReasonCode::InstanceGone,
                    format!("{} is not a live instance in EC2", ids[0]),
                ),
            );
            return Ok(());
        }
        shared.reason = share_summary(&shared);
        merge(outcome, shared);
        Ok(())
    }

    /// A late owner tag: tag the instance and its volumes from it.
    async fn on_owner_tag_change(
        &self,
        ec2: &E,
        event_id: Option<&str>,
        ids: &[InstanceId],
    ) -> Result<Outcome, Error> {
        // The state is re-read from EC2, never taken from the event.
        let found: Vec<DescribedInstance> = ec2
            .describe_instances(ids)
            .await?
            .into_iter()
            .filter(|i| i.state.is_live())
            .collect();
        if found.is_empty() {
            return Ok(ignored(
                event_id,
                Reason::new(
                    ReasonCode::InstanceGone,
                    format!("{} is not a live instance in EC2", ids[0]),
                ),
            ));
        }
        // Its volumes follow the owner it is about to have.
        let role_id = self.role.get(&self.iam).await?;
        let owners: BTreeMap<InstanceId, UserId> = found
            .iter()
            .filter_map(|i| {
                let plan = ownership::sweep(&i.tags, &role_id, &self.config.ownership);
                owner_after(i, &plan, &role_id, &self.config).map(|o| (i.instance_id.clone(), o))
            })
            .collect();
        let volumes = self.volumes_of(ec2, &owners, &role_id).await?;
        self.apply_sweep(ec2, event_id, &found, volumes).await
    }

    /// Plan and apply the sweep for these instances and the volumes planned with them: one
    /// `CreateTags` per distinct value (instances and volumes together) and one `DeleteTags` per
    /// variant key, nothing when all is as it should be.
    async fn apply_sweep(
        &self,
        ec2: &E,
        event_id: Option<&str>,
        instances: &[DescribedInstance],
        volumes: VolumeWork,
    ) -> Result<Outcome, Error> {
        let role_id = &self.role.get(&self.iam).await?;
        let mut writes: BTreeMap<UserId, Vec<TagTarget>> = BTreeMap::new();
        let mut removals: BTreeMap<String, Vec<TagTarget>> = BTreeMap::new();
        let mut outcome = Outcome::empty(Status::Unchanged);
        let (mut stale, mut unowned) = (0, 0);
        for instance in instances {
            let id = &instance.instance_id;
            let plan = ownership::sweep(&instance.tags, role_id, &self.config.ownership);
            for (key, value) in &plan.remove {
                let code_points = ownership::code_points(key);
                warn!(event_id, instance_id = %id, key = %key, code_points = code_points.as_deref(), value = %value, metric = "OwnershipTagTampered", decision = "removed case variant of an ownership tag");
                removals
                    .entry(key.clone())
                    .or_default()
                    .push(TagTarget::Instance(id.clone()));
                outcome.counts.tags_tampered += 1;
            }
            if let Some(value) = plan.write {
                match &plan.stale {
                    Some(old) => {
                        stale += 1;
                        info!(event_id, instance_id = %id, old = %old, value = %value, decision = "re-tagged stale role id");
                    }
                    None => info!(event_id, instance_id = %id, value = %value, decision = "tagged"),
                }
                writes
                    .entry(value)
                    .or_default()
                    .push(TagTarget::Instance(id.clone()));
            }
            match plan.skip {
                // Most unowned instances are simply not the portal's: counted, not listed.
                Some(reason) if reason.code == ReasonCode::NoOwnerTag => unowned += 1,
                Some(reason) => {
                    warn!(event_id, instance_id = %id, decision = "skipped", code = %reason.code, reason = %reason);
                    outcome
                        .skipped
                        .push(Skipped::instance(id.to_string(), reason));
                }
                None => {}
            }
        }
        let instance_skips = outcome.skipped.len();
        let tagged: usize = writes.values().map(Vec::len).sum();
        outcome
            .changed
            .extend(writes.values().flatten().map(|t| t.to_string()));
        // The exact keys are written before any variant is removed: never ownerless between.
        let volumes = volumes
            .write_with(ec2, event_id, writes, self.user_id_key())
            .await?;
        for (key, targets) in &removals {
            ec2.delete_tag(targets, key).await?;
            outcome
                .changed
                .extend(targets.iter().map(|t| format!("{t}: removed {key}")));
        }
        volumes.merge_into(&mut outcome);
        outcome.counts.instances_tagged = tagged;
        if !outcome.changed.is_empty() {
            outcome.status = Status::Changed;
        } else if instances.len() == 1 && instance_skips + unowned == 1 {
            // A single instance that needs an owner and cannot have one.
            outcome.status = Status::Ignored;
            outcome.code = outcome
                .skipped
                .first()
                .map(|s| s.reason.code)
                .or(Some(ReasonCode::NoOwnerTag));
        }
        outcome.reason = format!(
            "tagged {} ({} stale role id(s)), removed {} case variant(s), {} skipped, {} without an owner; {} volume(s) tagged",
            tagged - stale,
            stale,
            outcome.counts.tags_tampered,
            outcome.skipped.len(),
            unowned,
            outcome.counts.volumes_tagged
        );
        Ok(outcome)
    }

    fn user_id_key(&self) -> &str {
        &self.config.ownership.user_id_tag_key
    }

    /// The volumes attached to the instances in `owners`, planned against their owners: one
    /// `DescribeVolumes` (none when no instance is owned).
    async fn volumes_of(
        &self,
        ec2: &E,
        owners: &BTreeMap<InstanceId, UserId>,
        role_id: &RoleId,
    ) -> Result<VolumeWork, Error> {
        let mut volumes = VolumeWork::default();
        if owners.is_empty() {
            return Ok(volumes);
        }
        let ids: Vec<InstanceId> = owners.keys().cloned().collect();
        for volume in ec2.volumes_attached_to(&ids, &[self.user_id_key()]).await? {
            volumes.plan(volume, owners, role_id, &self.config);
        }
        Ok(volumes)
    }
}

/// The owner an instance has once its sweep plan is applied: the value to write, or the valid
/// value it carries.
fn owner_after(
    instance: &DescribedInstance,
    plan: &ownership::SweepPlan,
    role_id: &RoleId,
    config: &Config,
) -> Option<UserId> {
    plan.write.clone().or_else(|| {
        instance
            .tags
            .get(&config.ownership.user_id_tag_key)
            .and_then(|value| UserId::parse_for(value, role_id).ok())
    })
}

/// The volumes of owned instances that need a write, a removal of a case variant, or a report.
#[derive(Debug, Default)]
struct VolumeWork {
    writes: BTreeMap<UserId, Vec<TagTarget>>,
    removals: BTreeMap<String, Vec<(TagTarget, String)>>,
    skipped: Vec<Skipped>,
}

/// What was done to volumes, for the outcome.
struct VolumesDone {
    changed: Vec<String>,
    tagged: usize,
    tampered: usize,
    skipped: Vec<Skipped>,
}

impl VolumeWork {
    /// Plan one volume against the owners of the instances it is attached to.
    fn plan(
        &mut self,
        volume: DescribedVolume,
        owners: &BTreeMap<InstanceId, UserId>,
        role_id: &RoleId,
        config: &Config,
    ) {
        let attached: Vec<&UserId> = volume
            .attached_to
            .iter()
            .filter_map(|i| owners.get(i))
            .collect();
        let plan = ownership::volume_plan(&volume.tags, &attached, role_id, &config.ownership);
        let target = TagTarget::Volume(volume.volume_id.clone());
        for (key, value) in plan.remove {
            self.removals
                .entry(key)
                .or_default()
                .push((target.clone(), value));
        }
        if let Some(value) = plan.write {
            self.writes.entry(value).or_default().push(target);
        }
        if let Some(reason) = plan.skip {
            self.skipped
                .push(Skipped::volume(volume.volume_id.to_string(), reason));
        }
    }

    /// Write `instances` and the volumes, one `CreateTags` per value for both, then remove the
    /// volumes' case variants.
    async fn write_with<E: TaggerEc2>(
        self,
        ec2: &E,
        event_id: Option<&str>,
        instances: BTreeMap<UserId, Vec<TagTarget>>,
        key: &str,
    ) -> Result<VolumesDone, Error> {
        let mut done = VolumesDone {
            changed: Vec::new(),
            tagged: 0,
            tampered: 0,
            skipped: self.skipped,
        };
        let mut writes = instances;
        for (value, volumes) in self.writes {
            for volume in &volumes {
                info!(event_id, volume_id = %volume, value = %value, decision = "tagged volume");
                done.changed.push(volume.to_string());
            }
            done.tagged += volumes.len();
            writes.entry(value).or_default().extend(volumes);
        }
        for (value, targets) in &writes {
            ec2.create_tag(targets, key, &value.to_string()).await?;
        }
        for (variant, found) in &self.removals {
            for (target, value) in found {
                let code_points = ownership::code_points(variant);
                warn!(event_id, volume_id = %target, key = %variant, code_points = code_points.as_deref(), value = %value, metric = "OwnershipTagTampered", decision = "removed case variant of an ownership tag");
            }
            let targets: Vec<TagTarget> = found.iter().map(|(t, _)| t.clone()).collect();
            ec2.delete_tag(&targets, variant).await?;
            done.tampered += targets.len();
            done.changed
                .extend(targets.iter().map(|t| format!("{t}: removed {variant}")));
        }
        for skip in &done.skipped {
            warn!(event_id, subject = %skip.subject, decision = "skipped", code = %skip.reason.code, reason = %skip.reason);
        }
        Ok(done)
    }
}

impl VolumesDone {
    fn merge_into(self, outcome: &mut Outcome) {
        outcome.changed.extend(self.changed);
        outcome.counts.volumes_tagged += self.tagged;
        outcome.counts.tags_tampered += self.tampered;
        outcome.skipped.extend(self.skipped);
    }
}

/// What the sweep keeps of one region's read: counts, and the instances that need work.
#[derive(Default)]
struct SweepRead {
    live: usize,
    unowned: usize,
    to_apply: Vec<DescribedInstance>,
    /// Instances whose share needs a write (an expiry, a lost request, a freed slot).
    to_share: Vec<DescribedInstance>,
    volumes: VolumeWork,
}

/// The instances an event's `resources` name; a reason when it names none, or a string that is
/// not an instance id.
fn instance_ids(resources: &[String]) -> Result<Vec<InstanceId>, Reason> {
    let ids = resources
        .iter()
        .filter_map(|arn| arn.rsplit_once(":instance/"))
        .map(|(_, id)| InstanceId::parse(id))
        .collect::<Result<Vec<_>, _>>()?;
    if ids.is_empty() {
        return Err(Reason::new(
            ReasonCode::Malformed,
            "the event names no instance",
        ));
    }
    Ok(ids)
}

/// What a share request or the sweep's share work came to, in one line.
fn share_summary(outcome: &Outcome) -> String {
    let mut parts: Vec<String> = outcome.changed.clone();
    parts.extend(
        outcome
            .skipped
            .iter()
            .map(|skip| format!("refused share on {}: {}", skip.subject, skip.reason)),
    );
    if parts.is_empty() {
        "the share is as its request says".to_owned()
    } else {
        parts.join("; ")
    }
}

/// Add `more` to `outcome`: a change in either is a change; an ignored outcome takes the other.
fn merge(outcome: &mut Outcome, more: Outcome) {
    if more.status == Status::Changed || outcome.status == Status::Ignored {
        outcome.status = more.status;
        outcome.code = more.code;
    }
    if outcome.reason.is_empty() {
        outcome.reason = more.reason;
    } else if !more.reason.is_empty() {
        outcome.reason = format!("{}; {}", outcome.reason, more.reason);
    }
    outcome.changed.extend(more.changed);
    outcome.unchanged.extend(more.unchanged);
    outcome.skipped.extend(more.skipped);
    outcome.counts.shares_made += more.counts.shares_made;
    outcome.counts.shares_ended += more.counts.shares_ended;
    outcome.counts.shares_refused += more.counts.shares_refused;
}

/// Log an ignored event and build its outcome.
pub(crate) fn ignored(event_id: Option<&str>, reason: Reason) -> Outcome {
    info!(event_id, decision = "ignored", code = %reason.code, reason = %reason);
    Outcome::ignored(reason)
}

fn summary(outcome: &Outcome, key: &str) -> String {
    let mut parts = Vec::new();
    if outcome.counts.instances_tagged > 0 {
        parts.push(format!(
            "tagged {} instance(s) with {key}",
            outcome.counts.instances_tagged
        ));
    }
    if outcome.counts.volumes_tagged > 0 {
        parts.push(format!(
            "tagged {} volume(s) with {key}",
            outcome.counts.volumes_tagged
        ));
    }
    if !outcome.unchanged.is_empty() {
        parts.push(format!(
            "{} instance(s) already tagged",
            outcome.unchanged.len()
        ));
    }
    for skip in &outcome.skipped {
        parts.push(format!("skipped {}: {}", skip.subject, skip.reason));
    }
    parts.join("; ")
}
