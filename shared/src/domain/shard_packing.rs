//! Sharded managed policies, pure: the users who hold session rights, packed into
//! customer-managed policies named `<prefix>shard-NN`, each at most 6,144 characters
//! (whitespace not counted).
//!
//! **The dense exact encoding.** A shard is one statement that lists its users' ids and requires
//! the session's tag to be the caller's own id:
//! `"aws:userid": ["<role-id>:ada", "<role-id>:tim", …]` and
//! `"ssm:resourceTag/aws:ssmmessages:session-id": "${aws:userid}"`, both `StringEquals`. A caller
//! may end or resume a session exactly when they are listed and the session is theirs: as exact
//! as one statement per user, at a quoted id and a comma per user instead of a whole statement
//! (about 35–60 characters instead of 270–310). It relies on IAM substituting `${aws:userid}` in
//! a condition value, as the static mode's statement and AWS's own sample policies do, and fails
//! closed if it did not (an unresolved variable matches nothing). Shards written by earlier
//! versions (one statement per user) are read, and rewritten in this form by the next write of
//! the shard or the next reconcile; nobody loses access in between (a new default version
//! replaces the old one at once).
//!
//! Placement is stable: a user stays in the shard that holds them; a new user goes to the first
//! shard with room, or a new shard. So adding or removing one user rewrites only that user's shard.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::capacity::Refused;
use crate::domain::ids::{RoleId, UserId};
use crate::domain::session_iam::{any_session, SESSION_ACTIONS, SESSION_ID_KEY, USER_ID_KEY};
use crate::domain::session_name::SessionName;
use crate::domain::statements::{policy_size, Scope};

/// IAM's limit on one managed policy, whitespace not counted.
pub const SHARD_LIMIT: usize = 6_144;

/// A shard's document for these users' quoted ids (`"<role-id>:<name>"`, comma-separated).
fn document_with(role_id: &RoleId, quoted_ids: &str) -> String {
    let [terminate, resume] = SESSION_ACTIONS;
    let resource = any_session(role_id.partition());
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["{terminate}","{resume}"],"Resource":"{resource}","Condition":{{"StringEquals":{{"{USER_ID_KEY}":[{quoted_ids}],"{SESSION_ID_KEY}":"${{aws:userid}}"}}}}}}]}}"#
    )
}

