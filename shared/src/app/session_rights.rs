//! The session-policy function: one writer for the users' role, with three triggers.
//!
//! - grant: "Tag Change on Resource" for the user-id tag on an instance;
//! - revoke: "EC2 Instance State-change Notification" for `terminated` (and the sessions still
//!   open on that instance are ended);
//! - reconcile: a scheduled event converges every user.
//!
//! Every decision re-reads EC2: a user is granted exactly when at least one live instance
//! carries their user-id tag. Duplicate, reordered and lost events therefore all converge.
//!
//! Two writers (the function and `replay`, or a function with more than one concurrent
//! execution) could race: one reads EC2, the other grants, the first revokes. So after a write
//! the user is checked again (EC2 and IAM re-read) until nothing changes. Where this process is
//! the only writer (`SINGLE_WRITER`, set by the template beside reserved concurrency 1) that
//! race cannot happen: every change to EC2 after this event's read is its own event, handled
//! after this one, so the write is not re-read and a revoke costs one read per region, not two.

use std::collections::BTreeSet;

use serde_json::Value;
use tracing::{info, warn};

use super::managed_nodes::NoHybridNodes;
use super::owner_tagging::ignored;
use super::regions::RegionalClients;
use super::role_resolver::RoleResolver;
use crate::config::{Config, SessionRights, WriteMode};
use crate::domain::capacity::Capacity;
use crate::domain::events::{dispatch, Event, StateChangeDetail, TagChangeDetail};
use crate::domain::ids::{InstanceId, ManagedNodeId, ResolvedRole, RoleId, UserId};
use crate::domain::outcome::{Counts, Outcome, Skipped, Status};
use crate::domain::reason::{Reason, ReasonCode};
use crate::domain::session_iam::untaggable_reason;
use crate::domain::session_name::SessionName;
use crate::domain::statements::Scope;
use crate::error::Error;
use crate::ports::{
    DescribedInstance, EnabledRegions, HybridNodes, InRegion, LiveInstances, PolicyStore,
    RoleDirectory, SessionsEc2, SessionsSsm, StoreReport,
};

/// Rounds of write-then-verify for one user before giving up for this delivery.
const MAX_ROUNDS: usize = 3;

/// Where a user's converge reads their live instances.
#[derive(Debug, Clone, Copy)]
enum Reads<'a> {
    /// A grant: the region of the instance whose tag changed (None: the home region) first, and
    /// alone when it holds a live instance of the user; otherwise every covered region.
    GrantIn(Option<&'a str>),
    /// A revoke: every covered region, all at once.
    Everywhere,
}

pub struct SessionPolicies<E, R, T, S, N = NoHybridNodes> {
    config: Config,
    ec2: RegionalClients<E>,
    iam: R,
    ssm: RegionalClients<T>,
    store: S,
    /// Systems Manager, for the managed nodes outside EC2 a user owns (`with_hybrid_nodes`;
    /// read only with `HYBRID_NODES` on): they hold session rights as instances do.
    nodes: RegionalClients<N>,
    role: RoleResolver,
    /// One writer at a time within this process, as reserved concurrency 1 gives across
    /// Lambda: the shards of the managed store are shared between users.
    writer: tokio::sync::Mutex<()>,
}

impl<E, R, T, S> SessionPolicies<E, R, T, S>
where
    E: SessionsEc2,
    R: RoleDirectory + Sync,
    T: SessionsSsm,
    S: PolicyStore + Sync,
{
    pub fn new(config: Config, ec2: E, iam: R, ssm: T, store: S) -> Self {
        let role = RoleResolver::new(&config);
        Self {
            ec2: RegionalClients::new(ec2, &config),
            ssm: RegionalClients::new(ssm, &config),
            nodes: RegionalClients::new(NoHybridNodes, &config),
            config,
            iam,
            store,
            role,
            writer: tokio::sync::Mutex::new(()),
        }
    }

    /// The same, whose users also hold their rights while a managed node outside EC2 (`mi-*`)
    /// carries their user id, when `HYBRID_NODES` is on.
    pub fn with_hybrid_nodes<N>(self, nodes: N) -> SessionPolicies<E, R, T, S, N>
    where
        N: HybridNodes + InRegion + Clone + Send + Sync,
    {
        SessionPolicies {
            nodes: RegionalClients::new(nodes, &self.config),
            config: self.config,
            ec2: self.ec2,
            iam: self.iam,
            ssm: self.ssm,
            store: self.store,
            role: self.role,
            writer: self.writer,
        }
    }
}

