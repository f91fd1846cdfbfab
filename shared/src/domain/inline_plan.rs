//! The inline store's plan, pure: which inline role policies to put and delete so that the users
//! in scope are granted exactly when they are desired, within IAM's budget for a role's inline
//! policies.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::capacity::Refused;
use crate::domain::ids::RoleId;
use crate::domain::session_name::SessionName;
use crate::domain::statements::{
    inline_document, inline_policy_name, policy_size, same_document, user_of_policy_name, Scope,
};

/// The role's inline policies as read from IAM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InlineState {
    /// The product's policies (by prefix): name → document, if it was read.
    pub ours: BTreeMap<String, String>,
    /// Characters used by inline policies the product does not own.
    pub foreign_chars: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Put {
        name: String,
        user: SessionName,
        document: String,
    },
    Delete {
        name: String,
    },
}

impl Action {
    pub fn describe(&self) -> String {
        match self {
            Action::Put { name, user, .. } => format!("put {name} (grant {user})"),
            Action::Delete { name } => format!("delete {name}"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Deletes first (they free room), then puts.
    pub actions: Vec<Action>,
    pub refused: Vec<Refused>,
    /// Characters in use once the plan is applied.
    pub used_after: usize,
}

/// Plan the inline-policy changes that make the users in `scope` granted exactly when they are
/// in `desired`, within `budget`.
pub(crate) fn plan_inline(
    scope: &Scope,
    desired: &BTreeSet<SessionName>,
    state: &InlineState,
    role_id: &RoleId,
    prefix: &str,
    budget: usize,
) -> Plan {
    let mut plan = Plan::default();
    let mut sizes: BTreeMap<&str, usize> = state
        .ours
        .iter()
        .map(|(n, d)| (n.as_str(), policy_size(d)))
        .collect();
    let in_scope = |user: &SessionName| match scope {
        Scope::User(u) => u == user,
        Scope::All => true,
    };

    for name in state.ours.keys() {
        let keep = match user_of_policy_name(prefix, name) {
            Some(user) if !in_scope(&user) => true,
            Some(user) => desired.contains(&user),
            None => !matches!(scope, Scope::All),
        };
        if !keep {
            plan.actions.push(Action::Delete { name: name.clone() });
            sizes.remove(name.as_str());
        }
    }

    let mut used = state.foreign_chars + sizes.values().sum::<usize>();
    for user in desired.iter().filter(|u| in_scope(u)) {
        let name = inline_policy_name(prefix, user);
        let document = inline_document(role_id, user);
        if state
            .ours
            .get(&name)
            .is_some_and(|current| same_document(current, &document))
        {
            continue;
        }
        let needed = policy_size(&document);
        let freed = sizes.get(name.as_str()).copied().unwrap_or(0);
        if used - freed + needed > budget {
            plan.refused.push(Refused {
                user: user.clone(),
                needed,
                used,
                budget,
            });
            continue;
        }
        used = used - freed + needed;
        plan.actions.push(Action::Put {
            name,
            user: user.clone(),
            document,
        });
    }
    plan.used_after = used;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::statements::INLINE_BUDGET;

    const ROLE_ID: &str = "AROARZPUZDIKBSV3HPLXQ";
    const PREFIX: &str = "ssm-session-owner-";

    fn role() -> RoleId {
        RoleId::parse(ROLE_ID).unwrap()
    }

    fn user(name: &str) -> SessionName {
        SessionName::parse(name).unwrap()
    }

    fn state(users: &[&str], foreign: usize) -> InlineState {
        InlineState {
            ours: users
                .iter()
                .map(|u| {
                    (
                        inline_policy_name(PREFIX, &user(u)),
                        inline_document(&role(), &user(u)),
                    )
                })
                .collect(),
            foreign_chars: foreign,
        }
    }

    fn desired(users: &[&str]) -> BTreeSet<SessionName> {
        users.iter().map(|u| user(u)).collect()
    }

    #[test]
    fn a_grant_puts_only_that_user_and_a_repeat_does_nothing() {
        let plan = plan_inline(
            &Scope::User(user("ada")),
            &desired(&["ada", "bob"]),
            &state(&[], 0),
            &role(),
            PREFIX,
            INLINE_BUDGET,
        );
        assert_eq!(plan.actions.len(), 1);
        assert!(matches!(&plan.actions[0], Action::Put { user: u, .. } if u.as_str() == "ada"));
        let plan = plan_inline(
            &Scope::User(user("ada")),
            &desired(&["ada"]),
            &state(&["ada"], 0),
            &role(),
            PREFIX,
            INLINE_BUDGET,
        );
        assert_eq!(plan.actions, vec![]);
    }

    #[test]
    fn a_revoke_deletes_only_that_user() {
        let plan = plan_inline(
            &Scope::User(user("ada")),
            &desired(&[]),
            &state(&["ada", "bob"], 0),
            &role(),
            PREFIX,
            INLINE_BUDGET,
        );
        assert_eq!(
            plan.actions,
            vec![Action::Delete {
                name: inline_policy_name(PREFIX, &user("ada"))
            }]
        );
    }

    #[test]
    fn reconcile_adds_missing_removes_stale_and_repairs_edited() {
        let mut current = state(&["bob", "eve"], 500);
        current.ours.insert(
            inline_policy_name(PREFIX, &user("bob")),
            "{\"edited\":true}".into(),
        );
        current
            .ours
            .insert("ssm-session-owner-garbage".into(), "{}".into());
        let plan = plan_inline(
            &Scope::All,
            &desired(&["ada", "bob"]),
            &current,
            &role(),
            PREFIX,
            INLINE_BUDGET,
        );
        let described: Vec<String> = plan.actions.iter().map(Action::describe).collect();
        assert_eq!(
            described,
            vec![
                format!("delete {}", inline_policy_name(PREFIX, &user("eve"))),
                "delete ssm-session-owner-garbage".to_string(),
                format!(
                    "put {} (grant ada)",
                    inline_policy_name(PREFIX, &user("ada"))
                ),
                format!(
                    "put {} (grant bob)",
                    inline_policy_name(PREFIX, &user("bob"))
                ),
            ]
        );
    }

    #[test]
    fn a_grant_that_does_not_fit_is_refused_with_the_numbers() {
        let doc = inline_document(&role(), &user("ada"));
        let plan = plan_inline(
            &Scope::User(user("ada")),
            &desired(&["ada"]),
            &state(&[], 10_100),
            &role(),
            PREFIX,
            INLINE_BUDGET,
        );
        assert_eq!(plan.actions, vec![]);
        assert_eq!(
            plan.refused,
            vec![Refused {
                user: user("ada"),
                needed: policy_size(&doc),
                used: 10_100,
                budget: INLINE_BUDGET
            }]
        );
        assert_eq!(
            plan.refused[0].to_string(),
            format!("session policy budget full: granting ada needs {} characters, the role's policies already use 10100 of 10240 (whitespace not counted)", policy_size(&doc))
        );
    }
}
