//! Where the per-user statements live. One trait, so a store that scales further (sharded
//! managed policies) can replace the inline one without touching the handlers.

use std::collections::BTreeSet;
use std::future::Future;

use tracing::info;

use crate::error::Error;
use crate::ports::{ManagedPolicies, ManagedPolicy, RolePolicies};
use crate::session_name::SessionName;
use crate::session_policy::{
    inline_document, inline_policy_name, inline_size, plan_inline, policy_size, same_document,
    user_of_policy_name, Action, InlineState, Refused, Scope, INLINE_BUDGET,
};
use crate::shard_plan::{
    plan_shards, read_shard, shard_document, shard_index, shard_name, shard_path, typical_user_cost,
};

/// What a `converge` did, or in a dry run would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreReport {
    /// Writes made, described (`put <policy> (grant <user>)`, `delete <policy>`).
    pub applied: Vec<String>,
    /// Writes a dry run would have made.
    pub planned: Vec<String>,
    /// Grants that did not fit.
    pub refused: Vec<Refused>,
    /// Characters in use and available, when the store had to measure them.
    pub capacity: Option<(usize, usize)>,
}

impl StoreReport {
    pub fn wrote(&self) -> bool {
        !self.applied.is_empty()
    }
}

/// Keeps the users' role holding a statement for exactly the desired users.
pub trait PolicyStore {
    /// Make the users in `scope` granted exactly when they are in `desired`. With `dry_run`,
    /// plan only. Grants that do not fit are refused (reported), the rest is applied.
    fn converge(
        &self,
        role_id: &str,
        scope: &Scope,
        desired: &BTreeSet<SessionName>,
        dry_run: bool,
    ) -> impl Future<Output = Result<StoreReport, Error>> + Send;
}

/// One inline role policy per user, named `<prefix><username>-<hash>`.
pub struct InlineStore<P> {
    iam: P,
    role_name: String,
    prefix: String,
    budget: usize,
}

impl<P: RolePolicies + Sync> InlineStore<P> {
    pub fn new(iam: P, role_name: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            iam,
            role_name: role_name.into(),
            prefix: prefix.into(),
            budget: INLINE_BUDGET,
        }
    }

    /// Read the role's inline policies. Product policies whose name identifies the user are
    /// sized from what the product writes for that name (a reconcile re-reads and repairs
    /// them); every other policy is read, since it counts against the same quota.
    async fn read_state(&self, role_id: &str, read_ours: bool) -> Result<InlineState, Error> {
        let mut state = InlineState::default();
        for name in self.iam.list_role_policies(&self.role_name).await? {
            let ours = name.starts_with(&self.prefix);
            let known = user_of_policy_name(&self.prefix, &name).filter(|_| !read_ours);
            let document = match known {
                Some(user) => Some(inline_document(role_id, &user)),
                None => self.iam.get_role_policy(&self.role_name, &name).await?,
            };
            let Some(document) = document else { continue };
            if ours {
                state.ours.insert(name, document);
            } else {
                state.foreign_chars += policy_size(&document);
            }
        }
        Ok(state)
    }
}

impl<P: RolePolicies + Sync> PolicyStore for InlineStore<P> {
    async fn converge(
        &self,
        role_id: &str,
        scope: &Scope,
        desired: &BTreeSet<SessionName>,
        dry_run: bool,
    ) -> Result<StoreReport, Error> {
        // A grant or revoke first reads only that user's policy: usually nothing is to do.
        if let Scope::User(user) = scope {
            let name = inline_policy_name(&self.prefix, user);
            let current = self.iam.get_role_policy(&self.role_name, &name).await?;
            let want = desired.contains(user);
            let correct = current
                .as_deref()
                .is_some_and(|d| same_document(d, &inline_document(role_id, user)));
            if (want && correct) || (!want && current.is_none()) {
                return Ok(StoreReport::default());
            }
            if !want {
                return self
                    .apply(
                        vec![Action::Delete { name }],
                        dry_run,
                        StoreReport::default(),
                    )
                    .await;
            }
        }

        let state = self
            .read_state(role_id, matches!(scope, Scope::All))
            .await?;
        let plan = plan_inline(scope, desired, &state, role_id, &self.prefix, self.budget);
        // Headroom in users of a typical (10-character) name.
        let per_user = inline_size(role_id, 10);
        info!(
            used = plan.used_after,
            budget = self.budget,
            headroom_chars = self.budget.saturating_sub(plan.used_after),
            headroom_users = self.budget.saturating_sub(plan.used_after) / per_user.max(1),
            "inline policy capacity"
        );
        let report = StoreReport {
            refused: plan.refused,
            capacity: Some((plan.used_after, self.budget)),
            ..StoreReport::default()
        };
        self.apply(plan.actions, dry_run, report).await
    }
}