impl<E, R, T, S, N> SessionPolicies<E, R, T, S, N>
where
    E: SessionsEc2,
    R: RoleDirectory + Sync,
    T: SessionsSsm,
    S: PolicyStore + Sync,
    N: HybridNodes + InRegion + Clone + Send + Sync,
{
    /// Handle one EventBridge event (tag change, state change or schedule).
    pub async fn handle(&self, event: Value) -> Result<Outcome, Error> {
        self.handle_with(event, self.config.rights.reconcile_mode)
            .await
    }

    /// As [`handle`](Self::handle), with the reconcile's write mode chosen by the caller.
    pub async fn handle_with(&self, event: Value, mode: WriteMode) -> Result<Outcome, Error> {
        if let (Some(set), SessionRights::PerUser) = (
            self.role.users_role().permission_set(),
            self.config.rights.session_rights,
        ) {
            // Only Identity Center may change its roles (IAM answers UnmodifiableEntity), so
            // fail before writing anything; tagging is unaffected.
            return Err(Error::Unsupported {
                message: format!(
                    "the users' role is the IAM Identity Center role of permission set {set}, which only Identity Center may change: per-user session rights cannot be kept on it; set SESSION_RIGHTS=static (template parameter SessionRights=static) and reference the end-user policy from the permission set"
                ),
            });
        }
        let incoming = match dispatch(event) {
            Ok(incoming) => incoming,
            Err(unhandled) => return Ok(ignored(unhandled.id.as_deref(), unhandled.reason)),
        };
        let id = incoming.id.as_deref();
        match incoming.event {
            Event::TagChange(detail) => {
                self.on_tag_change(id, incoming.region.as_deref(), incoming.resources, detail)
                    .await
            }
            Event::StateChange(detail) => {
                self.on_state_change(id, incoming.region.as_deref(), detail)
                    .await
            }
            Event::Scheduled => self.reconcile(mode).await,
            Event::ManagedNodeRegistration(node) => {
                self.on_registration(id, incoming.region.as_deref(), &node)
                    .await
            }
            Event::ManagedNodeDeregistration(node) => self.on_deregistration(id, &node, mode).await,
            Event::RunInstances(_) | Event::ShareExpiry(_) => Ok(ignored(
                id,
                Reason::new(
                    ReasonCode::OtherEvent,
                    "launches and share expiries are the owner-tagger's events",
                ),
            )),
        }
    }

    async fn on_tag_change(
        &self,
        id: Option<&str>,
        region: Option<&str>,
        resources: Vec<String>,
        detail: TagChangeDetail,
    ) -> Result<Outcome, Error> {
        let key = &self.config.ownership.user_id_tag_key;
        if self.config.rights.session_rights == SessionRights::Static {
            return Ok(ignored(
                id,
                Reason::new(
                    ReasonCode::StaticSessionRights,
                    "static session rights: the end-user policy already covers every user; nothing to grant",
                ),
            ));
        }
        let keys = self.config.rights_keys();
        if let Err(reason) = detail.changed_on_instance(&keys, ReasonCode::UserIdTagUnchanged) {
            return Ok(ignored(id, reason));
        }
        let instance = resources
            .iter()
            .filter_map(|arn| arn.rsplit_once("instance/"))
            .map(|(_, i)| i)
            .next();
        // The owner (the user-id tag) and the guests (the slots) named now by a key that
        // changed. A removed key's old value is not in the event: the reconcile revokes.
        let named: Vec<&str> = keys
            .iter()
            .filter(|k| detail.changed_tag_keys.contains(k))
            .filter_map(|k| detail.tags.get(k.as_str()).and_then(Value::as_str))
            .collect();
        if named.is_empty() {
            return Ok(ignored(
                id,
                Reason::new(
                    ReasonCode::UserIdTagRemoved,
                    format!("{key} (or a guest slot) was removed from {}; the old value is unknown, the next reconcile revokes if needed", instance.unwrap_or("the instance")),
                ),
            ));
        }
        let role = &self.role.resolved(&self.iam).await?;
        let mut outcomes = Vec::new();
        for value in named {
            match UserId::parse_for(value, &role.id) {
                // The tag is on an instance of the event's region: read that region first.
                Ok(user) => {
                    let region = Reads::GrantIn(region.filter(|r| !r.is_empty()));
                    outcomes.push(self.converge_user(id, role, &user, region).await?);
                }
                Err(reason) => outcomes.push(ignored(id, reason)),
            }
        }
        Ok(combined(outcomes))
    }

    /// Why a managed node's registration or deregistration (`what`) changes no per-user
    /// statement: `HYBRID_NODES` off, or static session rights; None when it may.
    fn node_event_skipped(
        &self,
        id: Option<&str>,
        node: &ManagedNodeId,
        what: &str,
    ) -> Option<Outcome> {
        let reason = if !self.config.hybrid_nodes {
            Reason::new(
                ReasonCode::HybridNodesOff,
                format!("{node} {what}, and HYBRID_NODES is off"),
            )
        } else if self.config.rights.session_rights == SessionRights::Static {
            Reason::new(
                ReasonCode::StaticSessionRights,
                format!("{node} {what}; static session rights: the end-user policy covers every user, no per-user statement to write"),
            )
        } else {
            return None;
        };
        Some(ignored(id, reason))
    }

    /// A managed node outside EC2 registered: grant its owner, read from the node's own tags
    /// (its activation's, copied at registration). A node the owner-tagger has yet to own is
    /// granted by the reconcile after it is.
    async fn on_registration(
        &self,
        id: Option<&str>,
        region: Option<&str>,
        node: &ManagedNodeId,
    ) -> Result<Outcome, Error> {
        if let Some(skipped) = self.node_event_skipped(id, node, "registered") {
            return Ok(skipped);
        }
        let nodes = self.nodes.get(region);
        let key = &self.config.ownership.user_id_tag_key;
        let value = match nodes.registered_node(node).await? {
            Some(_) => nodes.node_tags(node).await?.remove(key),
            None => None,
        };
        let Some(value) = value else {
            return Ok(ignored(
                id,
                Reason::new(
                    ReasonCode::NoOwnerTag,
                    format!("{node} is not registered or has no {key} tag yet; the reconcile grants its owner once it has one"),
                ),
            ));
        };
        let role = &self.role.resolved(&self.iam).await?;
        match UserId::parse_for(&value, &role.id) {
            Ok(user) => {
                let here = Reads::GrantIn(region.filter(|r| !r.is_empty()));
                self.converge_user(id, role, &user, here).await
            }
            Err(reason) => Ok(ignored(id, reason)),
        }
    }

    /// A managed node outside EC2 left. Its tags went with it, so the event cannot say whose it
    /// was: every user is converged (the reconcile), which revokes its owner when it was their
    /// last node of any kind.
    async fn on_deregistration(
        &self,
        id: Option<&str>,
        node: &ManagedNodeId,
        mode: WriteMode,
    ) -> Result<Outcome, Error> {
        if let Some(skipped) = self.node_event_skipped(id, node, "deregistered") {
            return Ok(skipped);
        }
        let mut outcome = self.reconcile(mode).await?;
        outcome.reason = format!("{node} deregistered: {}", outcome.reason);
        info!(event_id = id, node_id = %node, decision = "deregistered", reason = %outcome.reason);
        Ok(outcome)
    }

    async fn on_state_change(
        &self,
        id: Option<&str>,
        region: Option<&str>,
        detail: StateChangeDetail,
    ) -> Result<Outcome, Error> {
        if detail.state != "terminated" {
            return Ok(ignored(
                id,
                Reason::new(
                    ReasonCode::NotTerminated,
                    format!("instance is {}: nothing to revoke", detail.state),
                ),
            ));
        }
        // Tolerate stray whitespace (AWS's own documentation sample has a leading space).
        let instance_id = match InstanceId::parse(detail.instance_id.trim()) {
            Ok(instance_id) => instance_id,
            Err(_) => {
                return Ok(ignored(
                    id,
                    Reason::new(
                        ReasonCode::InvalidInstanceId,
                        format!("{:?} is not an EC2 instance id", detail.instance_id),
                    ),
                ))
            }
        };
        let mut outcome = match self.config.rights.session_rights {
            // Nobody holds a per-user statement: only the open sessions need ending.
            SessionRights::Static => Outcome {
                reason: format!(
                    "{instance_id} terminated (static session rights: no statement to revoke)"
                ),
                ..Outcome::empty(Status::Unchanged)
            },
            SessionRights::PerUser => {
                let described = self
                    .ec2
                    .get(region)
                    .describe_instances(std::slice::from_ref(&instance_id))
                    .await?;
                let key = &self.config.ownership.user_id_tag_key;
                let Some(value) = described
                    .iter()
                    .find(|i| i.instance_id == instance_id)
                    .and_then(|i| i.tags.get(key))
                else {
                    return Ok(ignored(
                        id,
                        Reason::new(
                            ReasonCode::InstanceGone,
                            format!("{instance_id} is no longer visible or has no {key} tag; the next reconcile converges"),
                        ),
                    ));
                };
                let role = &self.role.resolved(&self.iam).await?;
                let user = match UserId::parse_for(value, &role.id) {
                    Ok(user) => user,
                    Err(reason) => return Ok(ignored(id, reason)),
                };
                self.converge_user(id, role, &user, Reads::Everywhere)
                    .await?
            }
        };
        if self.config.rights.end_sessions_on_terminate {
            let ended = self.ssm.get(region).end_sessions_on(&instance_id).await?;
            for session in &ended {
                info!(event_id = id, instance_id = %instance_id, session_id = %session, decision = "session ended");
            }
            if !ended.is_empty() {
                outcome
                    .changed
                    .extend(ended.iter().map(|s| format!("terminate session {s}")));
                outcome.status = Status::Changed;
                outcome.reason = format!(
                    "{}; ended {} session(s) on {instance_id}",
                    outcome.reason,
                    ended.len()
                );
            }
        }
        Ok(outcome)
    }

    /// Grant or revoke one user according to EC2, verifying after every write. With
    /// [`Reads`] says where the user's live instances are read: a user's right exists while any
    /// instance lives, and the statement goes only with the user's last instance anywhere.
    async fn converge_user(
        &self,
        id: Option<&str>,
        role: &ResolvedRole,
        user_id: &UserId,
        reads: Reads<'_>,
    ) -> Result<Outcome, Error> {
        let _writer = self.writer.lock().await;
        let user = user_id.user();
        let value = user_id.to_string();
        let mut applied = Vec::new();
        let mut live_count = 0;
        let mut capacity = None;
        // The only writer needs no verifying round (see the module's documentation).
        let rounds = if self.config.rights.single_writer {
            1
        } else {
            MAX_ROUNDS
        };
        let keys = self.config.rights_keys();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        for round in 1..=rounds {
            let value = value.as_str();
            live_count = self.live_instances(reads, &keys, value).await?.len();
            if live_count == 0 && self.config.hybrid_nodes {
                live_count = self.live_nodes(reads, value).await?;
            }
            let desired: BTreeSet<SessionName> = if live_count == 0 {
                BTreeSet::new()
            } else {
                BTreeSet::from([user.clone()])
            };
            let report = self
                .store
                .converge(role, &Scope::User(user.clone()), &desired, WriteMode::Apply)
                .await?;
            if let Some(refused) = report.refused.first() {
                warn!(event_id = id, user = %user, metric = "GrantRefused", reason = %refused);
                return Err(Error::PolicyBudgetFull {
                    message: refused.to_string(),
                });
            }
            capacity = report.capacity.or(capacity);
            if !report.wrote() {
                break;
            }
            if round == MAX_ROUNDS {
                // Only two racing writers get here.
                warn!(event_id = id, user = %user, "still changing after {MAX_ROUNDS} rounds; a later event or the reconcile converges");
            }
            applied.extend(report.applied);
        }
        let state = if live_count > 0 {
            format!("{user} has {live_count} live instance(s): granted")
        } else {
            format!("{user} has no live instance: revoked")
        };
        info!(event_id = id, user = %user, live_instances = live_count, decision = %state, writes = applied.len());
        // A name Session Manager will not tag: granted all the same (harmless), and said.
        let mut skipped = Vec::new();
        if live_count > 0 {
            if let Some(text) = untaggable_reason(&value) {
                let reason = Reason::new(ReasonCode::SessionNotTaggable, text);
                warn!(event_id = id, user = %user, code = %reason.code, reason = %reason, decision = "granted, but the user's sessions cannot be tagged");
                skipped.push(Skipped::user(user.to_string(), reason));
            }
        }
        let wrote = usize::from(!applied.is_empty());
        let counts = Counts {
            grants: if live_count > 0 { wrote } else { 0 },
            revokes: if live_count > 0 { 0 } else { wrote },
            capacity_used_percent: capacity.map(Capacity::used_percent),
            ..Counts::default()
        };
        Ok(Outcome {
            reason: state,
            changed: applied,
            skipped,
            counts,
            ..Outcome::empty(if wrote == 0 {
                Status::Unchanged
            } else {
                Status::Changed
            })
        })
    }

    /// The live instances on which one of `keys` is `value`, read where [`Reads`] says.
    async fn live_instances(
        &self,
        reads: Reads<'_>,
        keys: &[&str],
        value: &str,
    ) -> Result<Vec<DescribedInstance>, Error> {
        if let Reads::GrantIn(here) = reads {
            let live = self
                .ec2
                .get(here)
                .live_instances_tagged(keys, Some(value))
                .await
                .map_err(|e| Error::RegionUnreadable {
                    region: here.unwrap_or("the home region").to_owned(),
                    cause: e.to_string(),
                })?;
            if !live.is_empty() {
                return Ok(live);
            }
        }
        Ok(self
            .ec2
            .read_all(|ec2| async move { ec2.live_instances_tagged(keys, Some(value)).await })
            .await?
            .into_iter()
            .flat_map(|(_, found)| found)
            .collect())
    }

    /// How many managed nodes outside EC2 carry `value` in the user-id tag, read where
    /// [`Reads`] says (a user who has no live instance may still have one of these).
    async fn live_nodes(&self, reads: Reads<'_>, value: &str) -> Result<usize, Error> {
        let key = &self.config.ownership.user_id_tag_key;
        let read = |region: Option<&str>| {
            let nodes = self.nodes.get(region);
            let region = region.unwrap_or("the home region").to_owned();
            async move {
                nodes
                    .nodes_tagged(key, value)
                    .await
                    .map(|found| found.len())
                    .map_err(|e| Error::RegionUnreadable {
                        region,
                        cause: e.to_string(),
                    })
            }
        };
        if let Reads::GrantIn(here) = reads {
            let found = read(here).await?;
            if found > 0 {
                return Ok(found);
            }
        }
        let mut found = 0;
        for region in self.ec2.covered().await? {
            found += read(Some(region)).await?;
        }
        Ok(found)
    }

    /// The owners of the managed nodes outside EC2 in every covered region, added to `live`.
    async fn add_node_owners(&self, live: &mut LiveUsers, role: &RoleId) -> Result<(), Error> {
        let key = &self.config.ownership.user_id_tag_key;
        for region in self.ec2.covered().await? {
            let nodes = self.nodes.get(Some(region));
            let unreadable = |e: Error| Error::RegionUnreadable {
                region: region.clone(),
                cause: e.to_string(),
            };
            for node in nodes.registered_nodes().await.map_err(unreadable)? {
                let tags = nodes.node_tags(&node.node_id).await.map_err(unreadable)?;
                if let Some(value) = tags.get(key) {
                    live.instances += 1;
                    match UserId::parse_for(value, role) {
                        Ok(user) => {
                            live.users.insert(user.user().clone());
                        }
                        Err(reason) => live
                            .skipped
                            .push(Skipped::instance(node.node_id.to_string(), reason)),
                    }
                }
            }
        }
        Ok(())
    }

    /// Converge every user: add missing statements, remove stale ones, repair edited ones.
    pub async fn reconcile(&self, mode: WriteMode) -> Result<Outcome, Error> {
        let role = &self.role.resolved(&self.iam).await?;
        let _writer = self.writer.lock().await;
        if self.config.rights.session_rights == SessionRights::Static
            && self.role.users_role().is_identity_center()
        {
            // Per-user mode never ran on an Identity Center role: nothing to keep or remove.
            return Ok(Outcome {
                reason: "static session rights on an Identity Center role: nothing on the role to keep or remove".into(),
                ..Outcome::empty(Status::Unchanged)
            });
        }
        if self.config.rights.session_rights == SessionRights::Static {
            // Remove whatever per-user mode left behind; nothing is granted per user.
            let report = self
                .store
                .converge(role, &Scope::All, &BTreeSet::new(), mode)
                .await?;
            let mut outcome = reconcile_outcome(0, 0, report, Vec::new(), mode);
            outcome.reason = format!("static session rights: {}", outcome.reason);
            return Ok(outcome);
        }
        let mut live = LiveUsers::read(&self.ec2, &self.config.rights_keys(), &role.id).await?;
        if self.config.hybrid_nodes {
            self.add_node_owners(&mut live, &role.id).await?;
        }
        let report = self
            .store
            .converge(role, &Scope::All, &live.users, mode)
            .await?;
        Ok(reconcile_outcome(
            live.instances,
            live.users.len(),
            report,
            live.skipped,
            mode,
        ))
    }
}

