//! The session-policy function against moto in server mode: the policies that end up on the
//! users' role, and the IAM writes each event costs (counted at the HTTP layer).
//!
//! moto does not implement the SSM session APIs (DescribeSessions/TerminateSession answer HTTP
//! 500), so these tests run with END_SESSIONS_ON_TERMINATE=false; the SSM adapter and the
//! session ending on termination are covered with aws-smithy-mocks in `session_ending.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::common::{world, World, ROLE};
use shared::app::inline_store::InlineStore;
use shared::app::session_rights::SessionPolicies;
use shared::config::WriteMode;
use shared::domain::statements::{inline_document, inline_policy_name};
use shared::{Error, Status};
use testkit::{rewrite, sample_event, user};

const PREFIX: &str = "ssm-session-owner-";

type Policies = SessionPolicies<
    aws_sdk_ec2::Client,
    aws_sdk_iam::Client,
    aws_sdk_ssm::Client,
    InlineStore<aws_sdk_iam::Client>,
>;

impl World {
    fn policies(&self) -> Policies {
        let config = self.session_config(ROLE);
        let store = InlineStore::new(self.clients.iam.clone(), PREFIX);
        SessionPolicies::new(
            config,
            self.clients.ec2.clone(),
            self.clients.iam.clone(),
            self.clients.ssm.clone(),
            store,
        )
    }

    /// Every inline policy on the users' role: name → document.
    async fn role_policies(&self) -> BTreeMap<String, String> {
        let mut all = BTreeMap::new();
        let names = self
            .admin
            .iam
            .list_role_policies()
            .role_name(ROLE)
            .send()
            .await
            .unwrap();
        for name in names.policy_names() {
            let doc = self
                .admin
                .iam
                .get_role_policy()
                .role_name(ROLE)
                .policy_name(name)
                .send()
                .await
                .unwrap();
            all.insert(
                name.clone(),
                shared::aws::decode_policy_document(doc.policy_document()),
            );
        }
        all
    }

    async fn put_policy(&self, name: &str, document: &str) {
        self.admin
            .iam
            .put_role_policy()
            .role_name(ROLE)
            .policy_name(name)
            .policy_document(document)
            .send()
            .await
            .unwrap();
    }

    fn expected(&self, names: &[&str]) -> BTreeMap<String, String> {
        names
            .iter()
            .map(|n| {
                (
                    inline_policy_name(PREFIX, &user(n)),
                    inline_document(&self.role_id, &user(n)),
                )
            })
            .collect()
    }

