//! The sharded managed-policy store against moto in server mode: what ends up in IAM.
//!
//! moto does not enforce IAM's size limits, so every test checks the 6,144-character shard
//! limit itself. It does enforce the 5-version limit.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use crate::common::{world, World, ROLE};
use shared::app::inline_store::InlineStore;
use shared::app::managed_store::ManagedStore;
use shared::app::session_rights::SessionPolicies;
use shared::config::WriteMode;
use shared::domain::evaluation::wildcard_matches;
use shared::domain::session_name::SessionName;
use shared::domain::shard_packing::{shard_arn, shard_guard_resource, SHARD_LIMIT};
use shared::domain::statements::{policy_size, Scope};
use shared::ports::PolicyStore;
use shared::{Error, Status};
use testkit::{rewrite, sample_event, user};

const PREFIX: &str = "ssm-session-owner-";
const PATH: &str = "/ssm-session-owner/";

type Policies = SessionPolicies<
    aws_sdk_ec2::Client,
    aws_sdk_iam::Client,
    aws_sdk_ssm::Client,
    ManagedStore<aws_sdk_iam::Client>,
>;

/// A shard as read back from moto.
#[derive(Debug, Clone, PartialEq)]
struct ShardInIam {
    version: String,
    attached: bool,
    chars: usize,
    statements: Vec<Value>,
}

impl World {
    fn store(&self, max_shards: usize, role_limit: usize) -> ManagedStore<aws_sdk_iam::Client> {
        ManagedStore::new(self.clients.iam.clone(), PREFIX, max_shards, role_limit)
    }

    fn managed_policies(&self, max_shards: usize, role_limit: usize) -> Policies {
        let config = self.session_config(ROLE);
        SessionPolicies::new(
            config,
            self.clients.ec2.clone(),
            self.clients.iam.clone(),
            self.clients.ssm.clone(),
            self.store(max_shards, role_limit),
        )
    }

    /// The product's shards in IAM: name → contents.
    async fn shards(&self) -> BTreeMap<String, ShardInIam> {
        let iam = &self.admin.iam;
        let attached: Vec<String> = iam
            .list_attached_role_policies()
            .role_name(ROLE)
            .send()
            .await
            .unwrap()
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_owned))
            .collect();
        let mut shards = BTreeMap::new();
        for policy in self.listed_shards().await {
            let arn = policy.arn().unwrap();
            let version = policy.default_version_id().unwrap().to_owned();
            let doc = iam
                .get_policy_version()
                .policy_arn(arn)
                .version_id(&version)
                .send()
                .await
                .unwrap();
            let document = shared::aws::decode_policy_document(
                doc.policy_version().unwrap().document().unwrap(),
            );
            let parsed: Value = serde_json::from_str(&document).unwrap();
            shards.insert(
                policy.policy_name().unwrap().to_owned(),
                ShardInIam {
                    version,
                    attached: attached.iter().any(|a| a == arn),
                    chars: policy_size(&document),
                    statements: parsed["Statement"].as_array().unwrap().clone(),
                },
            );
        }
        shards
    }

    /// The customer-managed policies under the shards' path.
    async fn listed_shards(&self) -> Vec<aws_sdk_iam::types::Policy> {
        self.admin
            .iam
            .list_policies()
            .scope(aws_sdk_iam::types::PolicyScopeType::Local)
            .path_prefix(PATH)
            .send()
            .await
            .unwrap()
            .policies()
            .to_vec()
    }

    /// The ARNs IAM gave the product's shards.
    async fn shard_arns(&self) -> Vec<String> {
        let arns: Vec<String> = self
            .listed_shards()
            .await
            .iter()
            .map(|p| p.arn().unwrap().to_owned())
            .collect();
        assert!(!arns.is_empty(), "no shard in IAM");
        arns
    }

    /// Users granted by the shards: username → shard name.
    async fn granted(&self) -> BTreeMap<String, String> {
        let mut granted = BTreeMap::new();
        for (name, shard) in self.shards().await {
            for statement in shard.statements {
                for userid in
                    testkit::user_ids(&statement["Condition"]["StringEquals"]["aws:userid"])
                {
                    let (_, username) = userid.split_once(':').unwrap();
                    assert!(
                        granted.insert(username.to_owned(), name.clone()).is_none(),
                        "{username} granted twice"
                    );
                }
            }
        }
        granted
    }

    async fn inline_names(&self) -> Vec<String> {
        self.admin
            .iam
            .list_role_policies()
            .role_name(ROLE)
            .send()
            .await
            .unwrap()
            .policy_names()
            .to_vec()
    }
}