/// What a whole-fleet read keeps: the users with a live instance on which one of the rights
/// keys (the user-id tag, a guest slot) names them, the number of such instances, and the tag
/// values that name no user of the role. Each page is reduced to this as it arrives, so memory
/// grows with the users, not with the fleet.
#[derive(Debug, Default)]
pub(crate) struct LiveUsers {
    pub(crate) instances: usize,
    pub(crate) users: BTreeSet<SessionName>,
    pub(crate) skipped: Vec<Skipped>,
}

impl LiveUsers {
    /// Every covered region, all at once.
    pub(crate) async fn read<E>(
        ec2: &RegionalClients<E>,
        keys: &[String],
        role: &RoleId,
    ) -> Result<Self, Error>
    where
        E: LiveInstances + InRegion + EnabledRegions + Clone + Sync,
    {
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let keys = keys.as_slice();
        let regions = ec2
            .read_fleet(|ec2| async move {
                let mut seen = LiveUsers::default();
                ec2.each_live_instance_tagged(keys, &mut |instance| {
                    seen.add(&instance, keys, role);
                })
                .await?;
                Ok(seen)
            })
            .await?;
        let mut all = LiveUsers::default();
        for (_, seen) in regions {
            all.instances += seen.instances;
            all.users.extend(seen.users);
            all.skipped.extend(seen.skipped);
        }
        Ok(all)
    }

