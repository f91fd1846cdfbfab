//! The managed store: statements packed into customer-managed policies `<prefix>shard-NN`
//! under the path `/<prefix>/`, attached to the users' role. Scales to the role's
//! managed-policy limit.
//!
//! **Cost.** IAM policy versions are immutable, so a shard's document is cached per process
//! under (policy id, version id): one `ListPolicies` tells which cached documents are still the
//! default, and only shards that changed since are read again. A write puts its own new version
//! in the cache. Per-user converges also reuse the role's attachments from the last read (the
//! reconcile re-reads them, and re-attaches a shard someone detached). A warm grant or revoke
//! therefore costs the same at 1 shard or 25; a new process reads every shard once.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use tracing::info;

use super::inline_store::{read_inline_policies, Documents};
use crate::config::{StoreKind, WriteMode};
use crate::domain::capacity::{headroom_users, Capacity};
use crate::domain::ids::{ResolvedRole, RoleId};
use crate::domain::session_name::SessionName;
use crate::domain::shard_packing::{
    plan_shards, read_shard, shard_document, shard_index, shard_name, shard_path, Shard, ShardPlan,
};
use crate::domain::statements::Scope;
use crate::error::Error;
use crate::ports::{ManagedPolicies, ManagedPolicy, PolicyStore, RolePolicies, StoreReport};

/// IAM keeps at most this many versions of a managed policy.
const MAX_POLICY_VERSIONS: usize = 5;

/// Statements packed into customer-managed policies `<prefix>shard-NN` under the path
/// `/<prefix>/`, attached to the users' role. Scales to the role's managed-policy limit.
pub struct ManagedStore<P> {
    iam: P,
    prefix: String,
    /// Shards the product may use at most (`MAX_POLICY_SHARDS`).
    max_shards: usize,
    /// Managed policies the role may have attached in all (`ROLE_MANAGED_POLICY_LIMIT`).
    role_limit: usize,
    cache: Mutex<Cache>,
}

/// What this process learned from IAM and may reuse.
#[derive(Debug, Default)]
struct Cache {
    /// (policy id, version id) → document. Versions never change once written.
    documents: HashMap<(String, String), String>,
    /// The users' role (by name) and the ARNs attached to it, as last read or written by this
    /// process. Another name (an Identity Center role re-created) is read afresh.
    attached: Option<(String, Vec<String>)>,
}

/// Whether the role's attachments may come from this process's cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attachments {
    /// Reuse the last read (a grant or revoke: only this process writes them).
    Cached,
    /// Read them from IAM (the reconcile, the reports: someone may have detached a shard).
    Fresh,
}

/// One of the product's shards, as read from IAM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShardEntry {
    pub shard: Shard,
    pub policy: ManagedPolicy,
    /// Whether it is attached to the users' role.
    pub attached: bool,
}

/// What the product's shards hold, and how much room the role has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShardInventory {
    /// Every shard, by index.
    pub shards: Vec<ShardEntry>,
    /// Shards usable now: `min(MAX_POLICY_SHARDS, ROLE_MANAGED_POLICY_LIMIT - others attached)`.
    pub max_shards: usize,
    pub foreign_attached: usize,
}

impl<P: ManagedPolicies + RolePolicies + Sync> ManagedStore<P> {
    /// The store as `config` sets it: the prefix, the shards it may use, IAM's managed policies
    /// per role.
    pub fn from_config(iam: P, config: &crate::Config) -> Self {
        Self::new(
            iam,
            &config.rights.policy_name_prefix,
            config.rights.max_policy_shards,
            config.rights.role_managed_policy_limit,
        )
    }