impl<P: RolePolicies + Sync> InlineStore<P> {
    async fn apply(
        &self,
        actions: Vec<Action>,
        dry_run: bool,
        mut report: StoreReport,
    ) -> Result<StoreReport, Error> {
        for action in actions {
            let described = action.describe();
            if dry_run {
                info!(decision = "planned", action = %described);
                report.planned.push(described);
                continue;
            }
            match &action {
                Action::Put { name, document, .. } => {
                    self.iam
                        .put_role_policy(&self.role_name, name, document)
                        .await?
                }
                Action::Delete { name } => {
                    self.iam.delete_role_policy(&self.role_name, name).await?
                }
            }
            info!(decision = "applied", action = %described);
            report.applied.push(described);
        }
        Ok(report)
    }
}

/// IAM keeps at most this many versions of a managed policy.
const MAX_POLICY_VERSIONS: usize = 5;

/// Statements packed into customer-managed policies `<prefix>shard-NN` under the path
/// `/<prefix>/`, attached to the users' role. Scales to the role's managed-policy limit.
pub struct ManagedStore<P> {
    iam: P,
    role_name: String,
    prefix: String,
    /// Shards the product may use at most (`MAX_POLICY_SHARDS`).
    max_shards: usize,
    /// Managed policies the role may have attached in all (`ROLE_MANAGED_POLICY_LIMIT`).
    role_limit: usize,
}

/// What the product's shards hold, and how much room the role has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInventory {
    pub shards: Vec<(crate::shard_plan::Shard, String, bool)>,
    /// Shards usable now: `min(MAX_POLICY_SHARDS, ROLE_MANAGED_POLICY_LIMIT - others attached)`.
    pub max_shards: usize,
    pub foreign_attached: usize,
}

impl<P: ManagedPolicies + RolePolicies + Sync> ManagedStore<P> {
    pub fn new(
        iam: P,
        role_name: impl Into<String>,
        prefix: impl Into<String>,
        max_shards: usize,
        role_limit: usize,
    ) -> Self {
        Self {
            iam,
            role_name: role_name.into(),
            prefix: prefix.into(),
            max_shards,
            role_limit,
        }
    }

    /// Read every shard (name, ARN, attached?) and the room left on the role.
    pub async fn inventory(&self, role_id: &str) -> Result<ShardInventory, Error> {
        let path = shard_path(&self.prefix);
        let ours: Vec<ManagedPolicy> = self
            .iam
            .list_policies(&path)
            .await?
            .into_iter()
            .filter(|p| shard_index(&self.prefix, &p.name).is_some())
            .collect();
        let attached = self.iam.attached_policies(&self.role_name).await?;
        let foreign_attached = attached
            .iter()
            .filter(|arn| !ours.iter().any(|p| &p.arn == *arn))
            .count();
        let mut shards = Vec::new();
        for policy in &ours {
            let index = shard_index(&self.prefix, &policy.name).unwrap_or_default();
            let document = self
                .iam
                .policy_document(&policy.arn, &policy.default_version)
                .await?;
            shards.push((
                read_shard(index, &document, role_id),
                policy.arn.clone(),
                attached.contains(&policy.arn),
            ));
        }
        shards.sort_by_key(|(shard, _, _)| shard.index);
        Ok(ShardInventory {
            shards,
            max_shards: self
                .max_shards
                .min(self.role_limit.saturating_sub(foreign_attached)),
            foreign_attached,
        })
    }

    async fn write_shard(&self, arn: &str, document: &str) -> Result<(), Error> {
        let versions = self.iam.list_policy_versions(arn).await?;
        if versions.len() >= MAX_POLICY_VERSIONS {
            if let Some(oldest) = versions
                .iter()
                .filter(|v| !v.is_default)
                .min_by_key(|v| (v.created, v.id.clone()))
            {
                self.iam.delete_policy_version(arn, &oldest.id).await?;
            }
        }
        self.iam.create_policy_version(arn, document).await
    }

    async fn delete_shard(&self, arn: &str) -> Result<(), Error> {
        self.iam.detach_role_policy(&self.role_name, arn).await?;
        for version in self
            .iam
            .list_policy_versions(arn)
            .await?
            .iter()
            .filter(|v| !v.is_default)
        {
            self.iam.delete_policy_version(arn, &version.id).await?;
        }
        self.iam.delete_policy(arn).await
    }

    /// Inline policies left by the inline store, for the users in scope that should not keep them.
    async fn inline_leftovers(
        &self,
        scope: &Scope,
        desired: &BTreeSet<SessionName>,
    ) -> Result<Vec<String>, Error> {
        match scope {
            Scope::All => Ok(self
                .iam
                .list_role_policies(&self.role_name)
                .await?
                .into_iter()
                .filter(|name| user_of_policy_name(&self.prefix, name).is_some())
                .collect()),
            // A grant needs no clean-up: the old inline statement grants the same.
            Scope::User(user) if desired.contains(user) => Ok(Vec::new()),
            Scope::User(user) => {
                let name = inline_policy_name(&self.prefix, user);
                Ok(self
                    .iam
                    .get_role_policy(&self.role_name, &name)
                    .await?
                    .map(|_| name)
                    .into_iter()
                    .collect())
            }
        }
    }
}

