//! The use cases and both stores against the in-memory fakes: fast, no moto. The moto tests
//! (`shared/tests/*_moto.rs`) keep the end-to-end AWS behaviour.

use std::collections::{BTreeMap, BTreeSet};

use super::inline_store::InlineStore;
use super::managed_store::ManagedStore;
use super::owner_tagging::OwnerTagger;
use super::session_rights::SessionPolicies;
use crate::config::{Config, WriteMode};
use crate::domain::ids::{InstanceState, ResolvedRole, RoleId};
use crate::domain::reason::ReasonCode;
use crate::domain::session_name::SessionName;
use crate::domain::statements::Scope;
use crate::fakes::FakeAws;
use crate::ports::PolicyStore;
use crate::Status;

const ROLE: &str = Config::TEST_ROLE;
const ROLE_ID: &str = "AROAEXAMPLEROLEID1234";
const PREFIX: &str = "ssm-session-owner-";

fn role() -> RoleId {
    RoleId::parse(ROLE_ID).unwrap()
}

fn resolved() -> ResolvedRole {
    ResolvedRole {
        name: ROLE.into(),
        id: role(),
    }
}

fn fake() -> FakeAws {
    FakeAws::new().with_role(ROLE, &role())
}

fn config() -> Config {
    Config::for_tests(&[("END_SESSIONS_ON_TERMINATE", "true")])
}

/// Whether any managed policy in the fake names `user`'s id.
fn role_holds(fake: &FakeAws, user: &str) -> bool {
    let id = format!("\"{ROLE_ID}:{user}\"");
    fake.world()
        .managed_policies
        .values()
        .any(|p| p.document().contains(&id))
}

/// The tag-change event for ada's user-id tag on `instance` in eu-west-1.
fn ada_tagged_in_eu_west_1(instance: &str) -> serde_json::Value {
    let mut tagged = event(sample_event!("tag-change-user-id-added.json"));
    tagged["region"] = serde_json::json!("eu-west-1");
    tagged["resources"] = serde_json::json!([format!(
        "arn:aws:ec2:eu-west-1:123456789012:instance/{instance}"
    )]);
    tagged["detail"]["tags"]["AwsUserId"] = serde_json::json!(format!("{ROLE_ID}:ada"));
    tagged
}

/// Terminates `instance` in the fake, and returns its state-change event from eu-west-1.
fn terminate_in_eu_west_1(fake: &FakeAws, instance: &str) -> serde_json::Value {
    fake.world()
        .instances
        .get_mut(&crate::domain::ids::InstanceId::parse(instance).unwrap())
        .unwrap()
        .state = InstanceState::Terminated;
    let mut terminated = event(sample_event!("state-change-terminated.json"));
    terminated["region"] = serde_json::json!("eu-west-1");
    terminated["detail"]["instance-id"] = serde_json::json!(instance);
    terminated
}

fn users(names: &[&str]) -> BTreeSet<SessionName> {
    names
        .iter()
        .map(|n| SessionName::parse(n).unwrap())
        .collect()
}

fn event(json: &str) -> serde_json::Value {
    serde_json::from_str(json).unwrap()
}