    pub fn new(iam: P, prefix: impl Into<String>, max_shards: usize, role_limit: usize) -> Self {
        Self {
            iam,
            prefix: prefix.into(),
            max_shards,
            role_limit,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The shard writes `plan` needs, then the attachments it lacks, each described.
    fn shard_steps(
        &self,
        inventory: &ShardInventory,
        plan: &ShardPlan,
        role_id: &RoleId,
    ) -> Vec<(String, ShardStep)> {
        let mut steps: Vec<(String, ShardStep)> = Vec::new();
        for (index, users) in &plan.writes {
            let name = shard_name(&self.prefix, *index);
            let existing = inventory.shards.iter().find(|e| e.shard.index == *index);
            let document = shard_document(role_id, users);
            match (existing, users.is_empty()) {
                (Some(entry), true) => steps.push((
                    format!("delete {name}"),
                    ShardStep::Delete(entry.policy.arn.clone()),
                )),
                (Some(entry), false) => steps.push((
                    format!("update {name} ({} users)", users.len()),
                    ShardStep::Update(entry.policy.clone(), document),
                )),
                (None, false) => steps.push((
                    format!("create {name} ({} users)", users.len()),
                    ShardStep::Create(name.clone(), document),
                )),
                (None, true) => {}
            }
        }
        for entry in &inventory.shards {
            let index = entry.shard.index;
            let emptied = plan.writes.get(&index).is_some_and(|u| u.is_empty());
            if !entry.attached && !emptied {
                steps.push((
                    format!("attach {}", shard_name(&self.prefix, index)),
                    ShardStep::Attach(entry.policy.arn.clone()),
                ));
            }
        }
        steps
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Read every shard (policy, contents, attached?) and the room left on `role`.
    pub(crate) async fn inventory(
        &self,
        role: &ResolvedRole,
        attachments: Attachments,
    ) -> Result<ShardInventory, Error> {
        let path = shard_path(&self.prefix);
        let ours: Vec<(usize, ManagedPolicy)> = self
            .iam
            .list_policies(&path)
            .await?
            .into_iter()
            .filter_map(|p| shard_index(&self.prefix, &p.name).map(|index| (index, p)))
            .collect();
        let cached_attachments = match attachments {
            Attachments::Cached => self
                .cache()
                .attached
                .clone()
                .filter(|(name, _)| *name == role.name)
                .map(|(_, arns)| arns),
            Attachments::Fresh => None,
        };
        let attached = match cached_attachments {
            Some(attached) => attached,
            None => {
                let attached = self.iam.attached_policies(&role.name).await?;
                self.cache().attached = Some((role.name.clone(), attached.clone()));
                attached
            }
        };
        let foreign_attached = attached
            .iter()
            .filter(|arn| !ours.iter().any(|(_, p)| &p.arn == *arn))
            .count();
        let mut shards = Vec::new();
        for (index, policy) in ours {
            let key = (policy.id.clone(), policy.default_version.clone());
            let cached = self.cache().documents.get(&key).cloned();
            let document = match cached {
                Some(document) => document,
                None => {
                    let document = self
                        .iam
                        .policy_document(&policy.arn, &policy.default_version)
                        .await?;
                    self.cache().documents.insert(key, document.clone());
                    document
                }
            };
            shards.push(ShardEntry {
                shard: read_shard(index, &document, &role.id),
                attached: attached.contains(&policy.arn),
                policy,
            });
        }
        // Forget versions that are no longer anybody's default.
        let current: BTreeSet<(String, String)> = shards
            .iter()
            .map(|e| (e.policy.id.clone(), e.policy.default_version.clone()))
            .collect();
        self.cache()
            .documents
            .retain(|key, _| current.contains(key));
        shards.sort_by_key(|e| e.shard.index);
        Ok(ShardInventory {
            shards,
            max_shards: self
                .max_shards
                .min(self.role_limit.saturating_sub(foreign_attached)),
            foreign_attached,
        })
    }

    async fn write_shard(&self, policy: &ManagedPolicy, document: &str) -> Result<(), Error> {
        let arn = policy.arn.as_str();
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
        let version = self.iam.create_policy_version(arn, document).await?;
        self.cache()
            .documents
            .insert((policy.id.clone(), version), document.to_owned());
        Ok(())
    }

    async fn create_shard(
        &self,
        role_name: &str,
        name: &str,
        path: &str,
        document: &str,
    ) -> Result<(), Error> {
        let policy = self.iam.create_policy(name, path, document).await?;
        self.cache().documents.insert(
            (policy.id.clone(), policy.default_version.clone()),
            document.to_owned(),
        );
        self.attach(role_name, &policy.arn).await
    }

    /// The cached attachments of `role_name`, to keep in step with a write.
    fn cached_attachments(&self, role_name: &str, update: impl FnOnce(&mut Vec<String>)) {
        if let Some((name, attached)) = self.cache().attached.as_mut() {
            if name == role_name {
                update(attached);
            }
        }
    }

    async fn attach(&self, role_name: &str, arn: &str) -> Result<(), Error> {
        self.iam.attach_role_policy(role_name, arn).await?;
        self.cached_attachments(role_name, |attached| attached.push(arn.to_owned()));
        Ok(())
    }

    async fn delete_shard(&self, role_name: &str, arn: &str) -> Result<(), Error> {
        self.iam.detach_role_policy(role_name, arn).await?;
        self.cached_attachments(role_name, |attached| attached.retain(|a| a != arn));
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

    /// Inline policies left by the inline store. Only the reconcile migrates them: a grant needs
    /// no clean-up (the old statement grants the same), and a revoke leaves an old statement
    /// until the next reconcile rather than pay an IAM read on every revoke.
    async fn inline_leftovers(
        &self,
        role: &ResolvedRole,
        scope: &Scope,
    ) -> Result<Vec<String>, Error> {
        match scope {
            Scope::All => Ok(
                read_inline_policies(&self.iam, role, &self.prefix, Documents::Names)
                    .await?
                    .into_iter()
                    .filter(|policy| policy.holder.is_some())
                    .map(|policy| policy.name)
                    .collect(),
            ),
            Scope::User(_) => Ok(Vec::new()),
        }
    }
}

impl<P: ManagedPolicies + RolePolicies + Sync> PolicyStore for ManagedStore<P> {
    async fn converge(
        &self,
        role: &ResolvedRole,
        scope: &Scope,
        desired: &BTreeSet<SessionName>,
        mode: WriteMode,
    ) -> Result<StoreReport, Error> {
        let role_id: &RoleId = &role.id;
        let attachments = match scope {
            Scope::All => Attachments::Fresh,
            Scope::User(_) => Attachments::Cached,
        };
        let inventory = self.inventory(role, attachments).await?;
        let current: Vec<Shard> = inventory.shards.iter().map(|e| e.shard.clone()).collect();
        let plan = plan_shards(&current, scope, desired, role_id, inventory.max_shards);
        info!(
            used = plan.used_after,
            budget = plan.capacity,
            headroom_chars = plan.capacity.saturating_sub(plan.used_after),
            headroom_users =
                headroom_users(StoreKind::Managed, role_id, plan.used_after, plan.capacity),
            shards = inventory.shards.len(),
            max_shards = inventory.max_shards,
            "managed policy capacity"
        );
        let mut report = StoreReport {
            refused: plan.refused.clone(),
            capacity: Some(Capacity {
                used: plan.used_after,
                available: plan.capacity,
            }),
            ..StoreReport::default()
        };
        let path = shard_path(&self.prefix);
        let mut steps = self.shard_steps(&inventory, &plan, role_id);
        // Old inline statements go only after the shards hold their users.
        for name in self.inline_leftovers(role, scope).await? {
            steps.push((
                format!("delete inline {name}"),
                ShardStep::DeleteInline(name),
            ));
        }
        let path = &path;
        super::apply_steps(steps, mode, &mut report, |step| async move {
            match step {
                ShardStep::Create(name, document) => {
                    self.create_shard(&role.name, &name, path, &document).await
                }
                ShardStep::Update(policy, document) => self.write_shard(&policy, &document).await,
                ShardStep::Delete(arn) => self.delete_shard(&role.name, &arn).await,
                ShardStep::Attach(arn) => self.attach(&role.name, &arn).await,
                ShardStep::DeleteInline(name) => {
                    self.iam.delete_role_policy(&role.name, &name).await
                }
            }
        })
        .await?;
        Ok(report)
    }
}

enum ShardStep {
    Create(String, String),
    Update(ManagedPolicy, String),
    Delete(String),
    Attach(String),
    DeleteInline(String),
}
