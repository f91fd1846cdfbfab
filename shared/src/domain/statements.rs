//! Per-user session rights, pure: what each user's statement says, how big it is, and the
//! plan that takes the role's policies from what they are to what EC2 says they should be.
//!
//! A user's statement allows `ssm:TerminateSession` and `ssm:ResumeSession` on `session/*`
//! only to the caller whose `aws:userid` is exactly `<role-id>:<username>`, and only where the
//! session's `aws:ssmmessages:session-id` tag equals the caller's `${aws:userid}` (so that same
//! value; the shards list many users in one such statement, `shard_packing`). Session Manager writes that tag
//! on every session with the starter's `${aws:userid}`, so the statement matches exactly the
//! user's own sessions whatever the session id looks like: AWS documents no length for the
//! suffix of `<session-name>-<suffix>` (17 hex characters in older ids, 26 of `[a-z0-9]` in
//! newer ones), and a pattern over the id either misses new ids or matches a look-alike user's.
//! Both condition values are exact (`StringEquals`), and usernames are validated role-session
//! names, so they hold no wildcard, quote or `${` of their own.

#[cfg(test)]
use crate::domain::ids::Partition;
use crate::domain::ids::RoleId;
use crate::domain::session_iam::{any_session, SESSION_ACTIONS, SESSION_ID_KEY, USER_ID_KEY};
use crate::domain::session_name::SessionName;

/// IAM's limit on the aggregate size of a role's inline policies, whitespace not counted.
pub(crate) const INLINE_BUDGET: usize = 10_240;

/// One user's statement, without whitespace.
///
/// Written out rather than serialised so that its size never depends on a JSON library's key
/// order. Role ids and session names hold no character JSON would escape.
#[cfg(test)]
pub(crate) fn statement(role_id: &RoleId, user: &SessionName) -> String {
    statement_for(role_id, user.as_str())
}

fn statement_for(role_id: &RoleId, user: &str) -> String {
    let [terminate, resume] = SESSION_ACTIONS;
    let resource = any_session(role_id.partition());
    format!(
        r#"{{"Effect":"Allow","Action":["{terminate}","{resume}"],"Resource":"{resource}","Condition":{{"StringEquals":{{"{USER_ID_KEY}":"{role_id}:{user}","{SESSION_ID_KEY}":"${{aws:userid}}"}}}}}}"#
    )
}

/// A model of the statement static mode ships in the end-user policy (`template.yaml`,
/// `EndOwnSessions`; the IAM judge checks the template's own): the same rights for every user of
/// the role, with no per-user state, relying on IAM substituting `${aws:userid}`.
#[cfg(test)]
pub(crate) fn static_statement(partition: Partition) -> String {
    let [terminate, resume] = SESSION_ACTIONS;
    let resource = any_session(partition);
    format!(
        r#"{{"Effect":"Allow","Action":["{terminate}","{resume}"],"Resource":"{resource}","Condition":{{"StringEquals":{{"{SESSION_ID_KEY}":"${{aws:userid}}"}}}}}}"#
    )
}

/// The inline policy document holding one user's statement, without whitespace.
pub fn inline_document(role_id: &RoleId, user: &SessionName) -> String {
    document_for(role_id, user.as_str())
}

fn document_for(role_id: &RoleId, user: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        statement_for(role_id, user)
    )
}

