//! The use cases, written against the ports: owner tagging, session rights (with its two
//! policy stores), the users' role id, the capacity report, the access doctor, and the
//! configuration of a deployed stack for the operators' tools.

pub mod capacity;
pub mod doctor;
pub mod inline_store;
pub mod managed_nodes;
pub mod managed_store;
pub mod owner_tagging;
pub(crate) mod regions;
pub mod role_resolver;
pub mod session_rights;
pub(crate) mod sharing;
pub mod stack;
pub mod trails;
pub mod uninstall;

use std::collections::BTreeSet;

use crate::config::{Config, SessionRights, StoreKind, WriteMode};
use crate::domain::ids::ResolvedRole;
use crate::domain::session_name::SessionName;
use crate::domain::statements::Scope;
use crate::error::Error;
use crate::ports::{ManagedPolicies, PolicyStore, RolePolicies, StoreReport};
use inline_store::InlineStore;
use managed_store::ManagedStore;

/// The store chosen by `POLICY_STORE`.
pub enum AnyStore<P> {
    Inline(InlineStore<P>),
    Managed(ManagedStore<P>),
}

impl<P: ManagedPolicies + RolePolicies + Sync + Clone> AnyStore<P> {
    pub fn from_config(iam: P, config: &Config) -> Self {
        match (config.rights.session_rights, config.rights.policy_store) {
            // Static mode only ever removes what per-user mode left; the managed store removes
            // both its shards and the inline store's policies.
            (SessionRights::Static, _) | (SessionRights::PerUser, StoreKind::Managed) => {
                AnyStore::Managed(ManagedStore::from_config(iam, config))
            }
            (SessionRights::PerUser, StoreKind::Inline) => {
                AnyStore::Inline(InlineStore::new(iam, &config.rights.policy_name_prefix))
            }
        }
    }
}

impl<P: ManagedPolicies + RolePolicies + Sync> PolicyStore for AnyStore<P> {
    async fn converge(
        &self,
        role: &ResolvedRole,
        scope: &Scope,
        desired: &BTreeSet<SessionName>,
        mode: WriteMode,
    ) -> Result<StoreReport, Error> {
        match self {
            AnyStore::Inline(store) => store.converge(role, scope, desired, mode).await,
            AnyStore::Managed(store) => store.converge(role, scope, desired, mode).await,
        }
    }
}

#[cfg(test)]
mod use_case_tests;

/// Each store's writes, in order: a dry run only records each as planned; otherwise each is
/// applied (the first failure stops the run, its error returned) and recorded as applied.
pub(crate) async fn apply_steps<S, F, Fut>(
    steps: Vec<(String, S)>,
    mode: WriteMode,
    report: &mut StoreReport,
    mut apply: F,
) -> Result<(), Error>
where
    F: FnMut(S) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    for (described, step) in steps {
        if mode == WriteMode::DryRun {
            tracing::info!(decision = "planned", action = %described);
            report.planned.push(described);
            continue;
        }
        apply(step).await?;
        tracing::info!(decision = "applied", action = %described);
        report.applied.push(described);
    }
    Ok(())
}
