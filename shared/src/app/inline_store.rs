//! The inline store: one inline role policy per user, named `<prefix><username>-<hash>`.
//! About 40 users fit in IAM's 10,240-character budget for a role's inline policies.

use std::collections::BTreeSet;

use tracing::info;

use crate::domain::ids::RoleId;
use crate::domain::session_name::SessionName;
use crate::domain::statements::{
    inline_document, inline_policy_name, inline_size, plan_inline, policy_size, same_document,
    user_of_policy_name, Action, InlineState, Scope, INLINE_BUDGET,
};
use crate::error::Error;
use crate::ports::{PolicyStore, RolePolicies, StoreReport};

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
    async fn read_state(&self, role_id: &RoleId, read_ours: bool) -> Result<InlineState, Error> {
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
        role_id: &RoleId,
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