    fn add(&mut self, instance: &DescribedInstance, keys: &[&str], role: &RoleId) {
        let values: Vec<&String> = keys.iter().filter_map(|k| instance.tags.get(*k)).collect();
        if values.is_empty() {
            return;
        }
        self.instances += 1;
        for value in values {
            match UserId::parse_for(value, role) {
                Ok(user) => {
                    self.users.insert(user.user().clone());
                }
                Err(reason) => self
                    .skipped
                    .push(Skipped::instance(instance.instance_id.to_string(), reason)),
            }
        }
    }
}

/// One outcome for an event that converged several users (an owner and guests): changed if
/// any changed, each user's reason, writes, skips and counts together.
fn combined(mut outcomes: Vec<Outcome>) -> Outcome {
    if outcomes.len() == 1 {
        return outcomes.remove(0);
    }
    let mut all = Outcome::empty(Status::Unchanged);
    let mut reasons = Vec::new();
    for outcome in outcomes {
        if outcome.status == Status::Changed {
            all.status = Status::Changed;
        }
        reasons.push(outcome.reason);
        all.changed.extend(outcome.changed);
        all.skipped.extend(outcome.skipped);
        all.counts.grants += outcome.counts.grants;
        all.counts.revokes += outcome.counts.revokes;
        all.counts.capacity_used_percent = outcome
            .counts
            .capacity_used_percent
            .or(all.counts.capacity_used_percent);
    }
    all.reason = reasons.join("; ");
    all
}

