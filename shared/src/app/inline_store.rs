//! The inline store: one inline role policy per user, named `<prefix><username>-<hash>`.
//! About 40 users fit in IAM's 10,240-character budget for a role's inline policies.

use std::collections::BTreeSet;

use tracing::info;

use crate::config::{StoreKind, WriteMode};
use crate::domain::capacity::{headroom_users, Capacity};
use crate::domain::ids::ResolvedRole;
use crate::domain::inline_plan::{plan_inline, Action, InlineState};
use crate::domain::session_name::SessionName;
use crate::domain::statements::{
    inline_document, inline_policy_name, policy_size, same_document, user_of_policy_name, Scope,
    INLINE_BUDGET,
};
use crate::error::Error;
use crate::ports::{PolicyStore, RolePolicies, StoreReport};

/// One inline role policy per user, named `<prefix><username>-<hash>`.
pub struct InlineStore<P> {
    iam: P,
    prefix: String,
    budget: usize,
}

/// How the product's own inline policies are sized when the role is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OwnPolicies {
    /// From what the product writes for the user the name identifies: no read (a grant or
    /// revoke).
    Derive,
    /// Read from IAM, so that edited ones are seen and repaired (the reconcile).
    Read,
}

impl<P: RolePolicies + Sync> InlineStore<P> {
    pub fn new(iam: P, prefix: impl Into<String>) -> Self {
        Self {
            iam,
            prefix: prefix.into(),
            budget: INLINE_BUDGET,
        }
    }

    /// Read the role's inline policies. Every policy the product does not own is read, since it
    /// counts against the same quota; the product's own are sized as `own` says.
    async fn read_state(
        &self,
        role: &ResolvedRole,
        own: OwnPolicies,
    ) -> Result<InlineState, Error> {
        let mut state = InlineState::default();
        for name in self.iam.list_role_policies(&role.name).await? {
            let ours = name.starts_with(&self.prefix);
            let known =
                user_of_policy_name(&self.prefix, &name).filter(|_| own == OwnPolicies::Derive);
            let document = match known {
                Some(user) => Some(inline_document(&role.id, &user)),
                None => self.iam.get_role_policy(&role.name, &name).await?,
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
        role: &ResolvedRole,
        scope: &Scope,
        desired: &BTreeSet<SessionName>,
        mode: WriteMode,
    ) -> Result<StoreReport, Error> {
        // A grant or revoke first reads only that user's policy: usually nothing is to do.
        if let Scope::User(user) = scope {
            let name = inline_policy_name(&self.prefix, user);
            let current = self.iam.get_role_policy(&role.name, &name).await?;
            let want = desired.contains(user);
            let correct = current
                .as_deref()
                .is_some_and(|d| same_document(d, &inline_document(&role.id, user)));
            if (want && correct) || (!want && current.is_none()) {
                return Ok(StoreReport::default());
            }
            if !want {
                return self
                    .apply(
                        role,
                        vec![Action::Delete { name }],
                        mode,
                        StoreReport::default(),
                    )
                    .await;
            }
        }

        let own = match scope {
            Scope::All => OwnPolicies::Read,
            Scope::User(_) => OwnPolicies::Derive,
        };
        let state = self.read_state(role, own).await?;
        let plan = plan_inline(scope, desired, &state, &role.id, &self.prefix, self.budget);
        info!(
            used = plan.used_after,
            budget = self.budget,
            headroom_chars = self.budget.saturating_sub(plan.used_after),
            headroom_users =
                headroom_users(StoreKind::Inline, &role.id, plan.used_after, self.budget),
            "inline policy capacity"
        );
        let report = StoreReport {
            refused: plan.refused,
            capacity: Some(Capacity {
                used: plan.used_after,
                available: self.budget,
            }),
            ..StoreReport::default()
        };
        self.apply(role, plan.actions, mode, report).await
    }
}

impl<P: RolePolicies + Sync> InlineStore<P> {
    async fn apply(
        &self,
        role: &ResolvedRole,
        actions: Vec<Action>,
        mode: WriteMode,
        mut report: StoreReport,
    ) -> Result<StoreReport, Error> {
        let steps = actions.into_iter().map(|a| (a.describe(), a)).collect();
        super::apply_steps(steps, mode, &mut report, |action| async move {
            match action {
                Action::Put { name, document, .. } => {
                    self.iam.put_role_policy(&role.name, &name, &document).await
                }
                Action::Delete { name } => self.iam.delete_role_policy(&role.name, &name).await,
            }
        })
        .await?;
        Ok(report)
    }
}
