//! Sharded managed policies, pure: user statements packed into customer-managed policies named
//! `<prefix>shard-NN`, each at most 6,144 characters (whitespace not counted). The statements
//! are the same as the inline store's (`statements::statement`).
//!
//! Placement is stable: a user stays in the shard that holds them; a new user goes to the first
//! shard with room, or a new shard. So adding or removing one user rewrites only that user's shard.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::capacity::Refused;
use crate::domain::ids::{RoleId, UserId};
use crate::domain::session_name::SessionName;
use crate::domain::statements::{policy_size, statement, statement_size, Scope};

/// IAM's limit on one managed policy, whitespace not counted.
pub const SHARD_LIMIT: usize = 6_144;
const ENVELOPE_OPEN: &str = r#"{"Version":"2012-10-17","Statement":["#;
const ENVELOPE_CLOSE: &str = "]}";

/// One user's statement in a shard.
pub(crate) fn shard_statement(role_id: &RoleId, user: &SessionName) -> String {
    statement(role_id, user)
}

/// Characters a user with a 10-character name adds to a shard: the unit of "headroom in users".
pub(crate) fn typical_user_cost(role_id: &RoleId) -> usize {
    statement_size(role_id, 10) + 1
}

/// A shard's document for these users, in this order.
pub fn shard_document(role_id: &RoleId, users: &[SessionName]) -> String {
    let statements: Vec<String> = users.iter().map(|u| shard_statement(role_id, u)).collect();
    format!("{ENVELOPE_OPEN}{}{ENVELOPE_CLOSE}", statements.join(","))
}

/// Characters a user adds to a shard (the statement and its separating comma).
pub(crate) fn user_cost(role_id: &RoleId, user: &SessionName) -> usize {
    shard_statement(role_id, user).len() + 1
}

/// Characters of an empty shard.
pub(crate) fn envelope_cost() -> usize {
    ENVELOPE_OPEN.len() + ENVELOPE_CLOSE.len() - 1
}

pub(crate) fn shard_name(prefix: &str, index: usize) -> String {
    format!("{prefix}shard-{index:02}")
}

pub(crate) fn shard_index(prefix: &str, name: &str) -> Option<usize> {
    name.strip_prefix(prefix)?
        .strip_prefix("shard-")?
        .parse()
        .ok()
}

/// The IAM path the shards live under, derived from the prefix (`/ssm-session-owner/`).
pub(crate) fn shard_path(prefix: &str) -> String {
    format!("/{}/", prefix.trim_end_matches(['-', '_', '.']))
}

/// What a shard holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    /// Users whose statement the shard holds, in document order.
    pub users: Vec<SessionName>,
    /// Whether the document is exactly what the product would write for `users`.
    pub clean: bool,
    pub chars: usize,
}