fn quoted(role_id: &RoleId, user: &SessionName) -> String {
    format!(r#""{role_id}:{user}""#)
}

/// Characters a user with a 10-character name adds to a shard: the unit of "headroom in users".
#[allow(clippy::expect_used, reason = "a literal name that parses")]
pub(crate) fn typical_user_cost(role_id: &RoleId) -> usize {
    user_cost(
        role_id,
        &SessionName::parse("tim.malone").expect("a valid name"),
    )
}

/// A shard's document for these users, in this order.
pub fn shard_document(role_id: &RoleId, users: &[SessionName]) -> String {
    let ids: Vec<String> = users.iter().map(|u| quoted(role_id, u)).collect();
    document_with(role_id, &ids.join(","))
}

/// Characters a user adds to a shard: their quoted id and its separating comma.
pub(crate) fn user_cost(role_id: &RoleId, user: &SessionName) -> usize {
    quoted(role_id, user).len() + 1
}

/// Characters of a shard without users, less the comma its first user does not need.
pub(crate) fn envelope_cost(role_id: &RoleId) -> usize {
    document_with(role_id, "").len() - 1
}

/// How many users with names as long as `user`'s one shard holds.
pub fn users_per_shard(role_id: &RoleId, user: &SessionName) -> usize {
    (SHARD_LIMIT - envelope_cost(role_id)) / user_cost(role_id, user)
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

/// The ARN IAM gives shard `index`: the path, then the name (`arn:aws:iam::<account>:policy/ssm-session-owner/ssm-session-owner-shard-01`).
pub fn shard_arn(partition: &str, account: &str, prefix: &str, index: usize) -> String {
    format!(
        "arn:{partition}:iam::{account}:policy{}{}",
        shard_path(prefix),
        shard_name(prefix, index)
    )
}

/// The resource the guards deny every IAM action on so that no user rewrites a shard: every
/// policy named like a shard, under any path. CloudFormation cannot trim the prefix the way
/// [`shard_path`] does, so the template names the shards by name alone
/// (`policy/*${PolicyNamePrefix}shard-*`); the template's tests compare it with this.
pub fn shard_guard_resource(partition: &str, account: &str, prefix: &str) -> String {
    format!("arn:{partition}:iam::{account}:policy/*{prefix}shard-*")
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

/// Read a shard's document back: the users it grants, and whether it is exactly what the
/// product writes for them. The dense form lists ids under `aws:userid`; the per-user form of
/// earlier versions has one statement per id. Either is read, so a shard of the old form keeps
/// its users while it is migrated.
pub(crate) fn read_shard(index: usize, document: &str, role_id: &RoleId) -> Shard {
    let parsed: Option<serde_json::Value> = serde_json::from_str(document).ok();
    let mut users: Vec<SessionName> = Vec::new();
    for statement in parsed
        .as_ref()
        .and_then(|d| d["Statement"].as_array())
        .into_iter()
        .flatten()
    {
        let ids = match &statement["Condition"]["StringEquals"][USER_ID_KEY] {
            serde_json::Value::String(one) => vec![one.as_str()],
            serde_json::Value::Array(many) => many.iter().filter_map(|v| v.as_str()).collect(),
            _ => Vec::new(),
        };
        for id in ids {
            if let Ok(user) = UserId::parse_for(id, role_id) {
                if !users.contains(user.user()) {
                    users.push(user.user().clone());
                }
            }
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
        envelope_cost(role_id) + users.iter().map(|u| user_cost(role_id, u)).sum::<usize>()
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
    fn a_shard_is_one_statement_listing_its_users_and_requiring_the_callers_own_session() {
        let doc = shard_document(&role(), &[user("tim"), user("ada@example.com")]);
        let parsed: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(parsed["Statement"].as_array().unwrap().len(), 1);
        let statement = &parsed["Statement"][0];
        assert_eq!(
            statement["Action"],
            serde_json::json!(["ssm:TerminateSession", "ssm:ResumeSession"])
        );
        assert_eq!(statement["Resource"], "arn:aws:ssm:*:*:session/*");
        assert_eq!(
            statement["Condition"]["StringEquals"]["aws:userid"],
            serde_json::json!([
                format!("{ROLE_ID}:tim"),
                format!("{ROLE_ID}:ada@example.com")
            ])
        );
        assert_eq!(
            statement["Condition"]["StringEquals"]["ssm:resourceTag/aws:ssmmessages:session-id"],
            "${aws:userid}"
        );
        // a user costs their quoted id and a comma
        assert_eq!(
            policy_size(&doc),
            envelope_cost(&role())
                + user_cost(&role(), &user("tim"))
                + user_cost(&role(), &user("ada@example.com"))
        );
        assert_eq!(
            user_cost(&role(), &user("tim")),
            ROLE_ID.len() + ":tim".len() + 3
        );
    }

    #[test]
    fn a_shard_of_the_per_user_form_keeps_its_users_and_is_rewritten() {
        // GIVEN a shard as earlier versions wrote it: one exact statement per user
        let statement = |name: &str| {
            format!(
                r#"{{"Effect":"Allow","Action":["ssm:TerminateSession","ssm:ResumeSession"],"Resource":"arn:aws:ssm:*:*:session/*","Condition":{{"StringEquals":{{"aws:userid":"{ROLE_ID}:{name}","ssm:resourceTag/aws:ssmmessages:session-id":"{ROLE_ID}:{name}"}}}}}}"#
            )
        };
        let old = format!(
            r#"{{"Version":"2012-10-17","Statement":[{},{}]}}"#,
            statement("tim"),
            statement("ada")
        );
        // WHEN it is read and a reconcile plans
        let read = read_shard(1, &old, &role());
        // THEN both users are still granted, the shard is not clean, and the plan rewrites it in
        // the dense form with the same users
        assert_eq!(read.users, vec![user("tim"), user("ada")]);
        assert!(!read.clean);
        let plan = plan_shards(
            &[read],
            &Scope::All,
            &[user("tim"), user("ada")].into_iter().collect(),
            &role(),
            10,
        );
        assert_eq!(
            plan.writes,
            BTreeMap::from([(1, vec![user("tim"), user("ada")])])
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
        assert_eq!(
            shard_arn("aws", "123456789012", "ssm-session-owner-", 1),
            "arn:aws:iam::123456789012:policy/ssm-session-owner/ssm-session-owner-shard-01"
        );
    }

    #[test]
    fn the_shard_guard_covers_every_shard_under_any_prefix_and_nothing_else_of_the_product() {
        use crate::domain::evaluation::wildcard_matches;
        for prefix in ["ssm-session-owner-", "team_a.", "Research", "x-"] {
            let guard = shard_guard_resource("aws-us-gov", "123456789012", prefix);
            for index in [1, 9, 10, 25, 99] {
                let arn = shard_arn("aws-us-gov", "123456789012", prefix, index);
                assert!(wildcard_matches(&guard, &arn), "{guard} misses {arn}");
            }
            let other = format!("arn:aws-us-gov:iam::123456789012:policy/{prefix}other");
            assert!(!wildcard_matches(&guard, &other), "{guard} matches {other}");
        }
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
        let many = users("user", 600);
        let plan = plan_shards(
            &[],
            &Scope::All,
            &many.iter().cloned().collect(),
            &role(),
            2,
        );
        let fitted: usize = plan.writes.values().map(Vec::len).sum();
        assert_eq!(fitted + plan.refused.len(), 600);
        assert!(!plan.refused.is_empty());
        let refused = &plan.refused[0];
        assert_eq!(refused.budget, 2 * SHARD_LIMIT);
        assert_eq!(refused.needed, user_cost(&role(), &refused.user));
        for members in plan.writes.values() {
            assert!(policy_size(&shard_document(&role(), members)) <= SHARD_LIMIT);
        }
    }

    #[test]
    fn packing_fills_each_shard_before_the_next() {
        let many = users("user", 3000);
        let plan = plan_shards(
            &[],
            &Scope::All,
            &many.iter().cloned().collect(),
            &role(),
            25,
        );
        assert!(plan.refused.is_empty());
        let sizes: Vec<usize> = plan
            .writes
            .values()
            .map(|u| policy_size(&shard_document(&role(), u)))
            .collect();
        let (last, full) = sizes.split_last().unwrap();
        assert!(
            full.iter().all(|s| *s * 100 >= SHARD_LIMIT * 99),
            "{sizes:?}"
        );
        assert!(*last <= SHARD_LIMIT);
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
