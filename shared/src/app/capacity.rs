//! The capacity report: who holds a statement, where, how full the store is, and any drift
//! between EC2 (who should be granted) and IAM (who is).

use std::collections::BTreeSet;

use serde::Serialize;

use super::inline_store::{read_inline_policies, Documents};
use super::managed_store::{Attachments, ManagedStore};
use super::regions::RegionalClients;
use super::session_rights::LiveUsers;
use crate::config::{Config, SessionRights, StoreKind, UsersRole};
use crate::domain::capacity::headroom_users;
use crate::domain::ids::ResolvedRole;
use crate::domain::session_name::SessionName;
use crate::domain::shard_packing::{shard_name, SHARD_LIMIT};
use crate::domain::statements::{policy_size, INLINE_BUDGET};
use crate::error::Error;
use crate::ports::{EnabledRegions, InRegion, LiveInstances, ManagedPolicies, RolePolicies};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapacityReport {
    /// The users' role examined, and how it was found (by name, or the permission set's role).
    pub role: String,
    pub role_found: String,
    /// `per-user` or `static`: in static mode per-user statements are only leftovers.
    pub session_rights: &'static str,
    pub store: &'static str,
    pub users_with_statements: Vec<String>,
    pub shards: Vec<ShardLine>,
    pub inline_policies: Vec<InlineLine>,
    pub max_shards: usize,
    pub other_managed_policies_attached: usize,
    pub chars_used: usize,
    pub chars_available: usize,
    /// More users of a 10-character name that fit.
    pub headroom_users: usize,
    pub drift: Drift,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShardLine {
    pub name: String,
    pub users: usize,
    pub chars: usize,
    pub limit: usize,
    pub attached: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InlineLine {
    pub name: String,
    /// Whether the product owns it (by prefix).
    pub ours: bool,
    pub chars: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// Users with a live instance but no statement.
    pub missing: Vec<String>,
    /// Users with a statement but no live instance.
    pub stale: Vec<String>,
}

/// The role's inline policies, and the users the product's per-user ones grant.
async fn inline_lines<P: RolePolicies + Sync>(
    config: &Config,
    role: &ResolvedRole,
    iam: &P,
) -> Result<(Vec<InlineLine>, BTreeSet<SessionName>), Error> {
    let policies = read_inline_policies(
        iam,
        role,
        &config.rights.policy_name_prefix,
        Documents::Read,
    )
    .await?;
    let mut granted = BTreeSet::new();
    let mut lines = Vec::new();
    for policy in policies {
        lines.push(InlineLine {
            chars: policy.document.as_deref().map_or(0, policy_size),
            ours: policy.holder.is_some(),
            name: policy.name,
        });
        granted.extend(policy.holder);
    }
    Ok((lines, granted))
}

/// Read EC2 and IAM and build the report for the users' role as resolved (by name, or the
/// Identity Center role of a permission set). Reads only; writes nothing.
pub async fn capacity_report<E, P>(
    config: &Config,
    role: &ResolvedRole,
    ec2: &E,
    iam: &P,
) -> Result<CapacityReport, Error>
where
    E: LiveInstances + InRegion + EnabledRegions + Clone + Send + Sync,
    P: ManagedPolicies + RolePolicies + Sync + Clone,
{
    // In static mode nobody should hold a per-user statement: any left is stale (the reconcile
    // removes it), and nobody is missing one.
    let desired: BTreeSet<SessionName> = match config.rights.session_rights {
        SessionRights::Static => BTreeSet::new(),
        SessionRights::PerUser => live_users(config, role, ec2).await?,
    };

    let (inline_policies, mut granted) = inline_lines(config, role, iam).await?;
    let inline_chars = inline_policies.iter().map(|p| p.chars).sum();

    let store = ManagedStore::from_config(iam.clone(), config);
    let inventory = store.inventory(role, Attachments::Fresh).await?;
    let mut shards = Vec::new();
    for entry in &inventory.shards {
        granted.extend(entry.shard.users.iter().cloned());
        shards.push(ShardLine {
            name: shard_name(&config.rights.policy_name_prefix, entry.shard.index),
            users: entry.shard.users.len(),
            chars: entry.shard.chars,
            limit: SHARD_LIMIT,
            attached: entry.attached,
        });
    }

    let (store_name, used, available) = match config.rights.policy_store {
        StoreKind::Managed => (
            "managed",
            shards.iter().filter(|s| s.users > 0).map(|s| s.chars).sum(),
            inventory.max_shards * SHARD_LIMIT,
        ),
        StoreKind::Inline => ("inline", inline_chars, INLINE_BUDGET),
    };
    let role_found = match &config.users_role {
        UsersRole::Named(name) => format!("by name ({name})"),
        UsersRole::PermissionSet(set) => {
            format!("as the Identity Center role of permission set {set}")
        }
    };
    Ok(CapacityReport {
        role: role.name.clone(),
        role_found,
        session_rights: match config.rights.session_rights {
            SessionRights::PerUser => "per-user",
            SessionRights::Static => "static",
        },
        store: store_name,
        users_with_statements: granted.iter().map(|u| u.to_string()).collect(),
        shards,
        inline_policies,
        max_shards: inventory.max_shards,
        other_managed_policies_attached: inventory.foreign_attached,
        chars_used: used,
        chars_available: available,
        headroom_users: headroom_users(config.rights.policy_store, &role.id, used, available),
        drift: Drift {
            missing: desired
                .difference(&granted)
                .map(|u| u.to_string())
                .collect(),
            stale: granted
                .difference(&desired)
                .map(|u| u.to_string())
                .collect(),
        },
    })
}

/// Users with a live instance tagged with their user id for `role`, in every covered region.
async fn live_users<E>(
    config: &Config,
    role: &ResolvedRole,
    ec2: &E,
) -> Result<BTreeSet<SessionName>, Error>
where
    E: LiveInstances + InRegion + EnabledRegions + Clone + Send + Sync,
{
    let regions = RegionalClients::new(ec2.clone(), config);
    Ok(LiveUsers::read(&regions, &config.rights_keys(), &role.id)
        .await?
        .users)
}

impl std::fmt::Display for CapacityReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "role: {}, found {}", self.role, self.role_found)?;
        writeln!(f, "session rights: {}", self.session_rights)?;
        writeln!(
            f,
            "store: {} (up to {} shards; {} other managed policies attached to the role)",
            self.store, self.max_shards, self.other_managed_policies_attached
        )?;
        writeln!(
            f,
            "users with statements: {}",
            self.users_with_statements.len()
        )?;
        for user in &self.users_with_statements {
            writeln!(f, "  {user}")?;
        }
        writeln!(f, "shards: {}", self.shards.len())?;
        for shard in &self.shards {
            let attached = if shard.attached {
                "attached"
            } else {
                "NOT ATTACHED"
            };
            writeln!(
                f,
                "  {:<32} {:>4} users {:>5}/{} chars  {attached}",
                shard.name, shard.users, shard.chars, shard.limit
            )?;
        }
        writeln!(f, "inline policies: {}", self.inline_policies.len())?;
        for policy in &self.inline_policies {
            let owner = if policy.ours { "product" } else { "other" };
            writeln!(
                f,
                "  {:<48} {:>5} chars  {owner}",
                policy.name, policy.chars
            )?;
        }
        let percent = if self.chars_available == 0 {
            100.0
        } else {
            100.0 * self.chars_used as f64 / self.chars_available as f64
        };
        writeln!(
            f,
            "characters: {} used of {} available ({percent:.1}%)",
            self.chars_used, self.chars_available
        )?;
        if self.session_rights == "static" {
            // One statement serves every user: the shards hold only what per-user mode left.
            writeln!(
                f,
                "headroom: not limited by IAM (static session rights: one statement for every user)"
            )?;
        } else {
            writeln!(
                f,
                "headroom: about {} more users (10-character names)",
                self.headroom_users
            )?;
        }
        if self.drift.missing.is_empty() && self.drift.stale.is_empty() {
            writeln!(f, "drift: none")
        } else {
            writeln!(
                f,
                "drift: {} missing (live instance, no statement): {}",
                self.drift.missing.len(),
                self.drift.missing.join(", ")
            )?;
            writeln!(
                f,
                "       {} stale (statement, no live instance): {}",
                self.drift.stale.len(),
                self.drift.stale.join(", ")
            )
        }
    }
}
