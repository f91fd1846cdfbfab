//! Per-user session policies, pure: what each user's statement says, how big it is, and the
//! plan that takes the role's policies from what they are to what EC2 says they should be.
//!
//! A user's statement allows `ssm:TerminateSession` and `ssm:ResumeSession` on
//! `session/<username>-?????????????????` to the caller whose `aws:userid` is exactly
//! `<role-id>:<username>`. Session ids are `<session-name>-<17-character suffix>`, so the 17
//! single-character wildcards make the pattern match only ids whose name part has exactly the
//! user's length and characters: `tim-*` would also match `tim-malone-…`, this cannot. Usernames
//! are validated role-session names, so they hold no `*` or `?` of their own.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::ids::RoleId;
use crate::domain::session_name::SessionName;

/// Characters after `<session-name>-` in a Session Manager session id.
pub(crate) const SESSION_SUFFIX_LEN: usize = 17;
/// IAM's limit on the aggregate size of a role's inline policies, whitespace not counted.
pub(crate) const INLINE_BUDGET: usize = 10_240;

/// The ARN pattern of one user's sessions.
pub(crate) fn session_resource(user: &SessionName) -> String {
    resource_for(user.as_str())
}

fn resource_for(user: &str) -> String {
    format!(
        "arn:aws:ssm:*:*:session/{user}-{}",
        "?".repeat(SESSION_SUFFIX_LEN)
    )
}

/// One user's statement, without whitespace.
///
/// Written out rather than serialised so that its size never depends on a JSON library's key
/// order. Role ids and session names hold no character JSON would escape.
#[cfg(test)]
pub(crate) fn statement(role_id: &RoleId, user: &SessionName) -> String {
    statement_for(role_id.as_str(), user.as_str())
}

fn statement_for(role_id: &str, user: &str) -> String {
    format!(
        r#"{{"Effect":"Allow","Action":["ssm:TerminateSession","ssm:ResumeSession"],"Resource":"{}","Condition":{{"StringEquals":{{"aws:userid":"{role_id}:{user}"}}}}}}"#,
        resource_for(user)
    )
}

/// The inline policy document holding one user's statement, without whitespace.
pub fn inline_document(role_id: &RoleId, user: &SessionName) -> String {
    document_for(role_id.as_str(), user.as_str())
}

fn document_for(role_id: &str, user: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        statement_for(role_id, user)
    )
}

/// Characters one user's inline policy takes, for a username of `user_len` characters.
pub(crate) fn inline_size(role_id: &RoleId, user_len: usize) -> usize {
    policy_size(&document_for(role_id.as_str(), &"x".repeat(user_len)))
}

/// Whether two policy documents say the same, whatever their whitespace or key order.
pub(crate) fn same_document(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(a),
        serde_json::from_str::<serde_json::Value>(b),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Size as IAM counts it against the role's quota: whitespace is not counted.
pub fn policy_size(document: &str) -> usize {
    document.chars().filter(|c| !c.is_whitespace()).count()
}

/// The inline policy name for a user: `<prefix><username>-<hash>`. The hash of the exact
/// username keeps names distinct even if IAM compares policy names without regard to case
/// (`Tim` and `tim` are different session names).
pub fn inline_policy_name(prefix: &str, user: &SessionName) -> String {
    format!("{prefix}{user}-{:08x}", name_hash(user.as_str()))
}

/// The user an inline policy name belongs to, if it is one of ours and well-formed.
pub(crate) fn user_of_policy_name(prefix: &str, name: &str) -> Option<SessionName> {
    let (user, hash) = name.strip_prefix(prefix)?.rsplit_once('-')?;
    let user = SessionName::parse(user).ok()?;
    (hash == format!("{:08x}", name_hash(user.as_str()))).then_some(user)
}

/// FNV-1a, folded to 32 bits: stable across builds and platforms, which `std`'s hasher is not.
fn name_hash(s: &str) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in s.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash ^ (hash >> 32)) as u32
}

/// IAM's ARN matching: `*` is any run of characters, `?` exactly one, everything else literal.
pub fn arn_matches(pattern: &str, arn: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), arn.chars().collect());
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Which users a change is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One user: a grant or a revoke.
    User(SessionName),
    /// Every user: a reconcile. Product policies for anybody else are removed.
    All,
}

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