/// Read a shard's document back: the users it grants, and whether it is untouched.
pub(crate) fn read_shard(index: usize, document: &str, role_id: &RoleId) -> Shard {
    let parsed: Option<serde_json::Value> = serde_json::from_str(document).ok();
    let mut users = Vec::new();
    for statement in parsed
        .as_ref()
        .and_then(|d| d["Statement"].as_array())
        .into_iter()
        .flatten()
    {
        let user = statement["Condition"]["StringEquals"]["aws:userid"]
            .as_str()
            .and_then(|v| UserId::parse_for(v, role_id).ok());
        if let Some(user) = user {
            users.push(user.user().clone());
        }
    }
    let clean = parsed.is_some()
        && serde_json::from_str::<serde_json::Value>(&shard_document(role_id, &users)).ok()
            == parsed;
    Shard {
        index,
        users,
        clean,
        chars: policy_size(document),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardPlan {
    /// Shards to write, with their new users; an empty list means detach and delete.
    pub writes: BTreeMap<usize, Vec<SessionName>>,
    pub refused: Vec<Refused>,
    /// Characters in use across all shards once the plan is applied.
    pub used_after: usize,
    /// Characters available across the shards the product may use.
    pub capacity: usize,
}

/// Plan the shard writes that grant the users in `scope` exactly when they are in `desired`.
pub fn plan_shards(
    current: &[Shard],
    scope: &Scope,
    desired: &BTreeSet<SessionName>,
    role_id: &RoleId,
    max_shards: usize,
) -> ShardPlan {
    let in_scope = |u: &SessionName| match scope {
        Scope::User(user) => user == u,
        Scope::All => true,
    };
    let mut placed: BTreeSet<SessionName> = BTreeSet::new();
    let mut content: BTreeMap<usize, Vec<SessionName>> = BTreeMap::new();
    for shard in current {
        let keep: Vec<SessionName> = shard
            .users
            .iter()
            .filter(|u| !in_scope(u) || desired.contains(*u))
            .filter(|u| placed.insert((*u).clone()))
            .cloned()
            .collect();
        content.insert(shard.index, keep);
    }
    let size = |users: &[SessionName]| {
        envelope_cost() + users.iter().map(|u| user_cost(role_id, u)).sum::<usize>()
    };

    let mut refused = Vec::new();
    for user in desired
        .iter()
        .filter(|u| in_scope(u) && !placed.contains(*u))
    {
        let cost = user_cost(role_id, user);
        let fits = content
            .iter()
            .find(|(_, users)| !users.is_empty() && size(users) + cost <= SHARD_LIMIT)
            .map(|(index, _)| *index)
            .or_else(|| {
                (1..=max_shards).find(|i| content.get(i).is_none_or(|users| users.is_empty()))
            });
        match fits {
            Some(index) => content.entry(index).or_default().push(user.clone()),
            None => refused.push(Refused {
                user: user.clone(),
                needed: cost,
                used: content
                    .values()
                    .filter(|u| !u.is_empty())
                    .map(|u| size(u))
                    .sum(),
                budget: max_shards * SHARD_LIMIT,
            }),
        }
    }

    let before: BTreeMap<usize, &Shard> = current.iter().map(|s| (s.index, s)).collect();
    let writes = content
        .iter()
        .filter(|(index, users)| match before.get(index) {
            Some(shard) => shard.users != **users || !shard.clean,
            None => !users.is_empty(),
        })
        .map(|(index, users)| (*index, users.clone()))
        .collect();
    ShardPlan {
        writes,
        refused,
        used_after: content
            .values()
            .filter(|u| !u.is_empty())
            .map(|u| size(u))
            .sum(),
        capacity: max_shards * SHARD_LIMIT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ROLE_ID: &str = "AROARZPUZDIKBSV3HPLXQ";

    fn role() -> RoleId {
        RoleId::parse(ROLE_ID).unwrap()
    }

    fn user(name: &str) -> SessionName {
        SessionName::parse(name).unwrap()
    }

    fn users(prefix: &str, n: usize) -> Vec<SessionName> {
        (0..n).map(|i| user(&format!("{prefix}{i:04}"))).collect()
    }

    fn shard(index: usize, members: &[SessionName]) -> Shard {
        read_shard(index, &shard_document(&role(), members), &role())
    }

    #[test]
    fn a_shard_statement_is_the_users_exact_statement() {
        let doc = shard_document(&role(), &[user("tim")]);
        let parsed: serde_json::Value = serde_json::from_str(&doc).unwrap();
        let statement = &parsed["Statement"][0];
        assert_eq!(
            statement["Action"],
            serde_json::json!(["ssm:TerminateSession", "ssm:ResumeSession"])
        );
        let value = format!("{ROLE_ID}:tim");
        assert_eq!(statement["Condition"]["StringEquals"]["aws:userid"], value);
        assert_eq!(
            statement["Condition"]["StringEquals"]["ssm:resourceTag/aws:ssmmessages:session-id"],
            value
        );
        assert_eq!(
            statement,
            &serde_json::from_str::<serde_json::Value>(&crate::domain::statements::statement(
                &role(),
                &user("tim")
            ))
            .unwrap()
        );
    }

    #[test]
    fn shards_read_back_as_written() {
        let members = users("u", 3);
        let read = shard(4, &members);
        assert_eq!(read.users, members);
        assert!(read.clean);
        assert_eq!(read.chars, policy_size(&shard_document(&role(), &members)));
        let edited = read_shard(
            1,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
            &role(),
        );
        assert_eq!(edited.users, vec![]);
        assert!(!edited.clean);
    }

    #[test]
    fn the_typical_cost_is_that_of_a_ten_character_name() {
        assert_eq!(
            typical_user_cost(&role()),
            user_cost(&role(), &user("tim.malone"))
        );
    }

    #[test]
    fn names_and_paths() {
        assert_eq!(
            shard_name("ssm-session-owner-", 3),
            "ssm-session-owner-shard-03"
        );
        assert_eq!(
            shard_index("ssm-session-owner-", "ssm-session-owner-shard-03"),
            Some(3)
        );
        assert_eq!(shard_index("ssm-session-owner-", "other"), None);
        assert_eq!(shard_path("ssm-session-owner-"), "/ssm-session-owner/");
    }

    #[test]
    fn a_new_user_joins_the_first_shard_with_room_and_only_it_is_written() {
        let a = users("a", 10);
        let b = users("b", 10);
        let current = vec![shard(1, &a), shard(2, &b)];
        let mut desired: BTreeSet<_> = a.iter().chain(&b).cloned().collect();
        desired.insert(user("newcomer"));
        let plan = plan_shards(
            &current,
            &Scope::User(user("newcomer")),
            &desired,
            &role(),
            10,
        );
        let mut expected = a.clone();
        expected.push(user("newcomer"));
        assert_eq!(plan.writes, BTreeMap::from([(1, expected)]));
    }

    #[test]
    fn removing_a_user_rewrites_only_their_shard_and_an_empty_shard_is_deleted() {
        let a = users("a", 3);
        let current = vec![shard(1, &a), shard(2, &[user("solo")])];
        let desired: BTreeSet<_> = a.iter().skip(1).cloned().collect();
        let plan = plan_shards(&current, &Scope::All, &desired, &role(), 10);
        assert_eq!(
            plan.writes,
            BTreeMap::from([(1, a[1..].to_vec()), (2, vec![])])
        );
    }

    #[test]
    fn nothing_to_change_means_no_write() {
        let a = users("a", 5);
        let current = vec![shard(1, &a)];
        let plan = plan_shards(
            &current,
            &Scope::All,
            &a.iter().cloned().collect(),
            &role(),
            10,
        );
        assert_eq!(plan.writes, BTreeMap::new());
    }

    #[test]
    fn when_every_shard_is_full_the_grant_is_refused_with_the_numbers() {
        let many = users("user", 200);
        let plan = plan_shards(
            &[],
            &Scope::All,
            &many.iter().cloned().collect(),
            &role(),
            2,
        );
        let fitted: usize = plan.writes.values().map(Vec::len).sum();
        assert_eq!(fitted + plan.refused.len(), 200);
        assert!(!plan.refused.is_empty());
        let refused = &plan.refused[0];
        assert_eq!(refused.budget, 2 * SHARD_LIMIT);
        assert_eq!(refused.needed, user_cost(&role(), &refused.user));
        for members in plan.writes.values() {
            assert!(policy_size(&shard_document(&role(), members)) <= SHARD_LIMIT);
        }
    }

    #[test]
    fn packing_uses_at_least_95_percent_of_the_shards() {
        let many = users("user", 1000);
        let plan = plan_shards(
            &[],
            &Scope::All,
            &many.iter().cloned().collect(),
            &role(),
            20,
        );
        let statements: usize = plan
            .writes
            .values()
            .flatten()
            .map(|u| shard_statement(&role(), u).len())
            .sum();
        let efficiency = statements as f64 / (20 * SHARD_LIMIT) as f64;
        assert!(efficiency >= 0.95, "{efficiency}");
        assert_eq!(plan.writes.len(), 20);
    }

    proptest! {
        #[test]
        fn every_plan_respects_the_limits_and_grants_exactly_the_desired(
            names in proptest::collection::btree_set("[A-Za-z0-9+=,.@_-]{2,64}", 0..120),
            keep in proptest::collection::vec(any::<bool>(), 120),
            max_shards in 1usize..5,
        ) {
            let all: Vec<SessionName> = names.iter().map(|n| user(n)).collect();
            let first = plan_shards(&[], &Scope::All, &all.iter().cloned().collect(), &role(), max_shards);
            let current: Vec<Shard> = first.writes.iter().map(|(i, u)| shard(*i, u)).collect();
            let desired: BTreeSet<SessionName> = all.iter().zip(&keep).filter(|(_, k)| **k).map(|(u, _)| u.clone()).collect();
            let plan = plan_shards(&current, &Scope::All, &desired, &role(), max_shards);
            let mut after: BTreeMap<usize, Vec<SessionName>> = current.iter().map(|s| (s.index, s.users.clone())).collect();
            after.extend(plan.writes.clone());
            let granted: Vec<&SessionName> = after.values().flatten().collect();
            let unique: BTreeSet<&SessionName> = granted.iter().copied().collect();
            prop_assert_eq!(granted.len(), unique.len(), "a user is in two shards");
            let refused: BTreeSet<&SessionName> = plan.refused.iter().map(|r| &r.user).collect();
            for u in &desired {
                prop_assert!(unique.contains(u) || refused.contains(u));
            }
            for u in &unique {
                prop_assert!(desired.contains(*u));
            }
            prop_assert!(after.iter().filter(|(_, u)| !u.is_empty()).count() <= max_shards);
            for members in after.values() {
                prop_assert!(policy_size(&shard_document(&role(), members)) <= SHARD_LIMIT);
            }
        }
    }
}