/// A 64-character role-session name (IAM's longest), numbered.
fn long_name(i: usize) -> String {
    format!("user{i:04}.{}", "x".repeat(55))
}

fn reconcile() -> Value {
    rewrite(&sample_event("scheduled-reconcile.json"), &[])
}

#[tokio::test]
async fn five_hundred_forty_users_fit_a_few_shards_within_the_limits_and_stay_isolated() {
    // GIVEN 540 users with a live instance each, and a role allowed IAM's maximum of 25 managed
    // policies (about 190 ids of an 8-character name fit one shard)
    let w = world().await;
    let names: Vec<String> = (0..540).map(|i| format!("user{i:04}")).collect();
    for name in &names {
        w.launch_for(name).await;
    }
    let policies = w.managed_policies(25, 25);

    // WHEN the reconcile runs
    let outcome = policies.handle(reconcile()).await.unwrap();
    assert_eq!(outcome.status, Status::Changed);
    assert!(outcome.skipped.is_empty(), "{:?}", outcome.skipped);

    // THEN every user is granted exactly once, in at most 25 attached shards of at most 6,144 characters
    let granted = w.granted().await;
    assert_eq!(
        granted.keys().cloned().collect::<BTreeSet<_>>(),
        names.iter().cloned().collect()
    );
    let shards = w.shards().await;
    assert!(shards.len() <= 25, "{} shards", shards.len());
    for (name, shard) in &shards {
        assert!(
            shard.chars <= SHARD_LIMIT,
            "{name} has {} characters",
            shard.chars
        );
        assert!(shard.attached, "{name} is not attached");
    }

    // AND IAM gave each shard the ARN the code names, which the guards cover
    let guard = shard_guard_resource("aws", "123456789012", PREFIX);
    for arn in w.shard_arns().await {
        let index = arn.rsplit("shard-").next().unwrap().parse().unwrap();
        assert_eq!(arn, shard_arn("aws", "123456789012", PREFIX, index));
        assert!(
            wildcard_matches(&guard, &arn),
            "the guard {guard} misses {arn}"
        );
    }

    // AND each shard is one statement that lists its users and requires the caller's own
    // session (the dense exact encoding)
    let mut owners = BTreeSet::new();
    for shard in shards.values() {
        assert_eq!(shard.statements.len(), 1);
        let statement = &shard.statements[0];
        for userid in testkit::user_ids(&statement["Condition"]["StringEquals"]["aws:userid"]) {
            assert_eq!(userid.split_once(':').unwrap().0, w.role_id.as_str());
            assert!(owners.insert(userid.clone()), "{userid} listed twice");
        }
        // Isolation is the session-id tag: it must be the caller's own id.
        assert_eq!(
            statement["Condition"]["StringEquals"]["ssm:resourceTag/aws:ssmmessages:session-id"],
            "${aws:userid}"
        );
        assert_eq!(statement["Resource"], "arn:aws:ssm:*:*:session/*");
        assert_eq!(
            statement["Action"],
            serde_json::json!(["ssm:TerminateSession", "ssm:ResumeSession"])
        );
    }
    assert_eq!(owners.len(), names.len(), "every user listed once");

    // AND a second reconcile writes nothing
    w.counter.take();
    policies.handle(reconcile()).await.unwrap();
    let writes: u64 = w
        .counter
        .take()
        .iter()
        .filter(|(op, _)| {
            !op.contains(":Get") && !op.contains(":List") && !op.contains(":Describe")
        })
        .map(|(_, n)| n)
        .sum();
    assert_eq!(writes, 0);

    // WHEN 300 users' instances terminate (the first 300, which fill the first shards)
    let before = w.shards().await;
    let gone: BTreeSet<&str> = names[..300].iter().map(String::as_str).collect();
    let pages: Vec<_> = w
        .admin
        .ec2
        .describe_instances()
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    let ids: Vec<String> = pages
        .iter()
        .flat_map(|page| page.reservations())
        .flat_map(|r| r.instances())
        .filter(|i| {
            i.tags().iter().any(|t| {
                t.key() == Some("CreatedBy") && gone.contains(t.value().unwrap_or_default())
            })
        })
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), 300);
    w.admin
        .ec2
        .terminate_instances()
        .set_instance_ids(Some(ids))
        .send()
        .await
        .unwrap();
    policies.handle(reconcile()).await.unwrap();

    // THEN exactly the 300 remain, and only shards that held a removed user changed
    let granted = w.granted().await;
    assert_eq!(
        granted.keys().cloned().collect::<BTreeSet<_>>(),
        names[300..].iter().cloned().collect()
    );
    let after = w.shards().await;
    for (name, shard) in &before {
        let touched = shard.statements.iter().any(|s| {
            testkit::user_ids(&s["Condition"]["StringEquals"]["aws:userid"])
                .iter()
                .any(|userid| gone.contains(userid.split_once(':').unwrap().1))
        });
        match after.get(name) {
            Some(now) if !touched => assert_eq!(now.version, shard.version, "{name} was rewritten"),
            Some(now) => assert_ne!(
                now.version, shard.version,
                "{name} should have been rewritten"
            ),
            None => assert!(touched, "{name} was deleted"),
        }
    }
}