fn reconcile_outcome(
    instances: usize,
    users: usize,
    report: StoreReport,
    mut skipped: Vec<Skipped>,
    mode: WriteMode,
) -> Outcome {
    for refused in &report.refused {
        warn!(user = %refused.user, metric = "GrantRefused", reason = %refused);
        skipped.push(Skipped::user(
            refused.user.to_string(),
            Reason::new(ReasonCode::BudgetFull, refused.to_string()),
        ));
    }
    let capacity = report
        .capacity
        .map(|c| format!("; {} of {} policy characters in use", c.used, c.available))
        .unwrap_or_default();
    let (status, what) = if mode == WriteMode::DryRun {
        (
            Status::Unchanged,
            format!("dry run: {} change(s) planned", report.planned.len()),
        )
    } else if report.wrote() {
        (
            Status::Changed,
            format!("{} change(s) applied", report.applied.len()),
        )
    } else {
        (Status::Unchanged, "already converged".to_owned())
    };
    let refused = match report.refused.len() {
        0 => String::new(),
        n => format!("; {n} user(s) did not fit"),
    };
    let reason = format!(
        "reconcile: {instances} live tagged instance(s), {users} user(s); {what}{capacity}{refused}"
    );
    info!(decision = "reconcile", reason = %reason, drift_repaired = report.applied.len(), refused = report.refused.len());
    let counts = Counts {
        drift_repaired: report.applied.len(),
        grants_refused: report.refused.len(),
        capacity_used_percent: report.capacity.map(Capacity::used_percent),
        ..Counts::default()
    };
    Outcome {
        reason,
        changed: report.applied,
        planned: report.planned,
        skipped,
        counts,
        ..Outcome::empty(status)
    }
}
