//! The managed store: statements packed into customer-managed policies `<prefix>shard-NN`
//! under the path `/<prefix>/`, attached to the users' role. Scales to the role's
//! managed-policy limit.

use std::collections::BTreeSet;

use tracing::info;

use crate::domain::ids::RoleId;
use crate::domain::session_name::SessionName;
use crate::domain::shard_packing::{
    plan_shards, read_shard, shard_document, shard_index, shard_name, shard_path,
    typical_user_cost, Shard,
};
use crate::domain::statements::{inline_policy_name, user_of_policy_name, Scope};
use crate::error::Error;
use crate::ports::{ManagedPolicies, ManagedPolicy, PolicyStore, RolePolicies, StoreReport};

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
pub(crate) struct ShardInventory {
    pub shards: Vec<(Shard, String, bool)>,
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
    pub(crate) async fn inventory(&self, role_id: &RoleId) -> Result<ShardInventory, Error> {
        let path = shard_path(&self.prefix);
        let ours: Vec<(usize, ManagedPolicy)> = self
            .iam
            .list_policies(&path)
            .await?
            .into_iter()
            .filter_map(|p| shard_index(&self.prefix, &p.name).map(|index| (index, p)))
            .collect();
        let attached = self.iam.attached_policies(&self.role_name).await?;
        let foreign_attached = attached
            .iter()
            .filter(|arn| !ours.iter().any(|(_, p)| &p.arn == *arn))
            .count();
        let mut shards = Vec::new();
        for (index, policy) in &ours {
            let document = self
                .iam
                .policy_document(&policy.arn, &policy.default_version)
                .await?;
            shards.push((
                read_shard(*index, &document, role_id),
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
        role_id: &RoleId,
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