#[tokio::test]
async fn when_every_shard_is_full_a_grant_fails_with_the_numbers_and_nobody_loses_access() {
    // GIVEN one allowed shard, filled by a reconcile of 80 users with 64-character names (about
    // 66 fit)
    let w = world().await;
    for i in 0..80 {
        w.launch_for(&long_name(i)).await;
    }
    let policies = w.managed_policies(1, 10);
    let outcome = policies.handle(reconcile()).await.unwrap();
    let fitted = w.granted().await.len();
    assert!(fitted < 80, "{fitted}");
    assert_eq!(outcome.skipped.len(), 80 - fitted);
    let reason = &outcome.skipped[0].reason;
    assert!(
        reason
            .text
            .starts_with("session policy budget full: granting user00"),
        "{reason}"
    );
    assert!(
        reason.text.ends_with("of 6144 (whitespace not counted)"),
        "{reason}"
    );
    let before = w.shards().await;

    // WHEN one more user is to be granted
    let instance = w.launch_for(&long_name(999)).await;
    let err = policies
        .handle(w.tag_event(&instance, &long_name(999)))
        .await
        .unwrap_err();

    // THEN the grant fails permanently with the numbers, and the shard is as it was
    assert!(matches!(err, Error::PolicyBudgetFull { .. }));
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("of 6144"), "{err}");
    assert_eq!(w.shards().await, before);
}

#[tokio::test]
async fn a_shard_at_five_versions_is_pruned_before_the_next_write() {
    // GIVEN a shard that already has IAM's maximum of 5 versions
    let w = world().await;
    let first = w.launch_for("ada").await;
    let policies = w.managed_policies(10, 10);
    policies.handle(w.tag_event(&first, "ada")).await.unwrap();
    let arn = format!("arn:aws:iam::123456789012:policy{PATH}{PREFIX}shard-01");
    let doc = w
        .admin
        .iam
        .get_policy_version()
        .policy_arn(&arn)
        .version_id("v1")
        .send()
        .await
        .unwrap();
    let document =
        shared::aws::decode_policy_document(doc.policy_version().unwrap().document().unwrap());
    for _ in 0..4 {
        w.admin
            .iam
            .create_policy_version()
            .policy_arn(&arn)
            .policy_document(&document)
            .set_as_default(false)
            .send()
            .await
            .unwrap();
    }

    // WHEN another user is granted into that shard
    let second = w.launch_for("bob").await;
    policies.handle(w.tag_event(&second, "bob")).await.unwrap();

    // THEN the oldest non-default version made room, and the new version is the default
    let versions = w
        .admin
        .iam
        .list_policy_versions()
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    let ids: BTreeMap<String, bool> = versions
        .versions()
        .iter()
        .map(|v| (v.version_id().unwrap().to_owned(), v.is_default_version()))
        .collect();
    assert_eq!(ids.len(), 5);
    assert_eq!(ids.get("v6"), Some(&true));
    assert!(!ids.contains_key("v2"), "{ids:?}");
    assert_eq!(
        w.granted().await.keys().cloned().collect::<Vec<_>>(),
        ["ada", "bob"]
    );
}

#[tokio::test]
async fn a_role_with_inline_statements_moves_to_shards_on_the_next_reconcile() {
    // GIVEN three users granted by the inline store, and a hand-made inline policy
    let w = world().await;
    for name in ["ada", "bob", "eve"] {
        w.launch_for(name).await;
    }
    let inline = InlineStore::new(w.clients.iam.clone(), PREFIX);
    let users: BTreeSet<SessionName> = ["ada", "bob", "eve"].into_iter().map(user).collect();
    inline
        .converge(&w.role(), &Scope::All, &users, WriteMode::Apply)
        .await
        .unwrap();
    w.admin.iam.put_role_policy().role_name(ROLE).policy_name("ops-break-glass")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#)
        .send().await.unwrap();
    assert_eq!(w.inline_names().await.len(), 4);

    // WHEN the managed store reconciles
    let outcome = w
        .managed_policies(10, 10)
        .handle(reconcile())
        .await
        .unwrap();

    // THEN the shard holds all three, and was attached before any inline statement went
    assert_eq!(
        w.granted().await.keys().cloned().collect::<Vec<_>>(),
        ["ada", "bob", "eve"]
    );
    assert_eq!(w.inline_names().await, ["ops-break-glass"]);
    assert_eq!(
        outcome.changed[0],
        format!("create {PREFIX}shard-01 (3 users)")
    );
    assert!(
        outcome.changed[1..]
            .iter()
            .all(|c| c.starts_with("delete inline ssm-session-owner-")),
        "{:?}",
        outcome.changed
    );
}