fn at(time: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(time)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// The owner's share request on `instance` in `region`, written at 12:00.
fn share_request(instance: &str, region: &str) -> serde_json::Value {
    let mut request = event(sample_event!("tag-change-share-with-added.json"));
    request["region"] = serde_json::json!(region);
    request["resources"] = serde_json::json!([format!(
        "arn:aws:ec2:{region}:123456789012:instance/{instance}"
    )]);
    request["time"] = serde_json::json!("2026-12-06T12:00:00Z");
    request
}

/// The session-policy use case on the fake, with `config` and `store`.
fn policies_on<S: PolicyStore + Sync>(
    config: Config,
    fake: &FakeAws,
    store: S,
) -> SessionPolicies<FakeAws, FakeAws, FakeAws, S> {
    SessionPolicies::new(config, fake.clone(), fake.clone(), fake.clone(), store)
}

fn managed(fake: &FakeAws) -> ManagedStore<FakeAws> {
    ManagedStore::new(fake.clone(), PREFIX, 10, 10)
}

#[tokio::test]
async fn a_portal_launch_tags_both_instances_in_one_call() {
    // GIVEN the two portal instances of the sample, tagged CreatedBy=tim.malone
    let fake = fake();
    for id in ["i-0a1b2c3d4e5f60001", "i-0a1b2c3d4e5f60002"] {
        fake.add_instance(id, InstanceState::Running, &[("CreatedBy", "tim.malone")]);
    }
    let tagger = OwnerTagger::new(config(), fake.clone(), fake.clone());
    // WHEN the launch event is handled
    let outcome = tagger
        .handle(event(sample_event!("run-instances-created-by.json")))
        .await
        .unwrap();
    // THEN both carry AwsUserId, written with one CreateTags and a single GetRole
    assert_eq!(outcome.status, Status::Changed);
    let world = fake.world();
    for instance in world.instances.values() {
        assert_eq!(instance.tags["AwsUserId"], format!("{ROLE_ID}:tim.malone"));
    }
    assert_eq!(world.calls["ec2:CreateTags"], 1);
    assert_eq!(world.calls["iam:GetRole"], 1);
}

#[tokio::test]
async fn a_hostile_owner_is_ignored_with_its_code_and_nothing_is_written() {
    let fake = fake();
    fake.add_instance(
        "i-0a1b2c3d4e5f60005",
        InstanceState::Running,
        &[("CreatedBy", "tim*")],
    );
    let tagger = OwnerTagger::new(config(), fake.clone(), fake.clone());
    let outcome = tagger
        .handle(event(sample_event!("run-instances-hostile-username.json")))
        .await
        .unwrap();
    assert_eq!(outcome.status, Status::Ignored);
    assert_eq!(outcome.code, Some(ReasonCode::InvalidUsername));
    assert!(fake.world().tag_writes.is_empty());
}

#[tokio::test]
async fn the_managed_store_grants_into_one_shard_and_revokes_by_deleting_it() {
    let fake = fake();
    let store = managed(&fake);
    let report = store
        .converge(
            &resolved(),
            &Scope::All,
            &users(&["ada", "tim"]),
            WriteMode::Apply,
        )
        .await
        .unwrap();
    assert_eq!(
        report.applied,
        vec!["create ssm-session-owner-shard-01 (2 users)"]
    );
    {
        let world = fake.world();
        let arn = "arn:aws:iam::123456789012:policy/ssm-session-owner/ssm-session-owner-shard-01";
        assert_eq!(world.attachments[ROLE], vec![arn.to_owned()]);
        let document = world.managed_policies[arn].document().to_owned();
        assert!(document.contains(&format!("{ROLE_ID}:ada")), "{document}");
        assert!(document.contains(&format!("{ROLE_ID}:tim")), "{document}");
    }
    // A repeat writes nothing.
    fake.take_calls();
    let again = store
        .converge(
            &resolved(),
            &Scope::All,
            &users(&["ada", "tim"]),
            WriteMode::Apply,
        )
        .await
        .unwrap();
    assert!(!again.wrote());
    assert!(fake.take_calls().keys().all(|op| !op.contains("Create")));
    // Revoking both empties the shard: detached and deleted.
    store
        .converge(&resolved(), &Scope::All, &users(&[]), WriteMode::Apply)
        .await
        .unwrap();
    let world = fake.world();
    assert!(world.managed_policies.is_empty());
    assert!(world.attachments[ROLE].is_empty());
}

#[tokio::test]
async fn the_managed_store_prunes_the_oldest_version_at_five() {
    let fake = fake();
    let store = managed(&fake);
    let names = ["aa", "bb", "cc", "dd", "ee", "ff", "gg"];
    for n in 1..=names.len() {
        store
            .converge(
                &resolved(),
                &Scope::All,
                &users(&names[..n]),
                WriteMode::Apply,
            )
            .await
            .unwrap();
    }
    let world = fake.world();
    let policy = world.managed_policies.values().next().unwrap();
    assert_eq!(policy.versions.len(), 5);
    assert_eq!(policy.default_version, "v7");
    assert!(policy.document().contains(&format!("{ROLE_ID}:gg")));
}

#[tokio::test]
async fn the_inline_store_puts_and_deletes_one_policy_per_user() {
    let fake = fake();
    let store = InlineStore::new(fake.clone(), PREFIX);
    let ada = SessionName::parse("ada").unwrap();
    store
        .converge(
            &resolved(),
            &Scope::User(ada.clone()),
            &users(&["ada"]),
            WriteMode::Apply,
        )
        .await
        .unwrap();
    assert_eq!(fake.world().inline_policies.len(), 1);
    store
        .converge(
            &resolved(),
            &Scope::User(ada),
            &users(&[]),
            WriteMode::Apply,
        )
        .await
        .unwrap();
    assert!(fake.world().inline_policies.is_empty());
}

#[tokio::test]
async fn a_termination_revokes_the_last_instance_and_ends_its_sessions() {
    // GIVEN grace.hopper's only instance, terminated, with a session still open on it
    let fake = fake();
    let value = format!("{ROLE_ID}:grace.hopper");
    let id = fake.add_instance(
        "i-0a1b2c3d4e5f60006",
        InstanceState::Terminated,
        &[("AwsUserId", &value)],
    );
    fake.world()
        .sessions
        .insert(id, vec!["grace.hopper-0ab1cd9d876e54321".into()]);
    let store = managed(&fake);
    store
        .converge(
            &resolved(),
            &Scope::All,
            &users(&["grace.hopper"]),
            WriteMode::Apply,
        )
        .await
        .unwrap();
    let policies = policies_on(config(), &fake, store);
    // WHEN its termination event is handled
    let outcome = policies
        .handle(event(sample_event!("state-change-terminated.json")))
        .await
        .unwrap();
    // THEN her statement is gone and the session was ended
    assert_eq!(outcome.status, Status::Changed);
    assert!(outcome
        .changed
        .contains(&"terminate session grace.hopper-0ab1cd9d876e54321".to_owned()));
    let world = fake.world();
    assert!(world.managed_policies.is_empty());
    assert!(world.sessions.is_empty());
    assert_eq!(world.calls["ssm:TerminateSession"], 1);
}

fn static_config() -> Config {
    Config::for_tests(&[("SESSION_RIGHTS", "static")])
}

#[tokio::test]
async fn switching_to_static_rights_removes_what_per_user_mode_left_and_grants_nothing() {
    // GIVEN a role with a shard for two users and an inline statement from the inline store
    let fake = fake();
    fake.add_instance(
        "i-0a1b2c3d4e5f60001",
        InstanceState::Running,
        &[("AwsUserId", &format!("{ROLE_ID}:tim.malone"))],
    );
    managed(&fake)
        .converge(
            &resolved(),
            &Scope::All,
            &users(&["ada", "tim.malone"]),
            WriteMode::Apply,
        )
        .await
        .unwrap();
    InlineStore::new(fake.clone(), PREFIX)
        .converge(
            &resolved(),
            &Scope::User(SessionName::parse("grace").unwrap()),
            &users(&["grace"]),
            WriteMode::Apply,
        )
        .await
        .unwrap();
    let config = static_config();
    let store = super::AnyStore::from_config(fake.clone(), &config);
    let policies = policies_on(config, &fake, store);

    // WHEN a grant arrives, and then the reconcile runs
    let grant = policies
        .handle(event(sample_event!("tag-change-user-id-added.json")))
        .await
        .unwrap();
    let reconcile = policies
        .handle(event(sample_event!("scheduled-reconcile.json")))
        .await
        .unwrap();

    // THEN the grant writes nothing, and the reconcile leaves no product policy on the role
    assert_eq!(grant.code, Some(ReasonCode::StaticSessionRights));
    assert_eq!(reconcile.status, Status::Changed);
    {
        let world = fake.world();
        assert!(world.managed_policies.is_empty());
        assert!(world.inline_policies.is_empty());
        assert!(world.attachments[ROLE].is_empty());
    }
    // and a second reconcile has nothing left to do
    fake.take_calls();
    let again = policies
        .handle(event(sample_event!("scheduled-reconcile.json")))
        .await
        .unwrap();
    assert_eq!(again.status, Status::Unchanged);
    assert!(fake
        .take_calls()
        .keys()
        .all(|op| op.contains(":List") || op.contains(":Get")));
}

#[tokio::test]
async fn in_static_mode_a_termination_only_ends_the_sessions_left_open() {
    let fake = fake();
    let id = fake.add_instance("i-0a1b2c3d4e5f60006", InstanceState::Terminated, &[]);
    fake.world()
        .sessions
        .insert(id, vec!["grace.hopper-5cg7niur55cxqrt5thkensh7ki".into()]);
    let mut config = static_config();
    config.rights.end_sessions_on_terminate = true;
    let store = super::AnyStore::from_config(fake.clone(), &config);
    let policies = policies_on(config, &fake, store);
    let outcome = policies
        .handle(event(sample_event!("state-change-terminated.json")))
        .await
        .unwrap();
    assert_eq!(outcome.status, Status::Changed);
    let calls = fake.take_calls();
    assert_eq!(calls.get("ssm:TerminateSession"), Some(&1));
    assert!(calls.keys().all(|op| op.starts_with("ssm:")), "{calls:?}");
}

/// AWS calls per grant and per revoke with `shards` full shards in use: (cold grant, warm grant,
/// warm revoke), each counted on the fakes as `service:Operation` calls. `single_writer` as the
/// template deploys the function, or unset as `replay` runs.
async fn grant_and_revoke_calls(shards: usize, single_writer: bool) -> (u64, u64, u64) {
    let fake = fake();
    // Fill the shards with 8-character names; leave one place in the last.
    let per_shard = crate::domain::shard_packing::users_per_shard(
        &role(),
        &SessionName::parse("user0000").unwrap(),
    );
    let names: Vec<String> = (0..per_shard * shards - 1)
        .map(|i| format!("user{i:04}"))
        .collect();
    let seeded: BTreeSet<SessionName> = names
        .iter()
        .map(|n| SessionName::parse(n).unwrap())
        .collect();
    ManagedStore::new(fake.clone(), PREFIX, 25, 25)
        .converge(&resolved(), &Scope::All, &seeded, WriteMode::Apply)
        .await
        .unwrap();
    assert_eq!(fake.world().managed_policies.len(), shards);
    let config = Config::for_tests(&[
        ("SESSION_ROLE_ID", ROLE_ID),
        (
            "SINGLE_WRITER",
            if single_writer { "true" } else { "false" },
        ),
    ]);
    let value = |n: &str| format!("{ROLE_ID}:{n}");
    let tag_event = |instance: &str, name: &str| {
        serde_json::from_str::<serde_json::Value>(
            &sample_event!("tag-change-user-id-added.json")
                .replace("i-0a1b2c3d4e5f60001", instance)
                .replace("AROAEXAMPLEROLEID1234:tim.malone", &value(name)),
        )
        .unwrap()
    };
    let terminated = |instance: &str| {
        serde_json::from_str::<serde_json::Value>(
            &sample_event!("state-change-terminated.json").replace("i-0a1b2c3d4e5f60006", instance),
        )
        .unwrap()
    };
    // One process: the first grant is its cold start, the next grant and the revoke are warm.
    let store = ManagedStore::new(fake.clone(), PREFIX, 25, 25);
    let policies = policies_on(config, &fake, store);
    let first = "i-0000000000000aaa1";
    fake.add_instance(
        first,
        InstanceState::Running,
        &[("AwsUserId", &value("newbie01"))],
    );
    fake.take_calls();
    let outcome = policies.handle(tag_event(first, "newbie01")).await.unwrap();
    assert_eq!(outcome.status, Status::Changed, "{outcome:?}");
    let cold = fake.total_calls();
    // Warm: newbie01's instance terminates (revoke), then newbie02 takes the freed place.
    fake.world()
        .instances
        .get_mut(&crate::domain::ids::InstanceId::parse(first).unwrap())
        .unwrap()
        .state = InstanceState::Terminated;
    fake.take_calls();
    let revoke = policies.handle(terminated(first)).await.unwrap();
    assert_eq!(revoke.status, Status::Changed, "{revoke:?}");
    let warm_revoke = fake.total_calls();
    fake.add_instance(
        "i-0000000000000aaa3",
        InstanceState::Running,
        &[("AwsUserId", &value("newbie02"))],
    );
    fake.take_calls();
    let grant = policies
        .handle(tag_event("i-0000000000000aaa3", "newbie02"))
        .await
        .unwrap();
    assert_eq!(grant.status, Status::Changed, "{grant:?}");
    let warm_grant = fake.total_calls();
    (cold, warm_grant, warm_revoke)
}

#[tokio::test]
async fn a_warm_grant_costs_at_most_8_calls_and_a_revoke_8_plus_one_per_region_whatever_the_shard_count(
) {
    let mut seen = Vec::new();
    for shards in [1, 10, 25] {
        let (cold, grant, revoke) = grant_and_revoke_calls(shards, false).await;
        println!("{shards} shard(s): cold grant {cold}, warm grant {grant}, warm revoke {revoke}");
        // A grant reads only its instance's region. A revoke reads every covered region (one
        // here) and, the first time in a process, the account's regions (the grants before it
        // never needed them).
        assert!(grant <= 8, "{shards} shards: a grant cost {grant} calls");
        assert!(
            revoke <= 8 + 1 + 1,
            "{shards} shards: a revoke cost {revoke} calls"
        );
        // A new process reads each shard once and the role's attachments once.
        assert_eq!(cold, grant + shards as u64 + 1, "{shards} shards");
        seen.push((grant, revoke));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
}

#[tokio::test]
async fn the_deployed_function_grants_in_4_calls_and_revokes_in_5_plus_one_per_region() {
    for shards in [1, 10, 25] {
        let (cold, grant, revoke) = grant_and_revoke_calls(shards, true).await;
        println!("{shards} shard(s), SINGLE_WRITER: cold grant {cold}, warm grant {grant}, warm revoke {revoke}");
        // DescribeInstances, ListPolicies, ListPolicyVersions, CreatePolicyVersion: no
        // verifying reads.
        assert_eq!(grant, 4, "{shards} shards");
        // The terminated instance, the account's regions (first time), one read per covered
        // region (one here), DescribeSessions, then the store's three.
        assert_eq!(revoke, 1 + 1 + 1 + 1 + 3, "{shards} shards");
        assert_eq!(cold, grant + shards as u64 + 1, "{shards} shards");
    }
}

#[tokio::test]
async fn an_unreadable_region_is_a_retryable_error_and_revokes_nobody() {
    // GIVEN ada granted for an instance in eu-west-1, and eu-west-1 failing every call
    let fake = fake();
    fake.world().enabled_regions = vec!["us-east-1".into(), "eu-west-1".into()];
    fake.add_instance_in(
        "eu-west-1",
        "i-0000000000000eee1",
        InstanceState::Running,
        &[("AwsUserId", &format!("{ROLE_ID}:ada"))],
    );
    managed(&fake)
        .converge(&resolved(), &Scope::All, &users(&["ada"]), WriteMode::Apply)
        .await
        .unwrap();
    fake.world().unreadable_regions.insert("eu-west-1".into());
    let store = managed(&fake);
    let policies = policies_on(config(), &fake, store);

    // WHEN the reconcile runs
    let err = policies
        .handle(event(sample_event!("scheduled-reconcile.json")))
        .await
        .unwrap_err();

    // THEN it fails retryable, naming the region, and ada keeps her statement
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.to_string()
            .starts_with("region eu-west-1 cannot be read"),
        "{err}"
    );
    let world = fake.world();
    let shard = world
        .managed_policies
        .values()
        .next()
        .expect("the shard stays");
    assert!(shard.document().contains(&format!("{ROLE_ID}:ada")));
}

#[tokio::test]
async fn a_name_session_manager_will_not_tag_is_granted_and_said() {
    // GIVEN a live instance of a user whose role-session name holds a comma (valid for IAM, not
    // in the session-id tag's character set)
    let fake = fake();
    let value = format!("{ROLE_ID}:a,b");
    fake.add_instance(
        "i-0a1b2c3d4e5f60001",
        InstanceState::Running,
        &[("AwsUserId", &value)],
    );
    let policies = policies_on(config(), &fake, managed(&fake));

    // WHEN the tag change for it arrives
    let grant = policies
        .handle(
            serde_json::from_str(
                &sample_event!("tag-change-user-id-added.json")
                    .replace("AROAEXAMPLEROLEID1234:tim.malone", &value),
            )
            .unwrap(),
        )
        .await
        .unwrap();

    // THEN the statement is written all the same, and the outcome says why it will not help
    assert_eq!(grant.status, Status::Changed, "{grant:?}");
    assert_eq!(grant.skipped.len(), 1, "{grant:?}");
    assert_eq!(grant.skipped[0].reason.code, ReasonCode::SessionNotTaggable);
    assert_eq!(
        grant.skipped[0].subject,
        crate::domain::outcome::SkipSubject::User("a,b".into())
    );
}

/// 17 regions, as a default AWS account has.
fn seventeen_regions() -> Vec<String> {
    crate::domain::ids::DEFAULT_ENABLED_REGIONS
        .map(String::from)
        .to_vec()
}

#[tokio::test(start_paused = true)]
async fn a_grant_reads_one_region_and_a_revoke_reads_all_seventeen_at_once() {
    // GIVEN 17 covered regions, reads that take a while, and ada's instance in eu-west-1
    let fake = fake();
    fake.world().enabled_regions = seventeen_regions();
    fake.world().read_delay = Some(std::time::Duration::from_millis(200));
    let instance = "i-0000000000000eee1";
    fake.add_instance_in(
        "eu-west-1",
        instance,
        InstanceState::Running,
        &[("AwsUserId", &format!("{ROLE_ID}:ada"))],
    );
    let policies = policies_on(config(), &fake, managed(&fake));

    // WHEN the tag-change event for it arrives
    fake.take_calls();
    let granted = policies
        .handle(ada_tagged_in_eu_west_1(instance))
        .await
        .unwrap();
    // THEN only eu-west-1 was read (before and after the write), and no region list
    assert_eq!(granted.counts.grants, 1, "{granted:?}");
    let calls = fake.take_calls();
    assert_eq!(calls.get("ec2:DescribeInstances"), Some(&2), "{calls:?}");
    assert_eq!(calls.get("ec2:DescribeRegions"), None, "{calls:?}");
    assert_eq!(fake.world().most_reads_in_flight, 1);

    // WHEN the instance terminates
    let terminated = terminate_in_eu_west_1(&fake, instance);
    let revoked = policies.handle(terminated).await.unwrap();
    // THEN every region was read, all 17 at the same time, before and after the delete
    assert_eq!(revoked.counts.revokes, 1, "{revoked:?}");
    let calls = fake.take_calls();
    assert_eq!(calls.get("ec2:DescribeRegions"), Some(&1), "{calls:?}");
    assert_eq!(
        calls.get("ec2:DescribeInstances"),
        Some(&(1 + 2 * 17)),
        "{calls:?}"
    );
    assert_eq!(fake.world().most_reads_in_flight, 17);
}

#[tokio::test(start_paused = true)]
async fn the_only_writer_reads_each_region_once_and_a_revoke_takes_one_reads_time() {
    // GIVEN the deployed function (SINGLE_WRITER), 17 covered regions whose reads take 200 ms
    // each, and ada's instance in eu-west-1
    let fake = fake();
    fake.world().enabled_regions = seventeen_regions();
    let read = std::time::Duration::from_millis(200);
    fake.world().read_delay = Some(read);
    let instance = "i-0000000000000eee2";
    fake.add_instance_in(
        "eu-west-1",
        instance,
        InstanceState::Running,
        &[("AwsUserId", &format!("{ROLE_ID}:ada"))],
    );
    let mut config = config();
    config.rights.single_writer = true;
    let policies = policies_on(config, &fake, managed(&fake));

    // WHEN the tag-change event arrives
    fake.take_calls();
    let granted = policies
        .handle(ada_tagged_in_eu_west_1(instance))
        .await
        .unwrap();
    // THEN eu-west-1 alone was read, once, and the statement was written
    assert_eq!(granted.counts.grants, 1, "{granted:?}");
    let calls = fake.take_calls();
    assert_eq!(calls.get("ec2:DescribeInstances"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("ec2:DescribeRegions"), None, "{calls:?}");
    assert!(role_holds(&fake, "ada"));

    // WHEN the instance terminates
    let terminated = terminate_in_eu_west_1(&fake, instance);
    let started = tokio::time::Instant::now();
    let revoked = policies.handle(terminated).await.unwrap();
    let took = started.elapsed();
    // THEN the instance was looked up, and each of the 17 regions read once, all at the same
    // time: the revoke took one read's time (the clock is tokio's, paused), not seventeen
    assert_eq!(revoked.counts.revokes, 1, "{revoked:?}");
    let calls = fake.take_calls();
    assert_eq!(calls.get("ec2:DescribeRegions"), Some(&1), "{calls:?}");
    assert_eq!(
        calls.get("ec2:DescribeInstances"),
        Some(&(1 + 17)),
        "{calls:?}"
    );
    assert_eq!(fake.world().most_reads_in_flight, 17);
    assert!(took >= read && took < 2 * read, "{took:?}");
    assert!(!role_holds(&fake, "ada"));
}

#[tokio::test(start_paused = true)]
async fn the_reconcile_reads_whole_fleets_a_few_regions_at_a_time_and_keeps_only_users() {
    // GIVEN 17 covered regions with one of ada's instances in each, and slow reads
    let fake = fake();
    fake.world().enabled_regions = seventeen_regions();
    fake.world().read_delay = Some(std::time::Duration::from_millis(200));
    for (n, region) in seventeen_regions().iter().enumerate() {
        fake.add_instance_in(
            region,
            &format!("i-00000000000{n:06x}"),
            InstanceState::Running,
            &[
                ("AwsUserId", &format!("{ROLE_ID}:ada")),
                ("Name", "workspace"),
            ],
        );
    }
    let mut config = config();
    config.regions.fleet_reads_at_once = 4;
    let policies = policies_on(config, &fake, managed(&fake));

    // WHEN the reconcile runs
    let done = policies
        .handle(event(sample_event!("scheduled-reconcile.json")))
        .await
        .unwrap();

    // THEN every region was read, never more than FLEET_READS_AT_ONCE at the same time
    assert!(
        done.reason
            .starts_with("reconcile: 17 live tagged instance(s), 1 user(s)"),
        "{done:?}"
    );
    assert_eq!(fake.world().most_reads_in_flight, 4);
}

#[tokio::test]
async fn a_share_that_ends_ends_its_guests_sessions_and_nobody_elses() {
    // GIVEN tim's instance shared with ana until 13:00, and sessions open on it: ana's (a
    // guest), tim's (the owner), an operator's, and bo's (holding no slot)
    let fake = fake();
    let instance = "i-0a1b2c3d4e5f60011";
    let tims = format!("{ROLE_ID}:tim");
    fake.add_instance(
        instance,
        InstanceState::Running,
        &[
            ("AwsUserId", &tims),
            ("ShareWith", "ana"),
            ("AwsUserIdGuest1", &format!("{ROLE_ID}:ana")),
            (
                "AwsUserIdSharedUntil",
                &format!("2026-12-06T13:00:00Z;{tims}"),
            ),
        ],
    );
    {
        let mut world = fake.world();
        let sessions = [
            ("ana-0a1b2c3d4e5f6a7b8", format!("assumed-role/{ROLE}/ana")),
            ("tim-0a1b2c3d4e5f6a7b8", format!("assumed-role/{ROLE}/tim")),
            (
                "ops-0a1b2c3d4e5f6a7b8",
                "assumed-role/Operators/ana".to_owned(),
            ),
            ("bo-0a1b2c3d4e5f6a7b8", format!("assumed-role/{ROLE}/bo")),
        ];
        for (id, owner) in &sessions {
            world.session_owners.insert(
                (*id).to_owned(),
                format!("arn:aws:sts::123456789012:{owner}"),
            );
        }
        world.sessions.insert(
            crate::domain::ids::InstanceId::parse(instance).unwrap(),
            sessions.iter().map(|(id, _)| (*id).to_owned()).collect(),
        );
    }
    let config = Config::for_tests(&[("SHARING", "true"), ("REGIONS", "us-east-1")]);
    let tagger = OwnerTagger::new(config, fake.clone(), fake.clone()).with_sessions(fake.clone());

    // WHEN the sweep runs before the share's end, THEN no session ends
    tagger
        .handle_at(
            event(sample_event!("scheduled-tag-sweep.json")),
            at("2026-12-06T12:59:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(fake.world().calls.get("ssm:TerminateSession"), None);

    // WHEN it runs at the end
    let outcome = tagger
        .handle_at(
            event(sample_event!("scheduled-tag-sweep.json")),
            at("2026-12-06T13:00:00Z"),
        )
        .await
        .unwrap();

    // THEN the share is over, and only ana's session was ended
    assert_eq!(outcome.counts.shares_ended, 1, "{outcome:?}");
    let world = fake.world();
    let open = &world.sessions[&crate::domain::ids::InstanceId::parse(instance).unwrap()];
    assert_eq!(
        open,
        &[
            "tim-0a1b2c3d4e5f6a7b8",
            "ops-0a1b2c3d4e5f6a7b8",
            "bo-0a1b2c3d4e5f6a7b8"
        ]
    );
    assert_eq!(world.calls["ssm:TerminateSession"], 1);
    let tags = &world.instances[&crate::domain::ids::InstanceId::parse(instance).unwrap()].tags;
    assert!(!tags.contains_key("AwsUserIdGuest1") && !tags.contains_key("ShareWith"));
}

#[tokio::test]
async fn per_user_rights_follow_guest_slots_while_a_share_lasts() {
    // GIVEN tim's instance shared with ada (her slot written by the owner-tagger), per-user
    // rights, sharing on
    let fake = fake();
    let tim = format!("{ROLE_ID}:tim.malone");
    let ada = format!("{ROLE_ID}:ada");
    let until = format!("2030-01-01T00:00:00Z;{tim}");
    let shared = fake.add_instance(
        "i-0a1b2c3d4e5f60008",
        InstanceState::Running,
        &[
            ("AwsUserId", &tim),
            ("AwsUserIdGuest1", &ada),
            ("AwsUserIdSharedUntil", &until),
        ],
    );
    let config = Config::for_tests(&[("SHARING", "true")]);
    let policies = policies_on(config.clone(), &fake, managed(&fake));

    // WHEN the slot's tag change arrives THEN ada is granted, with one DescribeInstances before
    // the write and one after (not the only writer)
    let mut slot = event(sample_event!("tag-change-user-id-added.json"));
    slot["resources"] = serde_json::json!([format!(
        "arn:aws:ec2:us-east-1:123456789012:instance/{shared}"
    )]);
    slot["detail"]["changed-tag-keys"] =
        serde_json::json!(["AwsUserIdGuest1", "AwsUserIdSharedUntil"]);
    slot["detail"]["tags"] = serde_json::json!({"AwsUserId": tim, "AwsUserIdGuest1": ada,
        "AwsUserIdSharedUntil": until});
    fake.take_calls();
    let outcome = policies.handle(slot.clone()).await.unwrap();
    assert_eq!(outcome.status, Status::Changed, "{outcome:?}");
    assert_eq!(outcome.reason, "ada has 1 live instance(s): granted");
    assert!(role_holds(&fake, "ada"));
    assert!(
        !role_holds(&fake, "tim.malone"),
        "tim's own key did not change"
    );
    assert_eq!(fake.take_calls()["ec2:DescribeInstances"], 2);

    // WHEN the share ends (the slot removed) THEN the reconcile revokes ada and grants tim
    fake.world()
        .instances
        .get_mut(&shared)
        .unwrap()
        .tags
        .retain(|k, _| k == "AwsUserId");
    policies.reconcile(WriteMode::Apply).await.unwrap();
    assert!(!role_holds(&fake, "ada"));
    assert!(role_holds(&fake, "tim.malone"));

    // and with sharing off a slot grants nothing
    fake.world()
        .instances
        .get_mut(&shared)
        .unwrap()
        .tags
        .insert("AwsUserIdGuest1".into(), ada.clone());
    let off = policies_on(Config::for_tests(&[]), &fake, managed(&fake));
    let outcome = off.handle(slot).await.unwrap();
    assert_eq!(outcome.status, Status::Ignored, "{outcome:?}");
    off.reconcile(WriteMode::Apply).await.unwrap();
    assert!(!role_holds(&fake, "ada"));
}

#[tokio::test]
async fn each_share_gets_a_schedule_at_its_end_and_the_expiry_event_ends_it_then() {
    // GIVEN tim's instance in eu-west-1 with a request to share with ana for 90 minutes
    let fake = fake();
    let tims = format!("{ROLE_ID}:tim");
    let id = fake.add_instance(
        "i-0a1b2c3d4e5f60012",
        InstanceState::Running,
        &[
            ("AwsUserId", &tims),
            ("ShareWith", "ana"),
            ("ShareFor", "90m"),
        ],
    );
    fake.world()
        .instance_regions
        .insert(id.clone(), "eu-west-1".into());
    let config = Config::for_tests(&[("SHARING", "true"), ("REGIONS", "us-east-1,eu-west-1")]);
    let tagger = OwnerTagger::new(config, fake.clone(), fake.clone()).with_expiries(fake.clone());
    let request = share_request(id.as_str(), "eu-west-1");

    // WHEN the request arrives THEN the share is written and one schedule is made at its end,
    // in the instance's region
    let outcome = tagger
        .handle_at(request.clone(), at("2026-12-06T12:00:05Z"))
        .await
        .unwrap();
    assert_eq!(outcome.counts.shares_made, 1, "{outcome:?}");
    assert_eq!(
        fake.world().expiry_schedules,
        BTreeMap::from([(
            ("eu-west-1".to_owned(), id.clone()),
            at("2026-12-06T13:30:00Z")
        )])
    );
    // a redelivery renews nothing and schedules nothing
    fake.take_calls();
    tagger
        .handle_at(request, at("2026-12-06T12:01:00Z"))
        .await
        .unwrap();
    assert_eq!(fake.take_calls().get("scheduler:CreateSchedule"), None);

    // WHEN the expiry event comes early (a forged one, say) THEN nothing ends
    let mut expiry = event(sample_event!("share-expiry.json"));
    expiry["detail"] = serde_json::json!({"instance-id": id.to_string(), "region": "eu-west-1"});
    let early = tagger
        .handle_at(expiry.clone(), at("2026-12-06T13:00:00Z"))
        .await
        .unwrap();
    assert_eq!(early.status, Status::Unchanged, "{early:?}");
    assert!(fake.world().instances[&id]
        .tags
        .contains_key("AwsUserIdGuest1"));

    // WHEN it comes at the end THEN the share is over: slots, expiry and request gone
    let ended = tagger
        .handle_at(expiry, at("2026-12-06T13:30:01Z"))
        .await
        .unwrap();
    assert_eq!(ended.counts.shares_ended, 1, "{ended:?}");
    assert_eq!(
        fake.world().instances[&id].tags.keys().collect::<Vec<_>>(),
        ["AwsUserId"]
    );
    assert_eq!(fake.take_calls().get("scheduler:CreateSchedule"), None);

    // and an expiry event naming no instance, or a region that is not one, is ignored
    for detail in [
        serde_json::json!({"instance-id": "i-nothex", "region": "eu-west-1"}),
        serde_json::json!({"instance-id": id.to_string(), "region": "eu west 1"}),
        serde_json::json!({"region": "eu-west-1"}),
    ] {
        let mut bad = event(sample_event!("share-expiry.json"));
        bad["detail"] = detail.clone();
        let outcome = tagger.handle(bad).await.unwrap();
        assert_eq!(outcome.status, Status::Ignored, "{detail}: {outcome:?}");
    }
}

#[tokio::test]
async fn a_share_ending_within_a_minute_is_scheduled_a_minute_from_now() {
    let fake = fake();
    let tims = format!("{ROLE_ID}:tim");
    let id = fake.add_instance(
        "i-0a1b2c3d4e5f60013",
        InstanceState::Running,
        &[
            ("AwsUserId", &tims),
            ("ShareWith", "ana"),
            ("ShareFor", "1m"),
        ],
    );
    let config = Config::for_tests(&[("SHARING", "true"), ("REGIONS", "us-east-1")]);
    let tagger = OwnerTagger::new(config, fake.clone(), fake.clone()).with_expiries(fake.clone());
    let now = at("2026-12-06T12:00:30Z");
    tagger
        .handle_at(share_request(id.as_str(), "us-east-1"), now)
        .await
        .unwrap();
    assert_eq!(
        fake.world().expiry_schedules[&("us-east-1".to_owned(), id)],
        now + chrono::Duration::minutes(1)
    );
}

/// A managed node outside EC2 in the fake, in `region`, registered with `activation`.
fn add_hybrid_node(
    fake: &FakeAws,
    region: &str,
    node: &str,
    activation: Option<&str>,
    tags: &[(&str, &str)],
) -> crate::domain::ids::ManagedNodeId {
    let id = crate::domain::ids::ManagedNodeId::parse(node).unwrap();
    fake.world().hybrid_nodes.insert(
        (region.to_owned(), id.clone()),
        crate::fakes::FakeHybridNode {
            activation_id: activation.map(str::to_owned),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        },
    );
    id
}

fn add_activation(fake: &FakeAws, region: &str, activation: &str, tags: &[(&str, &str)]) {
    fake.world().activations.insert(
        (region.to_owned(), activation.to_owned()),
        tags.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
}

fn node_tags(
    fake: &FakeAws,
    region: &str,
    node: &crate::domain::ids::ManagedNodeId,
) -> Vec<(String, String)> {
    fake.world().hybrid_nodes[&(region.to_owned(), node.clone())]
        .tags
        .clone()
        .into_iter()
        .collect()
}

/// The registration event's deregistration twin, naming `node` in `region`.
fn deregistration(node: &str, region: &str) -> serde_json::Value {
    let mut deregistered = registration(node, region);
    deregistered["detail-type"] = serde_json::json!("SSM Managed Instance Deregistration");
    deregistered
}

/// The sample registration event, naming `node` in `region`.
fn registration(node: &str, region: &str) -> serde_json::Value {
    let mut registered = event(sample_event!("managed-node-registration.json"));
    registered["region"] = serde_json::json!(region);
    registered["resources"] = serde_json::json!([format!(
        "arn:aws:ssm:{region}:123456789012:managed-instance/{node}"
    )]);
    registered["detail"] = serde_json::json!({ "instance-id": node });
    registered
}

/// The owner-tagger with HybridNodes=true over two regions, managed nodes in the fake.
fn hybrid_tagger_on(
    fake: &FakeAws,
) -> OwnerTagger<
    FakeAws,
    FakeAws,
    super::trails::NoTrails,
    super::sharing::NoSessions,
    super::sharing::NoExpiries,
    FakeAws,
> {
    let config = Config::for_tests(&[("HYBRID_NODES", "true"), ("REGIONS", "us-east-1,eu-west-1")]);
    OwnerTagger::new(config, fake.clone(), fake.clone()).with_hybrid_nodes(fake.clone())
}

#[tokio::test]
async fn an_ownerless_node_registered_with_a_users_activation_is_owner_tagged_from_it() {
    // GIVEN ada's activation in eu-west-1 (her user id in its tag, as HybridNodesPolicy makes
    // her write it), and a node registered with it that carries no user id of its own (Systems
    // Manager copies the activation's tags at registration; this node lost them)
    let fake = fake();
    let adas = format!("{ROLE_ID}:ada");
    add_activation(
        &fake,
        "eu-west-1",
        "act-ada",
        &[("AwsUserId", &adas), ("Name", "lab")],
    );
    let node = add_hybrid_node(
        &fake,
        "eu-west-1",
        "mi-0a1b2c3d4e5f60001",
        Some("act-ada"),
        &[("Name", "lab")],
    );
    let tagger = hybrid_tagger_on(&fake);

    // WHEN its registration event is handled
    let outcome = tagger
        .handle(registration(node.as_str(), "eu-west-1"))
        .await
        .unwrap();

    // THEN the node carries ada's user id, written once in its own region
    assert_eq!(outcome.status, Status::Changed, "{outcome:?}");
    assert_eq!(
        outcome.changed,
        [format!("mi-0a1b2c3d4e5f60001: AwsUserId={adas}")]
    );
    assert_eq!(
        node_tags(&fake, "eu-west-1", &node),
        [
            ("AwsUserId".to_owned(), adas.clone()),
            ("Name".to_owned(), "lab".to_owned())
        ]
    );
    assert_eq!(
        fake.take_calls(),
        BTreeMap::from([
            ("iam:GetRole", 1),
            ("ssm:DescribeInstanceInformation", 1),
            ("ssm:ListTagsForResource", 1),
            ("ssm:DescribeActivations", 1),
            ("ssm:AddTagsToResource", 1),
        ])
    );

    // WHEN it is delivered again THEN the node is owned and left alone: two reads, no write
    let again = tagger
        .handle(registration(node.as_str(), "eu-west-1"))
        .await
        .unwrap();
    assert_eq!(again.status, Status::Unchanged, "{again:?}");
    assert_eq!(
        fake.take_calls(),
        BTreeMap::from([
            ("ssm:DescribeInstanceInformation", 1),
            ("ssm:ListTagsForResource", 1),
        ])
    );
}

/// A node case: its id, its activation, its own tags, the tags it ends with, and the outcome.
type NodeCase = (
    &'static str,
    Option<&'static str>,
    String,
    String,
    (Status, Option<ReasonCode>),
);

#[tokio::test]
async fn a_node_is_owned_by_its_own_id_then_its_activations_then_created_by_and_else_reported() {
    let fake = fake();
    let (ada, tim) = (
        format!("AwsUserId={ROLE_ID}:ada"),
        format!("AwsUserId={ROLE_ID}:tim"),
    );
    let region = "us-east-1";
    add_activation(&fake, region, "act-ada", &tag_pairs(&ada));
    // an administrator's activation names no owner; a broken one names no user id
    add_activation(&fake, region, "act-admin", &[("Team", "lab")]);
    add_activation(&fake, region, "act-broken", &[("AwsUserId", "ada")]);
    let tagger = hybrid_tagger_on(&fake);
    let (changed, unchanged) = ((Status::Changed, None), (Status::Unchanged, None));
    let cases: [NodeCase; 7] = [
        // owned from its first second: left alone
        (
            "mi-0a1b2c3d4e5f60002",
            Some("act-ada"),
            ada.clone(),
            ada.clone(),
            unchanged,
        ),
        // the activation's id comes before a CreatedBy on the node
        (
            "mi-0a1b2c3d4e5f60003",
            Some("act-ada"),
            "CreatedBy=tim".into(),
            format!("{ada};CreatedBy=tim"),
            changed,
        ),
        // no owner in the activation: CreatedBy, as on an instance
        (
            "mi-0a1b2c3d4e5f60004",
            Some("act-admin"),
            "CreatedBy=tim".into(),
            format!("{tim};CreatedBy=tim"),
            changed,
        ),
        // nothing names an owner: reported, nothing written
        (
            "mi-0a1b2c3d4e5f60005",
            Some("act-admin"),
            String::new(),
            String::new(),
            (Status::Ignored, Some(ReasonCode::NoOwnerTag)),
        ),
        // an older id of the role: rewritten with the current one
        (
            "mi-0a1b2c3d4e5f60006",
            None,
            "AwsUserId=AROAOLDROLEID0000000:tim".into(),
            tim.clone(),
            changed,
        ),
        // a case variant planted beside the exact key: the variant goes, the exact key stays
        (
            "mi-0a1b2c3d4e5f60007",
            None,
            format!("{ada};aws{}", &tim[3..]),
            ada.clone(),
            changed,
        ),
        // an activation whose tag is no user id: refused, nothing written
        (
            "mi-0a1b2c3d4e5f60008",
            Some("act-broken"),
            String::new(),
            String::new(),
            (Status::Ignored, Some(ReasonCode::UserIdMalformed)),
        ),
    ];
    for (node, activation, tags, after, expected) in cases {
        let id = add_hybrid_node(&fake, region, node, activation, &tag_pairs(&tags));
        let outcome = tagger.handle(registration(node, region)).await.unwrap();
        assert_eq!(
            (outcome.status, outcome.code),
            expected,
            "{node}: {outcome:?}"
        );
        let after: Vec<(String, String)> = tag_pairs(&after)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(node_tags(&fake, region, &id), after, "{node}");
    }
}

/// `key=value` pairs separated by `;`, as tags.
fn tag_pairs(pairs: &str) -> Vec<(&str, &str)> {
    pairs
        .split(';')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap())
        .collect()
}

#[tokio::test]
async fn a_registration_is_read_again_and_bad_or_unreadable_answers_change_nothing() {
    let fake = fake();
    let adas = format!("{ROLE_ID}:ada");
    add_activation(&fake, "us-east-1", "act-ada", &[("AwsUserId", &adas)]);
    let node = add_hybrid_node(
        &fake,
        "us-east-1",
        "mi-0a1b2c3d4e5f60009",
        Some("act-ada"),
        &[],
    );
    let tagger = hybrid_tagger_on(&fake);

    // a node that is not registered (a forged or late event): ignored, nothing read beyond it
    let gone = tagger
        .handle(registration("mi-0a1b2c3d4e5f6000a", "us-east-1"))
        .await
        .unwrap();
    assert_eq!(gone.code, Some(ReasonCode::InstanceGone), "{gone:?}");
    // an event naming no node, or a node id that is not one
    let mut nameless = registration(node.as_str(), "us-east-1");
    nameless["resources"] = serde_json::json!([]);
    nameless["detail"] = serde_json::json!({});
    let mut bad_id = registration(node.as_str(), "us-east-1");
    bad_id["resources"] = serde_json::json!([]);
    bad_id["detail"] = serde_json::json!({"instance-id": "mi-../../etc"});
    for (bad, code) in [
        (nameless, ReasonCode::Malformed),
        (bad_id, ReasonCode::InvalidInstanceId),
    ] {
        let outcome = tagger.handle(bad).await.unwrap();
        assert_eq!(outcome.code, Some(code), "{outcome:?}");
    }
    // an activation that cannot be read: a retryable error, nothing written
    fake.world().failing.insert("ssm:DescribeActivations");
    let err = tagger
        .handle(registration(node.as_str(), "us-east-1"))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(node_tags(&fake, "us-east-1", &node), []);
    assert_eq!(fake.take_calls().get("ssm:AddTagsToResource"), None);

    // with HybridNodes=false the event is ignored with its reason, and nothing is read
    let off =
        OwnerTagger::new(config(), fake.clone(), fake.clone()).with_hybrid_nodes(fake.clone());
    let outcome = off
        .handle(registration(node.as_str(), "us-east-1"))
        .await
        .unwrap();
    assert_ignored_without_a_call(&outcome, &fake, ReasonCode::HybridNodesOff);
}

/// The outcome is ignored with `code`, and the fake saw no call since its calls were last taken.
fn assert_ignored_without_a_call(outcome: &crate::Outcome, fake: &FakeAws, code: ReasonCode) {
    assert_eq!(outcome.code, Some(code), "{outcome:?}");
    assert_eq!(fake.take_calls(), BTreeMap::new());
}

#[tokio::test]
async fn the_sweep_owns_every_regions_ownerless_nodes_and_fails_whole_on_an_unreadable_region() {
    let fake = fake();
    fake.world().enabled_regions = vec!["us-east-1".into(), "eu-west-1".into()];
    let (adas, tims) = (format!("{ROLE_ID}:ada"), format!("{ROLE_ID}:tim"));
    add_activation(&fake, "eu-west-1", "act-ada", &[("AwsUserId", &adas)]);
    let in_eu = add_hybrid_node(
        &fake,
        "eu-west-1",
        "mi-0a1b2c3d4e5f6000b",
        Some("act-ada"),
        &[],
    );
    let in_us = add_hybrid_node(
        &fake,
        "us-east-1",
        "mi-0a1b2c3d4e5f6000c",
        None,
        &[("CreatedBy", "tim")],
    );
    let owned = add_hybrid_node(
        &fake,
        "us-east-1",
        "mi-0a1b2c3d4e5f6000d",
        None,
        &[("AwsUserId", &tims)],
    );
    let tagger = hybrid_tagger_on(&fake);

    // an unreadable region: the sweep fails (retryable) and no node is written there
    fake.world().unreadable_regions.insert("eu-west-1".into());
    assert!(tagger
        .handle(event(sample_event!("scheduled-tag-sweep.json")))
        .await
        .is_err());
    assert_eq!(node_tags(&fake, "eu-west-1", &in_eu), []);
    fake.world().unreadable_regions.clear();

    let outcome = tagger
        .handle(event(sample_event!("scheduled-tag-sweep.json")))
        .await
        .unwrap();
    assert_eq!(outcome.status, Status::Changed, "{outcome:?}");
    assert_eq!(
        node_tags(&fake, "eu-west-1", &in_eu),
        [("AwsUserId".to_owned(), adas)]
    );
    assert_eq!(
        node_tags(&fake, "us-east-1", &in_us),
        [
            ("AwsUserId".to_owned(), tims.clone()),
            ("CreatedBy".to_owned(), "tim".to_owned())
        ]
    );
    assert_eq!(
        node_tags(&fake, "us-east-1", &owned),
        [("AwsUserId".to_owned(), tims)]
    );
    assert!(
        outcome
            .reason
            .contains("eu-west-1: 1 managed node(s) outside EC2: tagged 1"),
        "{}",
        outcome.reason
    );
}

/// Two enabled regions and ada's managed node in eu-west-1 (her id from her activation): the
/// fake, the node and her user id.
fn adas_node_in_eu_west_1() -> (FakeAws, crate::domain::ids::ManagedNodeId, String) {
    let fake = fake();
    fake.world().enabled_regions = vec!["us-east-1".into(), "eu-west-1".into()];
    let adas = format!("{ROLE_ID}:ada");
    let node = add_hybrid_node(
        &fake,
        "eu-west-1",
        "mi-0a1b2c3d4e5f60011",
        None,
        &[("AwsUserId", &adas)],
    );
    (fake, node, adas)
}

#[tokio::test]
async fn a_user_whose_only_node_is_outside_ec2_holds_their_rights_until_their_last_node_of_any_kind_goes(
) {
    // GIVEN ada's managed node in eu-west-1 (her id from her activation) and one instance of
    // hers in us-east-1, with HybridNodes=true and per-user rights
    let (fake, node, adas) = adas_node_in_eu_west_1();
    let config = || {
        Config::for_tests(&[
            ("HYBRID_NODES", "true"),
            ("REGIONS", "us-east-1,eu-west-1"),
            ("END_SESSIONS_ON_TERMINATE", "true"),
        ])
    };
    let policies = policies_on(config(), &fake, managed(&fake)).with_hybrid_nodes(fake.clone());

    // WHEN the node registers THEN ada is granted, from her node's own tag, reading only its
    // region
    let granted = policies
        .handle(registration(node.as_str(), "eu-west-1"))
        .await
        .unwrap();
    assert_eq!(granted.status, Status::Changed, "{granted:?}");
    assert!(role_holds(&fake, "ada"));

    // WHEN her instance terminates THEN she keeps her rights: her node still lives
    fake.add_instance(
        "i-0a1b2c3d4e5f60011",
        InstanceState::Running,
        &[("AwsUserId", &adas)],
    );
    let terminated = terminate_in_eu_west_1(&fake, "i-0a1b2c3d4e5f60011");
    fake.world().instance_regions.insert(
        crate::domain::ids::InstanceId::parse("i-0a1b2c3d4e5f60011").unwrap(),
        "eu-west-1".into(),
    );
    let kept = policies.handle(terminated).await.unwrap();
    assert_eq!(kept.status, Status::Unchanged, "{kept:?}");
    assert!(role_holds(&fake, "ada"));

    // AND the reconcile keeps her; a region whose nodes cannot be read fails it, revoking no one
    let reconciled = policies
        .handle(event(sample_event!("scheduled-reconcile.json")))
        .await
        .unwrap();
    assert_eq!(reconciled.status, Status::Unchanged, "{reconciled:?}");
    fake.world().failing.insert("ssm:ListTagsForResource");
    assert!(policies
        .handle(event(sample_event!("scheduled-reconcile.json")))
        .await
        .is_err());
    assert!(role_holds(&fake, "ada"));
    fake.world().failing.clear();

    // WHEN the node is deregistered (its tags go with it; the event names no owner) THEN its
    // deregistration converges every user, and she, with no node left, is revoked at once
    fake.world().hybrid_nodes.clear();
    let revoked = policies
        .handle(deregistration(node.as_str(), "eu-west-1"))
        .await
        .unwrap();
    assert_eq!(revoked.status, Status::Changed, "{revoked:?}");
    assert!(
        revoked
            .reason
            .starts_with("mi-0a1b2c3d4e5f60011 deregistered: reconcile"),
        "{}",
        revoked.reason
    );
    assert!(!role_holds(&fake, "ada"));
}

#[tokio::test]
async fn a_node_event_grants_nobody_without_an_owner_and_reads_nothing_with_hybrid_nodes_off() {
    let (fake, node, _) = adas_node_in_eu_west_1();
    let config = Config::for_tests(&[("HYBRID_NODES", "true"), ("REGIONS", "us-east-1,eu-west-1")]);
    let policies = policies_on(config, &fake, managed(&fake)).with_hybrid_nodes(fake.clone());

    // a registration of a node that is gone or ownerless grants nobody; with
    // HybridNodes=false nothing is read
    let ownerless = add_hybrid_node(&fake, "eu-west-1", "mi-0a1b2c3d4e5f60012", None, &[]);
    let outcome = policies
        .handle(registration(ownerless.as_str(), "eu-west-1"))
        .await
        .unwrap();
    assert_eq!(outcome.code, Some(ReasonCode::NoOwnerTag), "{outcome:?}");
    fake.take_calls();
    let off =
        policies_on(config_without_hybrid(), &fake, managed(&fake)).with_hybrid_nodes(fake.clone());
    for event in [
        registration(node.as_str(), "eu-west-1"),
        deregistration(node.as_str(), "eu-west-1"),
    ] {
        let outcome = off.handle(event).await.unwrap();
        assert_ignored_without_a_call(&outcome, &fake, ReasonCode::HybridNodesOff);
    }
    // AND the owner-tagger leaves a deregistration to the session-policy function
    let tagger = hybrid_tagger_on(&fake);
    let outcome = tagger
        .handle(deregistration(node.as_str(), "eu-west-1"))
        .await
        .unwrap();
    assert_ignored_without_a_call(&outcome, &fake, ReasonCode::OtherEvent);
}

fn config_without_hybrid() -> Config {
    Config::for_tests(&[("REGIONS", "us-east-1,eu-west-1")])
}