impl<P: ManagedPolicies + RolePolicies + Sync> PolicyStore for ManagedStore<P> {
    async fn converge(
        &self,
        role_id: &str,
        scope: &Scope,
        desired: &BTreeSet<SessionName>,
        dry_run: bool,
    ) -> Result<StoreReport, Error> {
        let inventory = self.inventory(role_id).await?;
        let current: Vec<_> = inventory.shards.iter().map(|(s, _, _)| s.clone()).collect();
        let plan = plan_shards(&current, scope, desired, role_id, inventory.max_shards);
        info!(
            used = plan.used_after,
            budget = plan.capacity,
            headroom_chars = plan.capacity.saturating_sub(plan.used_after),
            headroom_users =
                plan.capacity.saturating_sub(plan.used_after) / typical_user_cost(role_id),
            shards = inventory.shards.len(),
            max_shards = inventory.max_shards,
            "managed policy capacity"
        );
        let mut report = StoreReport {
            refused: plan.refused.clone(),
            capacity: Some((plan.used_after, plan.capacity)),
            ..StoreReport::default()
        };
        let path = shard_path(&self.prefix);
        let mut steps: Vec<(String, ShardStep)> = Vec::new();
        for (index, users) in &plan.writes {
            let name = shard_name(&self.prefix, *index);
            let existing = inventory.shards.iter().find(|(s, _, _)| s.index == *index);
            let document = shard_document(role_id, users);
            match (existing, users.is_empty()) {
                (Some((_, arn, _)), true) => {
                    steps.push((format!("delete {name}"), ShardStep::Delete(arn.clone())))
                }
                (Some((_, arn, _)), false) => steps.push((
                    format!("update {name} ({} users)", users.len()),
                    ShardStep::Update(arn.clone(), document),
                )),
                (None, false) => steps.push((
                    format!("create {name} ({} users)", users.len()),
                    ShardStep::Create(name.clone(), document),
                )),
                (None, true) => {}
            }
        }
        for (shard, arn, attached) in &inventory.shards {
            let emptied = plan.writes.get(&shard.index).is_some_and(|u| u.is_empty());
            if !attached && !emptied {
                steps.push((
                    format!("attach {}", shard_name(&self.prefix, shard.index)),
                    ShardStep::Attach(arn.clone()),
                ));
            }
        }
        // Old inline statements go only after the shards hold their users.
        for name in self.inline_leftovers(scope, desired).await? {
            steps.push((
                format!("delete inline {name}"),
                ShardStep::DeleteInline(name),
            ));
        }
        for (described, step) in steps {
            if dry_run {
                info!(decision = "planned", action = %described);
                report.planned.push(described);
                continue;
            }
            match step {
                ShardStep::Create(name, document) => {
                    let arn = self.iam.create_policy(&name, &path, &document).await?;
                    self.iam.attach_role_policy(&self.role_name, &arn).await?;
                }
                ShardStep::Update(arn, document) => self.write_shard(&arn, &document).await?,
                ShardStep::Delete(arn) => self.delete_shard(&arn).await?,
                ShardStep::Attach(arn) => {
                    self.iam.attach_role_policy(&self.role_name, &arn).await?
                }
                ShardStep::DeleteInline(name) => {
                    self.iam.delete_role_policy(&self.role_name, &name).await?
                }
            }
            info!(decision = "applied", action = %described);
            report.applied.push(described);
        }
        Ok(report)
    }
}

enum ShardStep {
    Create(String, String),
    Update(String, String),
    Delete(String),
    Attach(String),
    DeleteInline(String),
}

/// The store chosen by `POLICY_STORE`.
pub enum AnyStore<P> {
    Inline(InlineStore<P>),
    Managed(ManagedStore<P>),
}

impl<P: ManagedPolicies + RolePolicies + Sync + Clone> AnyStore<P> {
    pub fn from_config(iam: P, config: &crate::config::Config) -> Self {
        match config.policy_store {
            crate::config::StoreKind::Inline => AnyStore::Inline(InlineStore::new(
                iam,
                &config.session_role_name,
                &config.policy_name_prefix,
            )),
            crate::config::StoreKind::Managed => AnyStore::Managed(ManagedStore::new(
                iam,
                &config.session_role_name,
                &config.policy_name_prefix,
                config.max_policy_shards,
                config.role_managed_policy_limit,
            )),
        }
    }
}

impl<P: ManagedPolicies + RolePolicies + Sync> PolicyStore for AnyStore<P> {
    async fn converge(
        &self,
        role_id: &str,
        scope: &Scope,
        desired: &BTreeSet<SessionName>,
        dry_run: bool,
    ) -> Result<StoreReport, Error> {
        match self {
            AnyStore::Inline(store) => store.converge(role_id, scope, desired, dry_run).await,
            AnyStore::Managed(store) => store.converge(role_id, scope, desired, dry_run).await,
        }
    }
}