#[tokio::test]
async fn managed_policies_attached_by_others_reduce_the_shards_available() {
    // GIVEN a role with 9 of its 10 managed-policy slots taken by others
    let w = world().await;
    for i in 0..9 {
        let arn = w.admin.iam.create_policy().policy_name(format!("other-{i}"))
            .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}"#)
            .send().await.unwrap().policy().unwrap().arn().unwrap().to_owned();
        w.admin
            .iam
            .attach_role_policy()
            .role_name(ROLE)
            .policy_arn(arn)
            .send()
            .await
            .unwrap();
    }
    for i in 0..80 {
        w.launch_for(&long_name(i)).await;
    }

    // WHEN the reconcile may use up to 10 shards
    let outcome = w
        .managed_policies(10, 10)
        .handle(reconcile())
        .await
        .unwrap();

    // THEN it uses only the one slot left, and says who did not fit
    assert_eq!(w.shards().await.len(), 1);
    assert!(!outcome.skipped.is_empty());
    assert_eq!(w.granted().await.len() + outcome.skipped.len(), 80);
}

#[tokio::test]
async fn a_grant_and_its_replay_cost_reads_only_the_second_time() {
    let w = world().await;
    let instance = w.launch_for("tim.malone").await;
    let policies = w.managed_policies(10, 10);
    policies
        .handle(w.tag_event(&instance, "tim.malone"))
        .await
        .unwrap();
    let first = w.counter.take();
    assert_eq!(first.get("iam:CreatePolicy"), Some(&1));
    assert_eq!(first.get("iam:AttachRolePolicy"), Some(&1));

    let outcome = policies
        .handle(w.tag_event(&instance, "tim.malone"))
        .await
        .unwrap();
    assert_eq!(outcome.status, Status::Unchanged);
    let second = w.counter.take();
    assert!(
        second
            .keys()
            .all(|op| op.contains(":Get") || op.contains(":List") || op.contains(":Describe")),
        "{second:?}"
    );
}

#[tokio::test]
async fn fifty_concurrent_grants_and_revokes_end_where_ec2_says_with_shards() {
    // GIVEN 10 users with 3 instances each; one handler, as reserved concurrency 1 gives
    let w = Arc::new(world().await);
    let policies = Arc::new(w.managed_policies(10, 10));
    let names: Vec<String> = (0..10).map(|i| format!("user{i}.lab")).collect();
    let mut instances = Vec::new();
    for name in &names {
        for _ in 0..3 {
            instances.push((name.clone(), w.launch_for(name).await));
        }
    }

    // WHEN 30 grants, 15 revokes (while instances terminate) and 5 redeliveries arrive at once
    let mut tasks = Vec::new();
    let mut events = 0;
    for (index, (name, instance)) in instances.iter().enumerate() {
        let user_index: usize = name[4..name.len() - 4].parse().unwrap();
        let terminates = user_index < 4 || (user_index < 7 && index % 3 == 0);
        let redelivered = terminates && user_index < 5 && index % 3 == 0;
        events += 1 + usize::from(terminates) + usize::from(redelivered);
        let (w, policies, name, instance) =
            (w.clone(), policies.clone(), name.clone(), instance.clone());
        tasks.push(tokio::spawn(async move {
            let grant = policies.handle(w.tag_event(&instance, &name));
            let revoke = async {
                if terminates {
                    w.terminate(&instance).await;
                    policies.handle(w.terminated_event(&instance)).await?;
                    if redelivered {
                        policies.handle(w.terminated_event(&instance)).await?;
                    }
                }
                Ok::<_, Error>(())
            };
            let (grant, revoke) = tokio::join!(grant, revoke);
            grant.map(|_| ()).and(revoke)
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(events, 50);

    // THEN the shards grant exactly the users with a live instance
    let expected: BTreeSet<String> = names[4..].iter().cloned().collect();
    assert_eq!(
        w.granted().await.keys().cloned().collect::<BTreeSet<_>>(),
        expected
    );
}