/// A grant that does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub user: SessionName,
    pub needed: usize,
    pub used: usize,
    pub budget: usize,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "session policy budget full: granting {} needs {} characters, the role's policies already use {} of {} (whitespace not counted)",
            self.user, self.needed, self.used, self.budget
        )
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
    use proptest::prelude::*;

    const ROLE_ID: &str = "AROARZPUZDIKBSV3HPLXQ";

    fn role() -> RoleId {
        RoleId::parse(ROLE_ID).unwrap()
    }
    const PREFIX: &str = "ssm-session-owner-";

    fn user(name: &str) -> SessionName {
        SessionName::parse(name).unwrap()
    }

    fn session_arn(name: &str, suffix: &str) -> String {
        format!("arn:aws:ssm:us-east-1:123456789012:session/{name}-{suffix}")
    }

    #[test]
    fn the_statement_is_exactly_the_users_own_sessions() {
        assert_eq!(
            inline_document(&role(), &user("tim.malone")),
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:TerminateSession","ssm:ResumeSession"],"Resource":"arn:aws:ssm:*:*:session/tim.malone-?????????????????","Condition":{"StringEquals":{"aws:userid":"AROARZPUZDIKBSV3HPLXQ:tim.malone"}}}]}"#
        );
        let pattern = session_resource(&user("tim.malone"));
        assert!(arn_matches(
            &pattern,
            &session_arn("tim.malone", "0ab1cd9d876e54321")
        ));
        let parsed: serde_json::Value =
            serde_json::from_str(&inline_document(&role(), &user("a@b.c"))).unwrap();
        assert_eq!(
            parsed["Statement"][0]["Condition"]["StringEquals"]["aws:userid"],
            format!("{ROLE_ID}:a@b.c")
        );
    }

    #[test]
    fn documents_compare_by_meaning() {
        let doc = inline_document(&role(), &user("ada"));
        let pretty =
            serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&doc).unwrap())
                .unwrap();
        assert!(same_document(&doc, &pretty));
        assert!(!same_document(
            &doc,
            &inline_document(&role(), &user("bob"))
        ));
    }

    #[test]
    fn a_prefix_of_another_name_does_not_match_its_sessions() {
        let tim = session_resource(&user("tim"));
        assert!(!arn_matches(
            &tim,
            &session_arn("tim-malone", "0ab1cd9d876e54321")
        ));
        assert!(!arn_matches(
            &tim,
            &session_arn("tim.malone", "0ab1cd9d876e54321")
        ));
        // The naive pattern the seed used does.
        assert!(arn_matches(
            "arn:aws:ssm:*:*:session/tim-*",
            &session_arn("tim-malone", "0ab1cd9d876e54321")
        ));
    }

    #[test]
    fn the_wildcard_matcher_follows_iam() {
        assert!(arn_matches("a*c", "abbbc"));
        assert!(arn_matches("a*", "a"));
        assert!(arn_matches("a?c", "abc"));
        assert!(!arn_matches("a?c", "ac"));
        assert!(!arn_matches("abc", "abcd"));
        assert!(arn_matches("*b*", "abc"));
    }

    #[test]
    fn policy_names_round_trip_and_differ_by_case() {
        let tim = inline_policy_name(PREFIX, &user("Tim"));
        let tim_lower = inline_policy_name(PREFIX, &user("tim"));
        assert_ne!(tim.to_lowercase(), tim_lower.to_lowercase());
        assert_eq!(user_of_policy_name(PREFIX, &tim), Some(user("Tim")));
        assert_eq!(
            user_of_policy_name(PREFIX, "ssm-session-owner-tim-00000000"),
            None
        );
        assert_eq!(user_of_policy_name(PREFIX, "hand-made"), None);
        assert!(inline_policy_name(PREFIX, &user(&"x".repeat(64))).len() <= 128);
    }

    #[test]
    fn sizes_grow_by_two_characters_per_username_character() {
        assert_eq!(
            inline_size(&role(), 10),
            policy_size(&inline_document(&role(), &user("tim.malone")))
        );
        assert_eq!(inline_size(&role(), 11) - inline_size(&role(), 10), 2);
    }

    #[test]
    fn size_ignores_whitespace() {
        assert_eq!(policy_size("{ \"a\" :\n 1 }"), 7);
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

    /// A valid role-session name.
    fn username() -> impl Strategy<Value = String> {
        "[A-Za-z0-9+=,.@_-]{2,64}"
    }

    fn suffix() -> impl Strategy<Value = String> {
        "[0-9a-f]{17}"
    }

    /// Pairs of distinct usernames, biased towards one being a prefix of the other.
    fn two_users() -> impl Strategy<Value = (String, String)> {
        prop_oneof![
            (username(), username()),
            (username(), "[A-Za-z0-9+=,.@_-]{1,20}").prop_map(|(a, tail)| {
                let b: String = format!("{a}{tail}").chars().take(64).collect();
                (a, b)
            }),
            (username(), "[A-Za-z0-9+=,.@_-]{1,20}").prop_map(|(a, tail)| {
                let b: String = format!("{a}-{tail}").chars().take(64).collect();
                (b, a)
            }),
        ]
        .prop_filter("distinct", |(a, b)| a != b)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn a_users_statement_never_matches_another_users_session(
            (a, b) in two_users(), s in suffix(), region in "[a-z]{2}-[a-z]{4,9}-[1-3]", account in "[0-9]{12}",
        ) {
            let (ua, ub) = (user(&a), user(&b));
            let pattern = session_resource(&ua);
            let own = format!("arn:aws:ssm:{region}:{account}:session/{a}-{s}");
            let other = format!("arn:aws:ssm:{region}:{account}:session/{b}-{s}");
            prop_assert!(arn_matches(&pattern, &own));
            prop_assert!(!arn_matches(&pattern, &other), "{} matched {}", pattern, other);
            // and the caller condition names exactly one user
            let condition = |u: &SessionName| {
                let parsed: serde_json::Value = serde_json::from_str(&statement(&role(), u)).unwrap();
                parsed["Condition"]["StringEquals"]["aws:userid"].clone()
            };
            prop_assert_ne!(condition(&ua), condition(&ub));
            prop_assert_ne!(inline_policy_name(PREFIX, &ua), inline_policy_name(PREFIX, &ub));
        }
    }
}