    fn iam_writes(&self) -> u64 {
        self.counter
            .take()
            .iter()
            .filter(|(op, _)| op.starts_with("iam:Put") || op.starts_with("iam:Delete"))
            .map(|(_, n)| n)
            .sum()
    }
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[tokio::test]
async fn a_grant_puts_exactly_the_users_policy_and_a_replay_writes_nothing() {
    // GIVEN an instance that just got AwsUserId for tim.malone
    let w = world().await;
    let instance = w.launch_for("tim.malone").await;
    let policies = w.policies();

    // WHEN the tag-change event arrives
    let outcome = policies
        .handle(w.tag_event(&instance, "tim.malone"))
        .await
        .unwrap();

    // THEN the role holds exactly tim.malone's statement, written once and verified once
    assert_eq!(outcome.status, Status::Changed);
    assert_eq!((outcome.counts.grants, outcome.counts.revokes), (1, 0));
    assert_eq!(w.role_policies().await, w.expected(&["tim.malone"]));
    assert_eq!(
        w.counter.take(),
        counts(&[
            // the tagged instance's region only, before and after the write (no region list)
            ("ec2:DescribeInstances", 2),
            ("iam:GetRolePolicy", 2),
            ("iam:ListRolePolicies", 1),
            ("iam:PutRolePolicy", 1)
        ])
    );

    // WHEN it is delivered again THEN nothing is written: one EC2 read, one IAM read
    let outcome = policies
        .handle(w.tag_event(&instance, "tim.malone"))
        .await
        .unwrap();
    assert_eq!(outcome.status, Status::Unchanged);
    assert_eq!(
        w.counter.take(),
        counts(&[("ec2:DescribeInstances", 1), ("iam:GetRolePolicy", 1)])
    );
}

#[tokio::test]
async fn the_statement_goes_only_when_the_last_instance_terminates() {
    // GIVEN ada with two live instances, granted
    let w = world().await;
    let first = w.launch_for("ada").await;
    let second = w.launch_for("ada").await;
    let policies = w.policies();
    policies.handle(w.tag_event(&first, "ada")).await.unwrap();
    assert_eq!(w.role_policies().await, w.expected(&["ada"]));

    // WHEN one terminates THEN the statement stays, and nothing is written
    w.terminate(&first).await;
    w.counter.take();
    let outcome = policies.handle(w.terminated_event(&first)).await.unwrap();
    assert_eq!(outcome.status, Status::Unchanged);
    assert_eq!(outcome.reason, "ada has 1 live instance(s): granted");
    assert_eq!(w.role_policies().await, w.expected(&["ada"]));
    assert_eq!(w.iam_writes(), 0);

    // WHEN the last one terminates THEN the statement is removed
    w.terminate(&second).await;
    let outcome = policies.handle(w.terminated_event(&second)).await.unwrap();
    assert_eq!(outcome.status, Status::Changed);
    assert_eq!(outcome.reason, "ada has no live instance: revoked");
    assert_eq!((outcome.counts.grants, outcome.counts.revokes), (0, 1));
    assert_eq!(w.role_policies().await, BTreeMap::new());

    // AND a redelivery writes nothing
    w.counter.take();
    policies.handle(w.terminated_event(&second)).await.unwrap();
    assert_eq!(w.iam_writes(), 0);
}

#[tokio::test]
async fn reconcile_repairs_drift_both_ways_and_leaves_hand_made_policies_alone() {
    // GIVEN ada and bob with live instances, eve with none; bob's statement deleted by hand,
    // eve's left behind, ada's edited, and a hand-made policy nobody should touch
    let w = world().await;
    w.launch_for("ada").await;
    w.launch_for("bob").await;
    let stale = w.expected(&["eve"]);
    let (eve_name, eve_doc) = stale.iter().next().unwrap();
    w.put_policy(eve_name, eve_doc).await;
    let ada_name = inline_policy_name(PREFIX, &user("ada"));
    w.put_policy(&ada_name, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"*"}]}"#).await;
    let hand_made = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/*"}]}"#;
    w.put_policy("ops-break-glass", hand_made).await;
    let before = w.role_policies().await;
    let policies = w.policies();
    let reconcile = rewrite(&sample_event("scheduled-reconcile.json"), &[]);

    // WHEN a dry run reconciles THEN it plans the three repairs and changes nothing
    let outcome = policies
        .handle_with(reconcile.clone(), WriteMode::DryRun)
        .await
        .unwrap();
    assert_eq!(outcome.status, Status::Unchanged);
    assert_eq!(
        outcome.planned,
        vec![
            format!("delete {eve_name}"),
            format!("put {ada_name} (grant ada)"),
            format!(
                "put {} (grant bob)",
                inline_policy_name(PREFIX, &user("bob"))
            ),
        ]
    );
    assert_eq!(w.role_policies().await, before);
    assert_eq!(w.iam_writes(), 0);

    // WHEN it reconciles for real THEN exactly ada and bob are granted, the hand-made policy is as it was
    let outcome = policies.handle(reconcile.clone()).await.unwrap();
    assert_eq!(outcome.status, Status::Changed);
    assert_eq!(outcome.counts.drift_repaired, 3);
    let used: usize = [
        inline_document(&w.role_id, &user("ada")),
        inline_document(&w.role_id, &user("bob")),
        hand_made.to_owned(),
    ]
    .iter()
    .map(|d| shared::domain::statements::policy_size(d))
    .sum();
    assert_eq!(
        outcome.counts.capacity_used_percent,
        Some(used * 100 / 10_240)
    );
    let mut expected = w.expected(&["ada", "bob"]);
    expected.insert("ops-break-glass".into(), hand_made.into());
    assert_eq!(w.role_policies().await, expected);

    // WHEN it runs again THEN it writes nothing
    w.counter.take();
    let outcome = policies.handle(reconcile).await.unwrap();
    assert_eq!(outcome.status, Status::Unchanged);
    assert_eq!(w.iam_writes(), 0);
}

#[tokio::test]
async fn a_grant_beyond_the_inline_budget_fails_permanently_with_the_numbers_and_changes_nothing() {
    // GIVEN a role whose inline policies already use almost all of IAM's 10,240 characters
    let w = world().await;
    let filler = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::{}"}}]}}"#,
        "b".repeat(10_000)
    );
    w.put_policy("hand-made-large", &filler).await;
    let instance = w.launch_for("tim.malone").await;
    let before = w.role_policies().await;

    // WHEN tim.malone is to be granted
    let err = w
        .policies()
        .handle(w.tag_event(&instance, "tim.malone"))
        .await
        .unwrap_err();

    // THEN the grant fails permanently, saying why in numbers, and nothing changed
    assert!(matches!(err, Error::PolicyBudgetFull { .. }));
    assert!(!err.is_retryable());
    let needed =
        shared::domain::statements::policy_size(&inline_document(&w.role_id, &user("tim.malone")));
    let used = shared::domain::statements::policy_size(&filler);
    assert_eq!(
        err.to_string(),
        format!("session policy budget full: granting tim.malone needs {needed} characters, the role's policies already use {used} of 10240 (whitespace not counted)")
    );
    assert_eq!(w.role_policies().await, before);
}

#[tokio::test]
async fn fifty_concurrent_grants_and_revokes_end_where_ec2_says() {
    // GIVEN 10 users with 3 instances each
    let w = Arc::new(world().await);
    let names: Vec<String> = (0..10).map(|i| format!("user{i}.lab")).collect();
    let mut instances = Vec::new();
    for name in &names {
        for _ in 0..3 {
            instances.push((name.clone(), w.launch_for(name).await));
        }
    }

    // WHEN, all at once, every instance's grant event fires (30), while every instance of users
    // 0-3 and one of users 4-6 terminates and sends its revoke event (15), and five of those
    // revokes are delivered twice (5): 50 events in all
    let mut tasks = Vec::new();
    let mut events = 0;
    for (index, (name, instance)) in instances.iter().enumerate() {
        let user_index: usize = name[4..name.len() - 4].parse().unwrap();
        let terminates = user_index < 4 || (user_index < 7 && index % 3 == 0);
        let redelivered = terminates && user_index < 5 && index % 3 == 0;
        let (w, name, instance) = (w.clone(), name.clone(), instance.clone());
        events += 1 + usize::from(terminates) + usize::from(redelivered);
        tasks.push(tokio::spawn(async move {
            let policies = w.policies();
            let grant = policies.handle(w.tag_event(&instance, &name));
            let revoke = async {
                if terminates {
                    w.terminate(&instance).await;
                    let first = policies.handle(w.terminated_event(&instance)).await?;
                    if redelivered {
                        policies.handle(w.terminated_event(&instance)).await?;
                    }
                    Ok(Some(first))
                } else {
                    Ok(None)
                }
            };
            let (grant, revoke) = tokio::join!(grant, revoke);
            grant.and(revoke)
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(events, 50);

    // THEN the statements are exactly those of the users EC2 shows with a live instance
    let live = w
        .admin
        .ec2
        .describe_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-state-name")
                .values("running")
                .values("pending")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let live_users: BTreeSet<&str> = live
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .flat_map(|i| i.tags())
        .filter(|t| t.key() == Some("CreatedBy"))
        .filter_map(|t| t.value())
        .collect();
    assert_eq!(live_users.len(), 6);
    let expected = w.expected(&live_users.into_iter().collect::<Vec<_>>());
    assert_eq!(w.role_policies().await, expected);
}

/// The real EC2 client, but the first `live_instances_tagged` answer is held back until the
/// test says so: it forces a grant and a revoke to interleave in the worst order.
/// Signals that the first read happened, and waits to be let go.
type Gate = std::sync::Arc<
    std::sync::Mutex<
        Option<(
            tokio::sync::oneshot::Sender<()>,
            tokio::sync::oneshot::Receiver<()>,
        )>,
    >,
>;

#[derive(Clone)]
struct PausedAfterFirstRead {
    inner: aws_sdk_ec2::Client,
    gate: Gate,
}

/// One region only: the test's events and instances are all in moto's default region.
impl shared::ports::InRegion for PausedAfterFirstRead {
    fn region_name(&self) -> Option<String> {
        self.inner.region_name()
    }

    fn in_region(&self, _region: &str) -> Self {
        self.clone()
    }
}

impl shared::ports::EnabledRegions for PausedAfterFirstRead {
    async fn enabled_regions(&self) -> Result<Vec<String>, Error> {
        Ok(vec![testkit::REGION.to_owned()])
    }
}

impl shared::ports::LiveInstances for PausedAfterFirstRead {
    async fn live_instances_tagged(
        &self,
        keys: &[&str],
        value: Option<&str>,
    ) -> Result<Vec<shared::ports::DescribedInstance>, Error> {
        let answer = self.inner.live_instances_tagged(keys, value).await;
        let gate = self.gate.lock().unwrap().take();
        if let Some((reached, resume)) = gate {
            reached.send(()).unwrap();
            resume.await.unwrap();
        }
        answer
    }

    async fn each_live_instance_tagged(
        &self,
        keys: &[&str],
        visit: shared::ports::Visit<'_>,
    ) -> Result<(), Error> {
        self.inner.each_live_instance_tagged(keys, visit).await
    }
}

impl shared::ports::InstanceDirectory for PausedAfterFirstRead {
    async fn describe_instances(
        &self,
        ids: &[shared::domain::ids::InstanceId],
    ) -> Result<Vec<shared::ports::DescribedInstance>, Error> {
        shared::ports::InstanceDirectory::describe_instances(&self.inner, ids).await
    }
}

type PausedPolicies = SessionPolicies<
    PausedAfterFirstRead,
    aws_sdk_iam::Client,
    aws_sdk_ssm::Client,
    InlineStore<aws_sdk_iam::Client>,
>;

impl World {
    /// Session policies whose first EC2 read pauses; returns (handler, paused, resume).
    fn paused_policies(
        &self,
    ) -> (
        PausedPolicies,
        tokio::sync::oneshot::Receiver<()>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        let (reached_tx, reached_rx) = tokio::sync::oneshot::channel();
        let (resume_tx, resume_rx) = tokio::sync::oneshot::channel();
        let ec2 = PausedAfterFirstRead {
            inner: self.clients.ec2.clone(),
            gate: std::sync::Arc::new(std::sync::Mutex::new(Some((reached_tx, resume_rx)))),
        };
        let config = self.session_config(ROLE);
        let store = InlineStore::new(self.clients.iam.clone(), PREFIX);
        (
            SessionPolicies::new(
                config,
                ec2,
                self.clients.iam.clone(),
                self.clients.ssm.clone(),
                store,
            ),
            reached_rx,
            resume_tx,
        )
    }
}

#[tokio::test]
async fn a_grant_that_read_ec2_before_a_termination_cannot_outlive_the_revoke() {
    // GIVEN ada's only instance, and a grant that has read EC2 ("1 live instance") but not yet written
    let w = world().await;
    let instance = w.launch_for("ada").await;
    let (paused, reached, resume) = w.paused_policies();
    let event = w.tag_event(&instance, "ada");
    let grant = tokio::spawn(async move { paused.handle(event).await });
    reached.await.unwrap();

    // WHEN the instance terminates and the revoke runs to completion in between
    w.terminate(&instance).await;
    w.policies()
        .handle(w.terminated_event(&instance))
        .await
        .unwrap();
    resume.send(()).unwrap();
    grant.await.unwrap().unwrap();

    // THEN the late grant's own verification took its statement back: ada has no instance
    assert_eq!(w.role_policies().await, BTreeMap::new());
}

#[tokio::test]
async fn a_revoke_that_read_ec2_before_a_launch_cannot_undo_the_grant() {
    // GIVEN ada's only instance terminated, and its revoke has read EC2 ("none live") but not written
    let w = world().await;
    let old = w.launch_for("ada").await;
    w.policies().handle(w.tag_event(&old, "ada")).await.unwrap();
    w.terminate(&old).await;
    let (paused, reached, resume) = w.paused_policies();
    let event = w.terminated_event(&old);
    let revoke = tokio::spawn(async move { paused.handle(event).await });
    reached.await.unwrap();

    // WHEN ada launches a new instance and its grant completes in between
    let new = w.launch_for("ada").await;
    w.policies().handle(w.tag_event(&new, "ada")).await.unwrap();
    resume.send(()).unwrap();
    revoke.await.unwrap().unwrap();

    // THEN the late revoke's verification restored the statement: ada has a live instance
    assert_eq!(w.role_policies().await, w.expected(&["ada"]));
}

#[tokio::test]
async fn a_reconcile_of_n_users_costs_two_reads_plus_one_call_per_user() {
    // GIVEN 20 users with a live instance each and no statements yet
    let w = world().await;
    let names: Vec<String> = (0..20).map(|i| format!("researcher{i:02}")).collect();
    for name in &names {
        w.launch_for(name).await;
    }
    let policies = w.policies();
    let reconcile = rewrite(&sample_event("scheduled-reconcile.json"), &[]);

    // WHEN it reconciles from empty THEN one EC2 read, one list, one put per user
    policies.handle(reconcile.clone()).await.unwrap();
    assert_eq!(
        w.counter.take(),
        counts(&[
            ("ec2:DescribeRegions", 1),
            ("ec2:DescribeInstances", 1),
            ("iam:ListRolePolicies", 1),
            ("iam:PutRolePolicy", 20)
        ])
    );
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(w.role_policies().await, w.expected(&refs));

    // WHEN nothing changed THEN it reads every statement to catch hand edits, and writes nothing
    policies.handle(reconcile).await.unwrap();
    assert_eq!(
        w.counter.take(),
        counts(&[
            ("ec2:DescribeInstances", 1),
            ("iam:GetRolePolicy", 20),
            ("iam:ListRolePolicies", 1)
        ])
    );
}

#[tokio::test]
async fn a_revoke_costs_three_ec2_reads_two_iam_reads_and_one_delete() {
    let w = world().await;
    let instance = w.launch_for("ada").await;
    let policies = w.policies();
    policies
        .handle(w.tag_event(&instance, "ada"))
        .await
        .unwrap();
    w.terminate(&instance).await;
    w.counter.take();

    policies
        .handle(w.terminated_event(&instance))
        .await
        .unwrap();

    // The instance's owner, then the user's live instances in every covered region before and
    // after the delete, and once per process the regions the deployment covers (the grant
    // before it read only its own region).
    assert_eq!(
        w.counter.take(),
        counts(&[
            ("ec2:DescribeRegions", 1),
            ("ec2:DescribeInstances", 3),
            ("iam:DeleteRolePolicy", 1),
            ("iam:GetRolePolicy", 2)
        ])
    );
    assert_eq!(w.role_policies().await, BTreeMap::new());
}

#[tokio::test]
async fn a_guest_slot_grants_the_guest_and_a_forged_slot_event_grants_nobody() {
    // GIVEN tim's instance with ada in a guest slot, and another instance on which a user's
    // own label holds bob's id (not a key that gives rights); per-user rights, sharing on
    let w = world().await;
    let instance = w.launch_for("tim.malone").await;
    let ada = format!("{}:ada.lovelace", w.role_id);
    let bob = format!("{}:bob", w.role_id);
    let labelled = w.launch_for("grace.hopper").await;
    testkit::put_tag(&w.admin.ec2, &instance, "AwsUserIdGuest1", &ada).await;
    testkit::put_tag(&w.admin.ec2, &labelled, "Note", &bob).await;
    let role_id = w.role_id.to_string();
    let config = shared::Config::from_lookup(|k| match k {
        "SESSION_ROLE_NAME" => Some(ROLE.into()),
        "SESSION_ROLE_ID" => Some(role_id.clone()),
        "END_SESSIONS_ON_TERMINATE" => Some("false".into()),
        "REGIONS" => Some("us-east-1".into()),
        "SHARING" => Some("true".into()),
        _ => None,
    })
    .unwrap();
    let policies = SessionPolicies::new(
        config,
        w.clients.ec2.clone(),
        w.clients.iam.clone(),
        w.clients.ssm.clone(),
        InlineStore::new(w.clients.iam.clone(), PREFIX),
    );
    let slot_event = |guest: &str| {
        let mut event = w.tag_event(&instance, "tim.malone");
        event["detail"]["changed-tag-keys"] = serde_json::json!(["AwsUserIdGuest1"]);
        event["detail"]["tags"]["AwsUserIdGuest1"] = serde_json::json!(guest);
        event
    };
    w.counter.take();

    // WHEN the slot's tag change arrives THEN ada is granted (tim's key did not change), with
    // one DescribeInstances before and one after the write
    let outcome = policies.handle(slot_event(&ada)).await.unwrap();
    assert_eq!(outcome.status, Status::Changed, "{outcome:?}");
    assert_eq!(w.role_policies().await, w.expected(&["ada.lovelace"]));
    assert_eq!(w.counter.take()["ec2:DescribeInstances"], 2);

    // WHEN an event claims bob holds the slot THEN EC2 is the judge: the only tag holding his
    // id is a label, so nobody is granted
    let outcome = policies.handle(slot_event(&bob)).await.unwrap();
    assert_eq!(outcome.reason, "bob has no live instance: revoked");
    assert_eq!(w.role_policies().await, w.expected(&["ada.lovelace"]));
}
