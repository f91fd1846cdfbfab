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

/// How much of each inline policy the reader fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Documents {
    /// Names only: one `ListRolePolicies` (the reconcile's migration away from the inline store).
    Names,
    /// The product's own derived from what it writes for the user the name identifies, every
    /// other one read (a grant or revoke: they count against the same quota).
    DeriveOwn,
    /// Every one read from IAM, so that edited ones are seen and repaired (the reconcile, the
    /// capacity report).
    Read,
}

/// One inline policy of the users' role, as the product classifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InlinePolicy {
    pub name: String,
    /// The user the product's name for it identifies, if it is one of the product's.
    pub holder: Option<SessionName>,
    /// Whether it carries the product's prefix (the store owns it, even when no user parses).
    pub prefixed: bool,
    /// Its document; `None` with `Documents::Names`.
    pub document: Option<String>,
}

/// The one reader of who holds rights through inline policies: the store, the reconcile's
/// migration and the capacity report all read the role through it. A policy deleted between
/// the list and the read is left out.
pub(crate) async fn read_inline_policies<P: RolePolicies + Sync>(
    iam: &P,
    role: &ResolvedRole,
    prefix: &str,
    documents: Documents,
) -> Result<Vec<InlinePolicy>, Error> {
    let mut policies = Vec::new();
    for name in iam.list_role_policies(&role.name).await? {
        let holder = user_of_policy_name(prefix, &name);
        let document = match (documents, &holder) {
            (Documents::Names, _) => None,
            (Documents::DeriveOwn, Some(user)) => Some(inline_document(&role.id, user)),
            (Documents::DeriveOwn | Documents::Read, _) => {
                let Some(document) = iam.get_role_policy(&role.name, &name).await? else {
                    continue;
                };
                Some(document)
            }
        };
        policies.push(InlinePolicy {
            prefixed: name.starts_with(prefix),
            name,
            holder,
            document,
        });
    }
    Ok(policies)
}

impl<P: RolePolicies + Sync> InlineStore<P> {
    pub fn new(iam: P, prefix: impl Into<String>) -> Self {
        Self {
            iam,
            prefix: prefix.into(),
            budget: INLINE_BUDGET,
        }
    }

    /// Read the role's inline policies: the product's own (by prefix) by name, the rest sized,
    /// since they count against the same quota.
    async fn read_state(
        &self,
        role: &ResolvedRole,
        documents: Documents,
    ) -> Result<InlineState, Error> {
        let mut state = InlineState::default();
        for policy in read_inline_policies(&self.iam, role, &self.prefix, documents).await? {
            let Some(document) = policy.document else {
                continue;
            };
            if policy.prefixed {
                state.ours.insert(policy.name, document);
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
            Scope::All => Documents::Read,
            Scope::User(_) => Documents::DeriveOwn,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::RoleId;
    use crate::fakes::FakeAws;

    const PREFIX: &str = "ssm-session-owner-";

    /// tim's statement as the product writes it, one edited by hand under ana's name, a
    /// prefixed policy no user parses from, and the account's own.
    async fn role_with_inline_policies() -> (FakeAws, ResolvedRole) {
        let id = RoleId::parse("AROAEXAMPLEROLEID1234").unwrap();
        let fake = FakeAws::new().with_role("Researchers", &id);
        let role = ResolvedRole {
            name: "Researchers".into(),
            id,
        };
        let (tim, ana) = (
            SessionName::parse("tim").unwrap(),
            SessionName::parse("ana").unwrap(),
        );
        let put = |name: String, document: String| {
            let fake = fake.clone();
            async move {
                fake.put_role_policy("Researchers", &name, &document)
                    .await
                    .unwrap()
            }
        };
        put(
            inline_policy_name(PREFIX, &tim),
            inline_document(&role.id, &tim),
        )
        .await;
        put(
            inline_policy_name(PREFIX, &ana),
            r#"{"Version":"2012-10-17","Statement":[]}"#.into(),
        )
        .await;
        put(
            format!("{PREFIX}notes"),
            r#"{"Version":"2012-10-17","Statement":[]}"#.into(),
        )
        .await;
        put(
            "AccountBaseline".into(),
            r#"{"Version":"2012-10-17","Statement":[]}"#.into(),
        )
        .await;
        (fake, role)
    }

    #[tokio::test]
    async fn one_reader_says_who_holds_rights_and_reads_only_what_each_caller_needs() {
        let (fake, role) = role_with_inline_policies().await;
        let read = |documents| {
            let (fake, role) = (fake.clone(), role.clone());
            async move {
                let before = fake.calls_to("iam:GetRolePolicy");
                let policies = read_inline_policies(&fake, &role, PREFIX, documents)
                    .await
                    .unwrap();
                (policies, fake.calls_to("iam:GetRolePolicy") - before)
            }
        };
        let holders = |policies: &[InlinePolicy]| -> Vec<(String, Option<String>, bool)> {
            policies
                .iter()
                .map(|p| {
                    (
                        p.name.clone(),
                        p.holder.as_ref().map(ToString::to_string),
                        p.prefixed,
                    )
                })
                .collect()
        };

        let (names, gets) = read(Documents::Names).await;
        assert_eq!(gets, 0);
        assert!(names.iter().all(|p| p.document.is_none()));
        let mut expected = vec![
            ("AccountBaseline".to_owned(), None, false),
            (
                inline_policy_name(PREFIX, &SessionName::parse("ana").unwrap()),
                Some("ana".to_owned()),
                true,
            ),
            (format!("{PREFIX}notes"), None, true),
            (
                inline_policy_name(PREFIX, &SessionName::parse("tim").unwrap()),
                Some("tim".to_owned()),
                true,
            ),
        ];
        expected.sort();
        let mut found = holders(&names);
        found.sort();
        assert_eq!(found, expected);

        // a grant derives the product's two and reads the other two
        let (derived, gets) = read(Documents::DeriveOwn).await;
        assert_eq!(gets, 2);
        let ana = derived
            .iter()
            .find(|p| p.holder.as_ref().is_some_and(|u| u.to_string() == "ana"))
            .unwrap();
        assert_eq!(
            ana.document.as_deref(),
            Some(inline_document(&role.id, &SessionName::parse("ana").unwrap()).as_str())
        );

        // the reconcile reads all four, and sees ana's as it is in IAM (edited)
        let (read_all, gets) = read(Documents::Read).await;
        assert_eq!(gets, 4);
        let ana = read_all
            .iter()
            .find(|p| p.holder.as_ref().is_some_and(|u| u.to_string() == "ana"))
            .unwrap();
        assert_eq!(
            ana.document.as_deref(),
            Some(r#"{"Version":"2012-10-17","Statement":[]}"#)
        );
    }
}