/// Characters one user's inline policy takes, for a username of `user_len` characters.
pub(crate) fn inline_size(role_id: &RoleId, user_len: usize) -> usize {
    policy_size(&document_for(role_id, &"x".repeat(user_len)))
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

/// Which users a change is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One user: a grant or a revoke.
    User(SessionName),
    /// Every user: a reconcile. Product policies for anybody else are removed.
    All,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::evaluation::{evaluate, wildcard_matches, NamedPolicy};
    use crate::domain::session_iam::{on_session, START_SESSION};
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
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:TerminateSession","ssm:ResumeSession"],"Resource":"arn:aws:ssm:*:*:session/*","Condition":{"StringEquals":{"aws:userid":"AROARZPUZDIKBSV3HPLXQ:tim.malone","ssm:resourceTag/aws:ssmmessages:session-id":"${aws:userid}"}}}]}"#
        );
        let tim = statement(&role(), &user("tim.malone"));
        let own = format!("{ROLE_ID}:tim.malone");
        for suffix in [SUFFIX_17, SUFFIX_26] {
            let arn = session_arn("tim.malone", suffix);
            for action in SESSION_ACTIONS {
                assert!(allows(&tim, &own, action, &arn, Some(&own)), "{arn}");
            }
            assert!(!allows(&tim, &own, START_SESSION, &arn, Some(&own)));
            // A session without the tag is nobody's.
            assert!(!allows(&tim, &own, SESSION_ACTIONS[0], &arn, None));
        }
    }

    #[test]
    fn the_static_statement_lets_each_caller_end_only_their_own_sessions() {
        let statement = static_statement(Partition::Aws);
        let (tim, ada) = (format!("{ROLE_ID}:tim"), format!("{ROLE_ID}:ada"));
        let arn = session_arn("tim", SUFFIX_26);
        assert!(allows(
            &statement,
            &tim,
            SESSION_ACTIONS[1],
            &arn,
            Some(&tim)
        ));
        assert!(!allows(
            &statement,
            &ada,
            SESSION_ACTIONS[1],
            &arn,
            Some(&tim)
        ));
        assert!(!allows(&statement, &tim, SESSION_ACTIONS[1], &arn, None));
    }

    /// IAM's verdict, by the product's own evaluator (`domain::evaluation`, itself checked
    /// against the independent judge in `shared/tests/iam_judge.rs`), for `caller` doing
    /// `action` on the session `arn` whose session-id tag is `tag`, with `statement` the only
    /// policy on the role.
    fn allows(statement: &str, caller: &str, action: &str, arn: &str, tag: Option<&str>) -> bool {
        let policy = NamedPolicy {
            name: "under-test".into(),
            document: format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#),
        };
        evaluate(&[policy], &on_session(action, arn, caller, tag))
            .expect("the product's statements are evaluable")
            .decision
            .is_allowed()
    }

    const SUFFIX_17: &str = "0ab1cd9d876e54321";
    const SUFFIX_26: &str = "5cg7niur55cxqrt5thkensh7ki";

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
    fn look_alike_names_cannot_end_each_others_sessions_whatever_the_id() {
        // tim's session ids start with "tim-", and so do tim-malone.x's: a pattern over the id
        // cannot tell them apart, the session-id tag can.
        let tim = statement(&role(), &user("tim"));
        let tim_id = format!("{ROLE_ID}:tim");
        let other = format!("{ROLE_ID}:tim-malone.x");
        for suffix in [SUFFIX_17, SUFFIX_26] {
            let arn = session_arn("tim-malone.x", suffix);
            assert!(!allows(
                &tim,
                &tim_id,
                SESSION_ACTIONS[0],
                &arn,
                Some(&other)
            ));
            assert!(!allows(
                &tim,
                &other,
                SESSION_ACTIONS[0],
                &arn,
                Some(&other)
            ));
        }
        // The seed's pattern matches the other user's session.
        assert!(wildcard_matches(
            "arn:aws:ssm:*:*:session/tim-*",
            &session_arn("tim-malone.x", SUFFIX_17)
        ));
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
    fn statements_name_the_partition_of_the_role() {
        let gov = role().in_partition(Partition::AwsUsGov);
        let parsed: serde_json::Value =
            serde_json::from_str(&statement(&gov, &user("ada"))).unwrap();
        assert_eq!(parsed["Resource"], "arn:aws-us-gov:ssm:*:*:session/*");
        assert_eq!(
            parsed["Condition"]["StringEquals"]["aws:userid"],
            format!("{ROLE_ID}:ada")
        );
        let cn: serde_json::Value =
            serde_json::from_str(&static_statement(Partition::AwsCn)).unwrap();
        assert_eq!(cn["Resource"], "arn:aws-cn:ssm:*:*:session/*");
    }

    #[test]
    fn a_statement_names_each_action_and_no_wildcard() {
        let parsed: serde_json::Value =
            serde_json::from_str(&statement(&role(), &user("ada"))).unwrap();
        assert_eq!(
            parsed["Action"],
            serde_json::json!(["ssm:TerminateSession", "ssm:ResumeSession"])
        );
        assert!(!statement(&role(), &user("ada")).contains("*eSession"));
    }

    #[test]
    fn sizes_grow_by_one_character_per_username_character() {
        assert_eq!(
            inline_size(&role(), 10),
            policy_size(&inline_document(&role(), &user("tim.malone")))
        );
        assert_eq!(inline_size(&role(), 11) - inline_size(&role(), 10), 1);
    }

    #[test]
    fn size_ignores_whitespace() {
        assert_eq!(policy_size("{ \"a\" :\n 1 }"), 7);
    }

    /// A valid role-session name.
    fn username() -> impl Strategy<Value = String> {
        "[A-Za-z0-9+=,.@_-]{2,64}"
    }

    /// Both id shapes AWS issues: 17 hex characters, and 26 of [a-z0-9].
    fn suffix() -> impl Strategy<Value = String> {
        prop_oneof!["[0-9a-f]{17}", "[a-z0-9]{26}"]
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
            // Names that collide across suffix lengths: `a-<9 chars>` followed by a 17-character
            // suffix is as long as `a` followed by a 26-character one.
            (username(), "[a-z0-9.]{9}").prop_map(|(a, tail)| {
                let b: String = format!("{a}-{tail}").chars().take(64).collect();
                (a, b)
            }),
        ]
        .prop_filter("distinct", |(a, b)| a != b)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn a_users_statement_never_allows_another_users_session(
            (a, b) in two_users(), s in suffix(), t in suffix(), region in "[a-z]{2}-[a-z]{4,9}-[1-3]", account in "[0-9]{12}",
        ) {
            let (ua, ub) = (user(&a), user(&b));
            let (id_a, id_b) = (format!("{ROLE_ID}:{a}"), format!("{ROLE_ID}:{b}"));
            let own = format!("arn:aws:ssm:{region}:{account}:session/{a}-{s}");
            let other = format!("arn:aws:ssm:{region}:{account}:session/{b}-{t}");
            for statement in [statement(&role(), &ua), static_statement(Partition::Aws)] {
                for action in SESSION_ACTIONS {
                    prop_assert!(allows(&statement, &id_a, action, &own, Some(&id_a)));
                    // a may not end b's session, and b may not use a's statement
                    prop_assert!(!allows(&statement, &id_a, action, &other, Some(&id_b)), "{} allowed {} on {}", statement, id_a, other);
                    if statement != static_statement(Partition::Aws) {
                        prop_assert!(!allows(&statement, &id_b, action, &other, Some(&id_b)));
                        prop_assert!(!allows(&statement, &id_b, action, &own, Some(&id_a)));
                    }
                }
            }
            prop_assert_ne!(inline_policy_name(PREFIX, &ua), inline_policy_name(PREFIX, &ub));
        }
    }
}
